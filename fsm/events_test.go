package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/events"
)

// derived applies cmds in order (at one-second steps) and returns every event the FSM
// derived, as the event hook saw them.
func derived(t *testing.T, cmds ...Command) (*FSM, []*events.Event) {
	t.Helper()
	f := newFSM(t)
	var got []*events.Event
	f.SetEventHook(func(evs []*events.Event) { got = append(got, evs...) })
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i, c := range cmds {
		if err, _ := applyCmd(t, f, uint64(i+1), t0.Add(time.Duration(i)*time.Second), c).(error); err != nil {
			t.Fatalf("command %d (%s): %v", i, c.Type(), err)
		}
	}
	return f, got
}

// summary renders events as "seq:type" (with "<-cause" when there is one).
func summary(evs []*events.Event) string {
	var parts []string
	for _, e := range evs {
		s := fmt.Sprintf("%d:%s", e.Seq, e.Type)
		if e.CausedBy != 0 {
			s += fmt.Sprintf("<-%d", e.CausedBy)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

var reg = &RegisterAgent{Name: "a1", Address: "127.0.0.21:8001", Hostname: "h1", MaxNodes: 4, StorageRoot: "/data"}

func TestEventDerivation(t *testing.T) {
	cases := []struct {
		name string
		cmds []Command
		want string
	}{
		{"agent registered, cluster healthy", []Command{reg},
			"1:agent_registered 2:cluster_healthy"},
		{"a healthy agent registering again is quiet", []Command{reg, reg},
			"1:agent_registered 2:cluster_healthy"},
		{"degraded, offline, recovered", []Command{reg,
			&SetAgentStatus{Name: "a1", Status: AgentDegraded},
			&SetAgentStatus{Name: "a1", Status: AgentOffline},
			&SetAgentStatus{Name: "a1", Status: AgentHealthy}},
			"1:agent_registered 2:cluster_healthy 3:agent_degraded 4:cluster_critical 5:agent_offline 6:agent_recovered 7:cluster_healthy"},
		{"re-registering while offline is a recovery", []Command{reg,
			&SetAgentStatus{Name: "a1", Status: AgentOffline}, reg},
			"1:agent_registered 2:cluster_healthy 3:agent_offline 4:cluster_critical 5:agent_recovered 6:cluster_healthy"},
		{"two agents, one degraded", []Command{reg,
			&RegisterAgent{Name: "a2", Address: "x:1"},
			&SetAgentStatus{Name: "a2", Status: AgentDegraded},
			&DeregisterAgent{Name: "a2"}},
			"1:agent_registered 2:cluster_healthy 3:agent_registered 4:agent_degraded 5:cluster_degraded 6:agent_unregistered 7:cluster_healthy"},
		{"spawn succeeded", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3"},
		{"spawn failed", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeFailed{ID: "n1", Error: "port in use"}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_failed<-3"},
		{"crash and restart", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&NodeCrashed{ID: "n1", PID: 42, ExitCode: -1, Signal: "SIGKILL", Restarting: true},
			&NodeRestarted{ID: "n1", PID: 43, Restarts: 1}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:node_crashed 6:node_restarted<-5"},
		{"give up after crashes", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&NodeCrashed{ID: "n1", PID: 42, ExitCode: 3, Restarting: false},
			&NodeFailed{ID: "n1", Error: "gave up after 3 restarts"}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:node_crashed"},
		{"stop succeeded", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&StopNode{ID: "n1"},
			&NodeStopped{ID: "n1", ExitCode: 0}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:stop_requested 6:stop_succeeded<-5"},
		{"stop failed", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&StopNode{ID: "n1"},
			&NodeStopFailed{ID: "n1", Error: "agent unreachable"}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:stop_requested 6:stop_failed<-5"},
		{"stopping a failed node", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeFailed{ID: "n1", Error: "x"},
			&StopNode{ID: "n1"}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_failed<-3 5:stop_requested 6:stop_succeeded<-5"},
		{"an agent that leaves stops its nodes", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&NodeStopped{ID: "n1", ExitCode: 0},
			&DeregisterAgent{Name: "a1"}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:stop_succeeded 6:agent_unregistered"},
		{"stopping a pending node ends its spawn", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&StopNode{ID: "n1"},
			&NodeStopped{ID: "n1", ExitCode: -1}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_failed<-3 5:stop_requested 6:stop_succeeded<-5"},
		{"a node found missing by the leader", []Command{reg,
			&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
			&NodeStarted{ID: "n1", PID: 42},
			&NodeCrashed{ID: "n1", PID: 42, ExitCode: -1, Restarting: true, Reason: "the node was not running on agent a1"},
			&NodeRestarted{ID: "n1", PID: 43, Restarts: 1}},
			"1:agent_registered 2:cluster_healthy 3:spawn_requested 4:spawn_succeeded<-3 5:node_crashed 6:node_restarted<-5"},
		{"a stray process stopped", []Command{reg,
			&StrayStopped{Agent: "a1", ID: "n9", PID: 77, ExitCode: 0}},
			"1:agent_registered 2:cluster_healthy 3:stop_succeeded"},
		{"sampled heartbeat", []Command{reg, &SampleHeartbeat{Name: "a1", LastSeen: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}},
			"1:agent_registered 2:cluster_healthy 3:agent_heartbeat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, got := derived(t, tc.cmds...)
			if s := summary(got); s != tc.want {
				t.Fatalf("derived\n  %s\nwant\n  %s", s, tc.want)
			}
			// The outbox holds exactly what was derived, and the counters agree.
			out, err := f.State().Outbox(0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if summary(out) != tc.want {
				t.Fatalf("outbox %s, want %s", summary(out), tc.want)
			}
			meta, _ := f.State().EventMeta()
			if meta.LastSeq != uint64(len(got)) {
				t.Fatalf("last seq %d, want %d", meta.LastSeq, len(got))
			}
			for _, e := range got {
				if e.Description == "" || e.Timestamp.IsZero() || !e.Type.Valid() {
					t.Errorf("event %+v lacks a description, time or valid type", e)
				}
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	_, got := derived(t, reg,
		&SpawnNode{ID: "n1", Agent: "a1", Port: 50061, MemoryLimitMB: 256, CPULimit: 1.5},
		&NodeStarted{ID: "n1", PID: 42},
		&NodeCrashed{ID: "n1", PID: 42, ExitCode: -1, Signal: "SIGKILL", Restarting: true},
		&NodeRestarted{ID: "n1", PID: 43, Restarts: 1},
		&SetAgentStatus{Name: "a1", Status: AgentOffline, LastSeen: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
	)
	byType := map[events.Type]*events.Event{}
	for _, e := range got {
		byType[e.Type] = e
	}
	spawn := byType[events.SpawnRequested]
	for _, e := range got {
		if e.NodeID == "n1" && e.NodeName != "n1" {
			t.Errorf("%s of node n1 has node_name %q, want n1 (its ID: no name was given)", e.Type, e.NodeName)
		}
	}
	if spawn.NodeID != "n1" || spawn.AgentID != "a1" || spawn.Port != 50061 || spawn.MemoryLimitMB != 256 || spawn.CPULimit != 1.5 || spawn.StoragePath != "/data/n1" {
		t.Errorf("spawn_requested %+v", spawn)
	}
	crash := byType[events.NodeCrashed]
	if crash.PID != 42 || crash.ExitCode == nil || *crash.ExitCode != -1 || crash.Signal != "SIGKILL" || !strings.Contains(crash.Description, "SIGKILL") {
		t.Errorf("node_crashed %+v", crash)
	}
	restart := byType[events.NodeRestarted]
	if restart.NewPID != 43 || restart.RestartCount != 1 || restart.CausedBy != crash.Seq {
		t.Errorf("node_restarted %+v", restart)
	}
	off := byType[events.AgentOffline]
	if off.SecondsSinceHeartbeat != 5 || off.LastSeen == nil {
		t.Errorf("agent_offline %+v (want 5s since the heartbeat at 10:00:00)", off)
	}
	crit := byType[events.ClusterCritical]
	if crit.TotalAgents != 1 || crit.OfflineAgents != 1 || crit.HealthyAgents != 0 || !strings.Contains(crit.Reason, "a1") {
		t.Errorf("cluster_critical %+v", crit)
	}
}

func TestRejectedCommandsDeriveNothing(t *testing.T) {
	f, got := derived(t, reg)
	before := len(got)
	buf, _ := Encode(&SpawnNode{ID: "n1", Agent: "nobody", Port: 1})
	if err, _ := f.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: buf}).(error); !errors.Is(err, ErrRejected) {
		t.Fatalf("spawn on unknown agent: %v", err)
	}
	meta, _ := f.State().EventMeta()
	if meta.LastSeq != uint64(before) {
		t.Fatalf("a rejected command moved the seq to %d", meta.LastSeq)
	}
}

func TestEventsShippedTrimsOutbox(t *testing.T) {
	f, got := derived(t, reg, &RegisterAgent{Name: "a2", Address: "x:1"}) // 3 events
	if len(got) != 3 {
		t.Fatalf("got %s", summary(got))
	}
	ship := func(upTo uint64) error {
		err, _ := applyCmd(t, f, 100+upTo, time.Now(), &EventsShipped{UpTo: upTo}).(error)
		return err
	}
	if err := ship(2); err != nil {
		t.Fatal(err)
	}
	if err := ship(1); err != nil { // late, repeated acknowledgement: a no-op
		t.Fatal(err)
	}
	if err := ship(9); !errors.Is(err, ErrRejected) {
		t.Fatalf("acknowledging the future: %v", err)
	}
	out, _ := f.State().Outbox(0, 10)
	meta, _ := f.State().EventMeta()
	if summary(out) != "3:agent_registered" || meta.ShippedSeq != 2 || meta.LastSeq != 3 {
		t.Fatalf("outbox %s, meta %+v", summary(out), meta)
	}
	// Snapshots carry the outbox and the counters: a restored server goes on with seq 4.
	snap, _ := f.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	out2, _ := g.State().Outbox(0, 10)
	meta2, _ := g.State().EventMeta()
	if !reflect.DeepEqual(meta, meta2) || summary(out2) != summary(out) {
		t.Fatalf("restored outbox %s meta %+v; want %s %+v", summary(out2), meta2, summary(out), meta)
	}
	var next []*events.Event
	g.SetEventHook(func(evs []*events.Event) { next = append(next, evs...) })
	applyCmd(t, g, 200, time.Now(), &DeregisterAgent{Name: "a2"})
	if summary(next) != "4:agent_unregistered" {
		t.Fatalf("after restore: %s", summary(next))
	}
}

func TestLeaderFoundEvents(t *testing.T) {
	_, got := derived(t, reg,
		&SpawnNode{ID: "n1", Agent: "a1", Port: 50061},
		&NodeStarted{ID: "n1", PID: 42},
		&NodeCrashed{ID: "n1", PID: 42, ExitCode: -1, Restarting: true, Reason: "the node was not running on agent a1"},
		&StrayStopped{Agent: "a1", ID: "n9", PID: 77, ExitCode: -1, Signal: "SIGTERM"},
	)
	crash, stray := got[len(got)-2], got[len(got)-1]
	if crash.Type != events.NodeCrashed || !strings.Contains(crash.Reason, "not running on agent a1") || !strings.Contains(crash.Reason, "restarted") {
		t.Errorf("node_crashed %+v", crash)
	}
	if stray.Type != events.StopSucceeded || stray.NodeID != "n9" || stray.PID != 77 || stray.Signal != "SIGTERM" || !strings.Contains(stray.Reason, "did not expect") {
		t.Errorf("stray stop_succeeded %+v", stray)
	}
}

func TestStrayStoppedRefusesNodesThatShouldRun(t *testing.T) {
	f, _ := derived(t, reg, &SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, &NodeStarted{ID: "n1", PID: 42})
	buf, _ := Encode(&StrayStopped{Agent: "a1", ID: "n1", PID: 42})
	if err, _ := f.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: buf}).(error); !errors.Is(err, ErrRejected) {
		t.Fatalf("stray stop of a running node: %v, want rejected", err)
	}
}

func TestRecoveryDowntimeCountsFromLastHeartbeat(t *testing.T) {
	seen := time.Date(2026, 11, 26, 9, 59, 0, 0, time.UTC) // a minute before the first command
	_, got := derived(t, reg,
		&SetAgentStatus{Name: "a1", Status: AgentDegraded, LastSeen: seen},
		&SetAgentStatus{Name: "a1", Status: AgentOffline, LastSeen: seen},
		&SetAgentStatus{Name: "a1", Status: AgentHealthy},
	)
	rec := got[len(got)-2]
	if rec.Type != events.AgentRecovered {
		t.Fatalf("got %s", summary(got))
	}
	// Recovered at 10:00:03, last heard from at 9:59:00.
	if rec.DowntimeSeconds != 63 {
		t.Errorf("downtime %vs, want 63s (from the last heartbeat, not from going offline)", rec.DowntimeSeconds)
	}
}

func TestStopCarriesItsKillTimeout(t *testing.T) {
	f, _ := derived(t, reg, &SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, &NodeStarted{ID: "n1", PID: 42},
		&StopNode{ID: "n1", KillTimeout: 42 * time.Second})
	n, _ := f.State().Node("n1")
	if n.KillTimeout != 42*time.Second || n.EffectiveKillTimeout() != 42*time.Second {
		t.Fatalf("node %+v", n)
	}
	if _, err := Encode(&StopNode{ID: "n1", KillTimeout: MaxKillTimeout + 1}); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("a kill timeout over the maximum: %v", err)
	}
}

func TestOOMKilledCrash(t *testing.T) {
	for _, tc := range []struct {
		name       string
		restarting bool
		wantDesc   string
		wantStatus NodeStatus
	}{
		{"restarted", true, "Node n1 on a1 was killed by the kernel: out of memory at its 64 MB limit", NodeStatusRestarting},
		{"policy exhausted", false, "Node n1 on a1 was killed by the kernel: out of memory at its 64 MB limit; restart policy exhausted; the node is failed", NodeStatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got := derived(t, reg,
				&SpawnNode{ID: "n1", Agent: "a1", Port: 50061, MemoryLimitMB: 64},
				&NodeStarted{ID: "n1", PID: 42},
				&NodeCrashed{ID: "n1", PID: 42, ExitCode: -1, Signal: "SIGKILL", Restarting: tc.restarting, OOMKilled: true})
			crash := got[len(got)-1]
			if crash.Type != events.NodeCrashed || crash.Reason != events.ReasonOOMKilled || crash.MemoryLimitMB != 64 || crash.Description != tc.wantDesc {
				t.Fatalf("node_crashed: type %s, reason %q, memory limit %d, description %q; want oom_killed, 64, %q",
					crash.Type, crash.Reason, crash.MemoryLimitMB, crash.Description, tc.wantDesc)
			}
			n, err := f.State().Node("n1")
			if err != nil || n.Status != tc.wantStatus {
				t.Fatalf("node n1: %+v, %v; want status %s", n, err, tc.wantStatus)
			}
		})
	}
}
