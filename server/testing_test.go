package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
)

// testConfig returns a config for an in-process server on 127.0.0.1 with kernel-chosen
// ports and timeouts fast enough for tests yet slow enough for -race on two cores.
func testConfig(t testing.TB, name, dir string, expect int) *Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.DataDir = dir
	cfg.BootstrapExpect = expect
	cfg.HTTPPort, cfg.RPCPort, cfg.RaftPort, cfg.GossipPort = 0, 0, 0, 0
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.ApplyTimeout = 10 * time.Second

	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout = 150 * time.Millisecond
	rc.ElectionTimeout = 150 * time.Millisecond
	rc.LeaderLeaseTimeout = 100 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	cfg.RaftConfig = rc

	mc := memberlist.DefaultLocalConfig()
	mc.GossipInterval = 20 * time.Millisecond
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 2
	// Push/pull repairs what broadcasts missed: a member that joins while news of
	// another is still being retransmitted may otherwise never hear of it.
	mc.PushPullInterval = time.Second
	cfg.GossipConfig = mc

	// Autopilot looks often and promotes soon; the thresholds leave room for a
	// loaded machine under -race, where a stats call or a heartbeat can be late.
	cfg.Autopilot.UpdateInterval = 500 * time.Millisecond
	cfg.Autopilot.ReconcileInterval = 250 * time.Millisecond
	cfg.Autopilot.ServerStabilizationTime = time.Second
	cfg.Autopilot.LastContactThreshold = 2 * time.Second

	cfg.Logger = gridtest.Logger(t, name)
	return cfg
}

// startServer starts a server and stops it (abruptly) at the end of the test.
func startServer(t testing.TB, cfg *Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { _ = s.stop(false) })
	return s
}

// testCluster is n in-process servers that join the first one's gossip address.
type testCluster struct {
	t       testing.TB
	servers []*Server
	dirs    []string
}

func newCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return newClusterWith(t, n, nil)
}

// newClusterWith is newCluster with a hook that adjusts every server's config.
func newClusterWith(t testing.TB, n int, adjust func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		cfg := testConfig(t, fmt.Sprintf("s%d", i+1), dir, n)
		if adjust != nil {
			adjust(cfg)
		}
		if i > 0 {
			cfg.Join = []string{c.servers[0].GossipAddr()}
		}
		c.servers = append(c.servers, startServer(t, cfg))
		c.dirs = append(c.dirs, dir)
	}
	return c
}

// leader waits until exactly one of the running servers leads and all of them know
// it, and returns it.
func (c *testCluster) leader(running ...*Server) *Server {
	c.t.Helper()
	if len(running) == 0 {
		running = c.servers
	}
	var leader *Server
	gridtest.WaitFor(c.t, 15*time.Second, "one leader", func() error {
		leader = nil
		for _, s := range running {
			if s.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.Name(), s.Name())
				}
				leader = s
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader")
		}
		for _, s := range running {
			if _, id := s.raft.LeaderWithID(); string(id) != leader.ID() {
				return fmt.Errorf("%s thinks the leader is %q", s.Name(), id)
			}
		}
		return nil
	})
	return leader
}

// followers returns the running servers other than the leader.
func followers(leader *Server, running []*Server) []*Server {
	var out []*Server
	for _, s := range running {
		if s != leader {
			out = append(out, s)
		}
	}
	return out
}

// voters returns the IDs of the voters in s's Raft configuration.
func voters(t testing.TB, s *Server) []string {
	t.Helper()
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatalf("configuration of %s: %v", s.Name(), err)
	}
	var ids []string
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			ids = append(ids, string(srv.ID))
		}
	}
	return ids
}

// waitAgent waits until every server's state holds (or, with want=false, lacks) the
// named agent.
func waitAgent(t testing.TB, servers []*Server, name string, want bool) {
	t.Helper()
	gridtest.WaitFor(t, 10*time.Second, fmt.Sprintf("agent %s present=%v everywhere", name, want), func() error {
		for _, s := range servers {
			a, err := s.State().Agent(name)
			if err != nil {
				return err
			}
			if (a != nil) != want {
				return fmt.Errorf("%s: agent %s present=%v", s.Name(), name, a != nil)
			}
		}
		return nil
	})
}

func register(t testing.TB, s *Server, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Apply(ctx, &fsm.RegisterAgent{Name: name, Address: deadAgentAddr, MaxNodes: 4}); err != nil {
		t.Fatalf("register %s via %s: %v", name, s.Name(), err)
	}
}

func apiClient(t testing.TB, s *Server) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "http://" + s.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// deadAgentAddr is the address of agents that tests register without running one:
// nothing listens there, so the leader's orders to them fail at once.
const deadAgentAddr = "127.0.0.1:1"
