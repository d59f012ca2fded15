package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/storage"
)

// eventStore is a real storage node serving in-process as the event store.
type eventStore struct {
	addr string
	stop func() // stops serving and waits until the node has closed its store
}

// startEventStore starts a storage node on 127.0.0.1:port (0: a free port) with its
// data in dir. It is stopped at the end of the test if the test did not stop it.
func startEventStore(t *testing.T, dir string, port int) *eventStore {
	t.Helper()
	cfg := storage.DefaultConfig()
	cfg.Port, cfg.DataDir = port, dir
	cfg.Logger = gridtest.Logger(t, "store")
	srv, err := storage.New(cfg)
	if err != nil {
		t.Fatalf("start event store: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	es := &eventStore{addr: srv.Addr().String()}
	stopped := false
	es.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("event store stopped with: %v", err)
		}
	}
	t.Cleanup(es.stop)
	return es
}

// getStatus asks s for GET /v1/status.
func getStatus(t *testing.T, s *Server) (*api.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return apiClient(t, s).Status(ctx)
}

// waitPipeline waits until GET /v1/status via s shows the event pipeline as cond
// wants it, and returns that status.
func waitPipeline(t *testing.T, s *Server, what string, cond func(ev api.StatusEvents) error) *api.Status {
	t.Helper()
	var st *api.Status
	gridtest.WaitFor(t, 30*time.Second, what, func() error {
		var err error
		if st, err = getStatus(t, s); err != nil {
			return err
		}
		return cond(st.Events)
	})
	return st
}

// allShipped is the pipeline with every event stored and the store reachable.
func allShipped(ev api.StatusEvents) error {
	if ev.Waiting != 0 || ev.ShippedSeq != ev.LastSeq || !ev.StoreReachable || ev.LastError != "" {
		return fmt.Errorf("pipeline %+v", ev)
	}
	return nil
}

func TestStatusEventPipeline(t *testing.T) {
	storeDir := t.TempDir()
	store := startEventStore(t, storeDir, 0)
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.EventStores = []string{store.addr} })
	leader := c.leader()
	via := followers(leader, c.servers)[0] // a follower forwards to the leader

	for _, name := range []string{"agent-001", "agent-002"} {
		register(t, leader, name)
	}
	st := waitPipeline(t, via, "every event shipped", func(ev api.StatusEvents) error {
		if ev.LastSeq < 3 { // two agent_registered and a cluster_healthy at least
			return fmt.Errorf("last_seq %d, want at least 3", ev.LastSeq)
		}
		return allShipped(ev)
	})
	if want := (api.StatusLeader{Name: leader.Name(), ID: leader.ID(), Address: leader.RaftAddr()}); st.Leader != want {
		t.Errorf("leader %+v, want %+v", st.Leader, want)
	}
	if st.Servers != 3 {
		t.Errorf("servers %d, want 3", st.Servers)
	}
	if want := (api.StatusAgents{Total: 2, Healthy: 2}); st.Agents != want {
		t.Errorf("agents %+v, want %+v", st.Agents, want)
	}
	if st.Nodes != (api.StatusNodes{}) {
		t.Errorf("nodes %+v, want none", st.Nodes)
	}
	if st.ClusterHealth != "cluster_healthy" {
		t.Errorf("cluster health %q, want cluster_healthy", st.ClusterHealth)
	}
	if st.Events.EventStore != store.addr || st.Events.LastShipped.IsZero() {
		t.Errorf("events %+v, want store %s and a last shipped time", st.Events, store.addr)
	}

	// The store goes away: new events wait in the outbox, and the status says why.
	store.stop()
	register(t, leader, "agent-003")
	st = waitPipeline(t, via, "events waiting for the stopped store", func(ev api.StatusEvents) error {
		if ev.Waiting == 0 || ev.StoreReachable || ev.LastError == "" {
			return fmt.Errorf("pipeline %+v", ev)
		}
		return nil
	})
	if st.Events.Waiting != st.Events.LastSeq-st.Events.ShippedSeq {
		t.Errorf("waiting %d, want last_seq - shipped_seq in %+v", st.Events.Waiting, st.Events)
	}

	// A store on the same data dir and address: the outbox drains.
	_, port, _ := net.SplitHostPort(store.addr)
	p, _ := strconv.Atoi(port)
	restarted := startEventStore(t, storeDir, p)
	st = waitPipeline(t, via, "the outbox drained into the restarted store", allShipped)
	if st.Agents.Total != 3 {
		t.Errorf("agents %+v, want 3", st.Agents)
	}
	restarted.stop()
}

func TestStatusCounts(t *testing.T) {
	c := newCluster(t, 1)
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apply := func(cmd fsm.Command) {
		t.Helper()
		if _, err := leader.Apply(ctx, cmd); err != nil {
			t.Fatalf("apply %s: %v", cmd.Type(), err)
		}
	}
	for _, name := range []string{"a1", "a2", "a3"} {
		apply(&fsm.RegisterAgent{Name: name, Address: deadAgentAddr, MaxNodes: 4, StorageRoot: "/srv/" + name})
	}
	// a1: one pending, one running, one failed; a2: one running that will be lost.
	apply(&fsm.SpawnNode{ID: "n1", Agent: "a1", Port: 50061})
	apply(&fsm.SpawnNode{ID: "n2", Agent: "a1", Port: 50062})
	apply(&fsm.NodeStarted{ID: "n2", PID: 4242})
	apply(&fsm.SpawnNode{ID: "n3", Agent: "a1", Port: 50063})
	apply(&fsm.NodeFailed{ID: "n3", Error: "no such binary"})
	apply(&fsm.SpawnNode{ID: "n4", Agent: "a2", Port: 50061})
	apply(&fsm.NodeStarted{ID: "n4", PID: 4343})
	apply(&fsm.SetAgentStatus{Name: "a2", Status: fsm.AgentOffline})
	apply(&fsm.SetAgentStatus{Name: "a3", Status: fsm.AgentDegraded})

	st, err := getStatus(t, leader)
	if err != nil {
		t.Fatal(err)
	}
	if want := (api.StatusAgents{Total: 3, Healthy: 1, Degraded: 1, Offline: 1}); st.Agents != want {
		t.Errorf("agents %+v, want %+v", st.Agents, want)
	}
	if want := (api.StatusNodes{Total: 4, Pending: 1, Running: 1, Failed: 1, Lost: 1}); st.Nodes != want {
		t.Errorf("nodes %+v, want %+v", st.Nodes, want)
	}
	if st.ClusterHealth != "cluster_degraded" {
		t.Errorf("cluster health %q, want cluster_degraded", st.ClusterHealth)
	}
	// No event store: events wait, and nothing is reachable.
	ev := st.Events
	if ev.EventStore != "" || ev.StoreReachable || ev.LastSeq == 0 || ev.ShippedSeq != 0 || ev.Waiting != ev.LastSeq {
		t.Errorf("events %+v, want all waiting with no store", ev)
	}
	if st.Servers != 1 || st.Leader.Name != leader.Name() || st.Leader.ID != leader.ID() {
		t.Errorf("leader %+v, servers %d", st.Leader, st.Servers)
	}
}

func TestStatusReportsOutboxOverItsBound(t *testing.T) {
	c := newClusterWith(t, 1, func(cfg *Config) { cfg.EventOutboxLimit = 2 }) // no event store
	s := c.leader()
	register(t, s, "a1") // agent_registered, cluster_healthy: at the bound, not over
	st, err := getStatus(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events.Waiting != 2 || st.Events.OverLimit || st.Events.OutboxLimit != 2 {
		t.Fatalf("at the bound: %+v", st.Events)
	}
	register(t, s, "a2")
	if st, err = getStatus(t, s); err != nil {
		t.Fatal(err)
	}
	if st.Events.Waiting != 3 || !st.Events.OverLimit {
		t.Fatalf("over the bound: %+v", st.Events)
	}
	// Nothing was dropped: all three events still wait in the outbox.
	if out, _ := s.State().Outbox(0, 10); len(out) != 3 {
		t.Fatalf("outbox holds %d events, want 3", len(out))
	}
}

// The health is the agents': with none left, the summary shows none rather than the
// last health announced, and no cluster event is derived for it.
func TestStatusClusterHealthWithoutAgents(t *testing.T) {
	c := newCluster(t, 1)
	s := c.leader()
	steps := []struct {
		apply      fsm.Command
		wantHealth string
	}{
		{nil, ""},
		{&fsm.RegisterAgent{Name: "a1", Address: "127.0.0.1:8001", MaxNodes: 4}, "cluster_healthy"},
		{&fsm.DeregisterAgent{Name: "a1"}, ""},
		{&fsm.RegisterAgent{Name: "a1", Address: "127.0.0.1:8001", MaxNodes: 4}, "cluster_healthy"},
	}
	for i, step := range steps {
		if step.apply != nil {
			if _, err := s.Apply(context.Background(), step.apply); err != nil {
				t.Fatalf("step %d: apply %s: %v", i, step.apply.Type(), err)
			}
		}
		st, err := getStatus(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if st.ClusterHealth != step.wantHealth {
			t.Errorf("step %d: cluster health %q, want %q", i, st.ClusterHealth, step.wantHealth)
		}
	}
	// The events are as before: one cluster_healthy, when the first agent came.
	evs, err := s.State().Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var healthy int
	for _, e := range evs {
		if e.Type == events.ClusterHealthy {
			healthy++
		}
	}
	if healthy != 1 {
		t.Errorf("%d cluster_healthy events, want 1", healthy)
	}
}
