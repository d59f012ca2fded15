package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
)

// TestStrangerNeverBecomesAVoter: in a grid with TLS and gossip encryption, members
// that hold the gossip key and claim the server role, one with an agent's certificate
// on its Raft port, one with no TLS there at all and one with the certificate of
// another server than the one it claims to be, are never added to Raft: the quorum
// stays the three servers.
func TestStrangerNeverBecomesAVoter(t *testing.T) {
	pki := gridtest.NewPKI(t)
	key := gossipKey(t)
	c := newClusterWith(t, 3, func(cfg *Config) {
		src, err := mtls.LoadRole(pki.RoleFiles(t, cfg.NodeName, mtls.RoleServer), mtls.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, cfg.VerifyHTTPSClient, cfg.EncryptKey = src, true, key
	})
	leader := c.leader()
	want := voters(t, leader)
	slices.Sort(want)
	if len(want) != 3 {
		t.Fatalf("voters before the strangers: %v", want)
	}

	// One stranger serves TLS with an agent's certificate on its "raft" port; the
	// other serves plain TCP.
	agentLn, err := tls.Listen("tcp", "127.0.0.1:0", pki.Source(t, "agent", mtls.RoleAgent).ServerConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	impostorLn, err := tls.Listen("tcp", "127.0.0.1:0", pki.Source(t, "another-server", mtls.RoleServer).ServerConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	strangers := []net.Listener{agentLn, plainLn, impostorLn}
	for _, ln := range strangers {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					if tc, ok := conn.(*tls.Conn); ok {
						_ = tc.Handshake()
					}
					_, _ = conn.Read(make([]byte, 1))
				}()
			}
		}()
	}
	for i, ln := range strangers {
		port := ln.Addr().(*net.TCPAddr).Port
		mc := memberlist.DefaultLocalConfig()
		mc.GossipInterval, mc.ProbeInterval, mc.ProbeTimeout = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		p, err := gossip.Create(gossip.Config{
			Name:       fmt.Sprintf("stranger%d", i),
			BindAddr:   "127.0.0.1",
			Base:       mc,
			EncryptKey: key,
			Tags: gossip.Tags{Role: RoleServer, ID: fmt.Sprintf("stranger-id-%d", i), Version: "0",
				HTTPPort: port, RPCPort: port, RaftPort: port, BootstrapExpect: 3},
			Logger: gridtest.Logger(t, fmt.Sprintf("stranger%d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Shutdown() })
		if _, err := p.Join(leader.GossipAddr()); err != nil {
			t.Fatalf("stranger %d joins gossip with the key: %v", i, err)
		}
	}
	gridtest.WaitFor(t, 10*time.Second, "the strangers alive in the leader's gossip", func() error {
		n := 0
		for _, m := range leader.members.AliveServers() {
			if strings.HasPrefix(m.Tags.ID, "stranger-id-") {
				n++
			}
		}
		if n != len(strangers) {
			return fmt.Errorf("%d strangers seen", n)
		}
		return nil
	})
	// The leader reconciles on every membership change: give it a few rounds.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			got := voters(t, s)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s's voters are %v, want %v", s.Name(), got, want)
			}
			if n := len(s.raft.GetConfiguration().Configuration().Servers); n != 3 {
				t.Fatalf("%s has %d raft servers", s.Name(), n)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The cluster still commits with its three voters.
	register(t, leader, "after-strangers")
	waitAgent(t, c.servers, "after-strangers", true)
}
