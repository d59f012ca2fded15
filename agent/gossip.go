package agent

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/version"
)

// serverTable is the agent's view of gossip: the alive servers' gRPC addresses.
type serverTable struct {
	members *gossip.Members
	changed <-chan struct{} // receives a signal after a change; signals coalesce
}

func newServerTable() *serverTable {
	m := gossip.NewMembers()
	return &serverTable{members: m, changed: m.Subscribe(isServer)}
}

// isServer reports whether m is an alive server the agent can talk to: one with a
// Raft ID and a gRPC port.
func isServer(m gossip.Member) bool {
	return m.Status == gossip.StatusAlive && m.Tags.Role == gossip.RoleServer && m.Tags.ID != "" && m.Tags.RPCPort != 0
}

// list returns the alive servers' gRPC addresses, sorted.
func (t *serverTable) list() []string {
	out := []string{}
	for _, m := range t.members.List() {
		if isServer(m) {
			out = append(out, m.HostPort(m.Tags.RPCPort))
		}
	}
	sort.Strings(out)
	return out
}

// setupGossip starts serf with the agent's tags. The snapshot in the data dir lets an
// agent restarted after SIGTERM or a crash rejoin the members it knew without -join;
// one that left (SIGINT) left for good and needs -join. The keyring in the data dir,
// seeded by -encrypt, keeps the gossip keys rotated while the agent ran.
func (a *Agent) setupGossip() error {
	p, err := gossip.Create(gossip.Config{
		Name:          a.config.Name,
		BindAddr:      a.config.BindAddr,
		Port:          a.config.GossipPort,
		Tags:          gossip.Tags{Role: gossip.RoleAgent, Version: version.String(), RPCPort: a.rpcLn.Addr().(*net.TCPAddr).Port},
		Base:          a.config.GossipConfig,
		Members:       a.servers.members,
		Logger:        a.logger.Named("gossip"),
		Join:          a.config.Join,
		RetryInterval: a.config.RetryInterval,
		RetryMax:      a.config.RetryMax,
		SnapshotPath:  filepath.Join(a.config.DataDir, gossipSnapshot),
		EncryptKey:    a.config.EncryptKey,
		KeyringFile:   filepath.Join(a.config.DataDir, gossipKeyring),
	})
	if err != nil {
		return err
	}
	a.gossip = p
	return nil
}

// gossipSnapshot is where, in the data dir, serf records the members it knows.
const gossipSnapshot = "serf/local.snapshot"

// gossipKeyring is where, in the data dir, the gossip encryption keyring is kept:
// the servers' keyring operations change it on every member, agents included.
const gossipKeyring = "serf/local.keyring"

// GossipEncrypted reports whether the agent encrypts its gossip: it was started with
// -encrypt, or its data dir has a keyring.
func (a *Agent) GossipEncrypted() bool { return a.gossip != nil && a.gossip.Encrypted() }

// validEncryptKey checks -encrypt before anything starts.
func validEncryptKey(key string) error {
	if key == "" {
		return nil
	}
	if err := gossip.ValidKey(key); err != nil {
		return fmt.Errorf("-encrypt: %w", err)
	}
	return nil
}

// joinLoop joins the configured addresses, retrying after 1s, then waits doubling up
// to RetryInterval, until one answers or RetryMax attempts have failed, which is
// fatal.
func (a *Agent) joinLoop() { a.gossip.JoinLoop(a.ctx, a.fatal) }
