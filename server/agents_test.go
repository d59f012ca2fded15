package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// fastHeartbeats shortens the agent thresholds for tests.
func fastHeartbeats(cfg *Config) {
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.AgentDegradedAfter = 400 * time.Millisecond
	cfg.AgentOfflineAfter = 800 * time.Millisecond
}

// serversClient talks to s's Servers service the way an agent does.
func serversClient(t testing.TB, s *Server) gridpb.ServersClient {
	t.Helper()
	conn, err := s.conns.Get(s.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	return gridpb.NewServersClient(conn)
}

func agentStatus(t testing.TB, s *Server, name string) fsm.AgentStatus {
	t.Helper()
	a, err := s.State().Agent(name)
	if err != nil || a == nil {
		t.Fatalf("agent %s on %s: %v", name, s.Name(), err)
	}
	return a.Status
}

func waitStatus(t testing.TB, servers []*Server, name string, want fsm.AgentStatus) {
	t.Helper()
	gridtest.WaitFor(t, 10*time.Second, fmt.Sprintf("agent %s %s everywhere", name, want), func() error {
		for _, s := range servers {
			a, err := s.State().Agent(name)
			if err != nil || a == nil {
				return fmt.Errorf("%s does not know %s yet (%v)", s.Name(), name, err)
			}
			if a.Status != want {
				return fmt.Errorf("%s sees %s", s.Name(), a.Status)
			}
		}
		return nil
	})
}

func TestHeartbeatsDegradeOfflineRecover(t *testing.T) {
	c := newClusterWith(t, 3, fastHeartbeats)
	leader := c.leader()
	via := followers(leader, c.servers)[0]
	cl := serversClient(t, via)
	ctx := context.Background()

	// Heartbeats from an agent nobody knows: NotFound, so that it registers.
	if _, err := cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "agent-001"}); status.Code(err) != codes.NotFound {
		t.Fatalf("heartbeat before register: %v, want NotFound", err)
	}
	resp, err := cl.Register(ctx, &gridpb.RegisterRequest{Name: "agent-001", Address: "127.0.0.21:8001", MaxNodes: 3, StorageRoot: "/tmp/a1"})
	if err != nil {
		t.Fatalf("register via follower: %v", err)
	}
	if resp.GetHeartbeatIntervalMs() != 50 {
		t.Errorf("heartbeat interval %dms, want 50", resp.GetHeartbeatIntervalMs())
	}
	waitStatus(t, c.servers, "agent-001", fsm.AgentHealthy)

	// Silence: degraded, then offline.
	waitStatus(t, c.servers, "agent-001", fsm.AgentDegraded)
	waitStatus(t, c.servers, "agent-001", fsm.AgentOffline)

	// One heartbeat, through a follower: healthy again.
	if _, err := cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "agent-001"}); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	waitStatus(t, c.servers, "agent-001", fsm.AgentHealthy)

	// The HTTP API shows the leader's view, from any server.
	a, err := apiClient(t, via).Agent(ctx, "agent-001")
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "healthy" || a.LastHeartbeat.IsZero() || a.MaxNodes != 3 || a.StorageRoot != "/tmp/a1" {
		t.Fatalf("agent via HTTP: %+v", a)
	}

	if _, err := cl.Unregister(ctx, &gridpb.UnregisterRequest{Name: "agent-001"}); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	waitAgent(t, c.servers, "agent-001", false)
}

func TestFailoverDoesNotDegradeAgents(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) {
		fastHeartbeats(cfg)
		cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Second, 2*time.Second
	})
	old := c.leader()
	rest := followers(old, c.servers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const agents = 5
	for i := 0; i < agents; i++ {
		if _, err := serversClient(t, rest[0]).Register(ctx, &gridpb.RegisterRequest{Name: fmt.Sprintf("a%d", i), Address: "x:1"}); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, c.servers, fmt.Sprintf("a%d", i), true)
	}
	// Agents heartbeat every 300ms to a surviving server, but a heartbeat can fail while
	// there is no leader: the new leader must still not degrade anyone.
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl := serversClient(t, rest[1])
		for ctx.Err() == nil {
			for i := 0; i < agents; i++ {
				_, _ = cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: fmt.Sprintf("a%d", i)})
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	_ = old.stop(false)
	leader := c.leader(rest...)
	// Watch for twice the degrade threshold under the new leader.
	deadline := time.Now().Add(2 * leader.config.AgentDegradedAfter)
	for time.Now().Before(deadline) {
		for i := 0; i < agents; i++ {
			if st := agentStatus(t, leader, fmt.Sprintf("a%d", i)); st != fsm.AgentHealthy {
				t.Fatalf("agent a%d became %s after a failover", i, st)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestReportNodeChecksOwnership(t *testing.T) {
	c := newClusterWith(t, 1, fastHeartbeats)
	s := c.leader()
	cl := serversClient(t, s)
	ctx := context.Background()
	for _, name := range []string{"a1", "a2"} {
		if _, err := cl.Register(ctx, &gridpb.RegisterRequest{Name: name, Address: deadAgentAddr, StorageRoot: "/tmp/" + name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, &fsm.SpawnNode{ID: "n1", Agent: "a1", Port: 5000}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.ReportNode(ctx, &gridpb.NodeReport{Agent: "a2", NodeId: "n1", Event: gridpb.NodeEvent_NODE_EVENT_RUNNING, Pid: 9})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("report from the wrong agent: %v, want PermissionDenied", err)
	}
	_, err = cl.ReportNode(ctx, &gridpb.NodeReport{Agent: "a1", NodeId: "n9", Event: gridpb.NodeEvent_NODE_EVENT_RUNNING, Pid: 9})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("report about an unknown node: %v, want NotFound", err)
	}
	if _, err := cl.ReportNode(ctx, &gridpb.NodeReport{Agent: "a1", NodeId: "n1", Event: gridpb.NodeEvent_NODE_EVENT_RUNNING, Pid: 9}); err != nil {
		t.Fatal(err)
	}
	n, _ := s.State().Node("n1")
	if n.Status != fsm.NodeStatusRunning || n.PID != 9 {
		t.Fatalf("node %+v", n)
	}
}
