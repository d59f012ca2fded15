package server

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
)

// Raft refuses to snapshot while the FSM has not applied an entry past the latest
// configuration change. In a quiet grid nothing else would be applied, so both the
// operator's snapshots and Raft's own would fail until the next write; the leader
// commits a barrier after each change it makes so that neither has to wait.
func TestSnapshotRightAfterMembershipChange(t *testing.T) {
	changes := []struct {
		name string
		// change alters the membership of c, led by leader, and returns the servers
		// running afterwards once the leader's configuration shows the change.
		change func(t *testing.T, c *testCluster, leader *Server) []*Server
	}{
		{"remove-peer", func(t *testing.T, c *testCluster, leader *Server) []*Server {
			victim := followers(leader, c.servers)[0]
			_ = victim.stop(false)
			running := followers(victim, c.servers)
			if err := apiClient(t, leader).RaftRemovePeerByID(context.Background(), victim.ID()); err != nil {
				t.Fatalf("remove peer: %v", err)
			}
			return running
		}},
		{"server-joins", func(t *testing.T, c *testCluster, leader *Server) []*Server {
			// A server that expects no one only joins; the leader adds it as a voter.
			cfg := testConfig(t, "s4", t.TempDir(), 0)
			cfg.Join = []string{leader.GossipAddr()}
			joined := startServer(t, cfg)
			gridtest.WaitFor(t, 15*time.Second, "s4 to be a voter", func() error {
				if n := len(voters(t, leader)); n != 4 {
					return fmt.Errorf("%d voters", n)
				}
				return nil
			})
			return append(append([]*Server{}, c.servers...), joined)
		}},
	}
	checks := []struct {
		name  string
		check func(t *testing.T, leader *Server, running []*Server)
	}{
		{"operator-save", func(t *testing.T, leader *Server, running []*Server) {
			// At once, through a follower, with no write in between.
			cl := apiClient(t, followers(leader, running)[0])
			rc, err := cl.SnapshotSave(context.Background())
			if err != nil {
				t.Fatalf("snapshot save right after the change: %v", err)
			}
			defer rc.Close()
			if n, err := io.Copy(io.Discard, rc); err != nil || n == 0 {
				t.Fatalf("snapshot archive: %d bytes, %v", n, err)
			}
		}},
		{"raft-snapshots", func(t *testing.T, _ *Server, running []*Server) {
			// What Raft's periodic snapshots run into, on every server, in a quiet
			// grid: once the barrier has reached a server, it can snapshot.
			for _, s := range running {
				gridtest.WaitFor(t, 10*time.Second, "a raft snapshot on "+s.Name(), func() error {
					return s.raft.Snapshot().Error()
				})
			}
		}},
	}
	for _, ch := range changes {
		for _, ck := range checks {
			t.Run(ch.name+"/"+ck.name, func(t *testing.T) {
				c := newCluster(t, 3)
				leader := c.leader()
				running := ch.change(t, c, leader)
				if got := c.leader(running...); got != leader {
					t.Fatalf("leadership moved from %s to %s", leader.Name(), got.Name())
				}
				ck.check(t, leader, running)
			})
		}
	}
}
