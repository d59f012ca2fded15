package server

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	sockaddr "github.com/hashicorp/go-sockaddr"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/version"
)

// Member roles carried in gossip metadata.
const (
	RoleServer = gossip.RoleServer
	RoleAgent  = gossip.RoleAgent
)

// Member statuses as the CLI shows them.
const (
	StatusAlive  = gossip.StatusAlive
	StatusFailed = gossip.StatusFailed
	StatusLeft   = gossip.StatusLeft
)

// setupGossip starts serf with this server's tags. The snapshot in the data dir lets
// a restarted server rejoin the members it knew without -join, even after it left
// gracefully: it is still a Raft peer. The keyring in the data dir, seeded by
// -encrypt, keeps the gossip keys rotated while the server ran.
func (s *Server) setupGossip() error {
	p, err := gossip.Create(gossip.Config{
		Name:     s.config.NodeName,
		BindAddr: s.config.BindAddr,
		Port:     s.config.GossipPort,
		Tags: gossip.Tags{
			Role:            RoleServer,
			ID:              s.id,
			Version:         version.String(),
			HTTPPort:        s.httpLn.Addr().(*net.TCPAddr).Port,
			RPCPort:         s.rpcLn.Addr().(*net.TCPAddr).Port,
			RaftPort:        portOf(string(s.transport.LocalAddr())),
			BootstrapExpect: s.config.BootstrapExpect,
		},
		Base:          s.config.GossipConfig,
		Members:       s.members,
		Logger:        s.logger.Named("gossip"),
		Join:          s.config.Join,
		RetryInterval: s.config.RetryInterval,
		RetryMax:      s.config.RetryMax,

		SnapshotPath:     filepath.Join(s.config.DataDir, gossipSnapshot),
		RejoinAfterLeave: true,
		EncryptKey:       s.config.EncryptKey,
		KeyringFile:      filepath.Join(s.config.DataDir, gossipKeyring),
	})
	if err != nil {
		return err
	}
	s.gossip = p
	s.keyringPool.Store(p)
	return nil
}

// gossipSnapshot is where, in the data dir, serf records the members it knows.
const gossipSnapshot = "serf/local.snapshot"

// gossipKeyring is where, in the data dir, the gossip encryption keyring is kept.
const gossipKeyring = "serf/local.keyring"

// joinLoop joins the configured addresses, retrying after 1s, then waits doubling up
// to RetryInterval, until one answers or RetryMax attempts have failed, which is
// fatal.
func (s *Server) joinLoop() { s.gossip.JoinLoop(s.ctx, s.fatal) }

func portOf(hostPort string) int {
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// advertiseIP picks the address to advertise when bound to every interface.
func advertiseIP() (net.IP, error) {
	s, err := sockaddr.GetPrivateIP()
	if err != nil || s == "" {
		return nil, fmt.Errorf("bound to all interfaces but found no private IP to advertise; use -bind")
	}
	return net.ParseIP(s), nil
}
