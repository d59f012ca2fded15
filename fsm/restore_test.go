package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

// persisted returns f's snapshot stream as it is now.
func persisted(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// outboxSeqs renders the seqs and types waiting in s's outbox.
func outboxSeqs(t *testing.T, s *State) string {
	t.Helper()
	evs, err := s.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, e := range evs {
		out += fmt.Sprintf("%d:%s ", e.Seq, e.Type)
	}
	return out
}

// An operator's restore takes the snapshot's tables and keeps the current event
// pipeline: seqs go on from the last assigned, unshipped events keep their seqs, and
// the restore is itself an event. Both the restoring server and one that installs the
// rewritten stream (a follower catching up) hold the same afterwards.
func TestCarryForward(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	saved := at.Add(-time.Hour)
	cases := []struct {
		name string
		// build returns the FSM to restore into and the snapshot stream to restore.
		build func(t *testing.T) (*FSM, []byte)
		// want: the counters and outbox after the restore, and the agents it holds.
		lastSeq, shippedSeq uint64
		outbox, agents      string
	}{
		{"later events shipped", func(t *testing.T) (*FSM, []byte) {
			f := newFSM(t)
			applyCmd(t, f, 1, at, &RegisterAgent{Name: "a"}) // 1 registered, 2 healthy
			snap := persisted(t, f)
			applyCmd(t, f, 2, at, &RegisterAgent{Name: "b"}) // 3 registered
			applyCmd(t, f, 3, at, &EventsShipped{UpTo: 3})
			return f, snap
		}, 3 + 1, 3, "4:cluster_restored ", "a"},
		{"unshipped events keep their seqs", func(t *testing.T) (*FSM, []byte) {
			f := newFSM(t)
			applyCmd(t, f, 1, at, &RegisterAgent{Name: "a"}) // 1, 2
			applyCmd(t, f, 2, at, &EventsShipped{UpTo: 1})
			snap := persisted(t, f)
			applyCmd(t, f, 3, at, &RegisterAgent{Name: "b"})                        // 3
			applyCmd(t, f, 4, at, &SetAgentStatus{Name: "b", Status: AgentOffline}) // 4 offline, 5 degraded
			return f, snap
		}, 5 + 1, 1, "2:cluster_healthy 3:agent_registered 4:agent_offline 5:cluster_degraded 6:cluster_restored ", "a"},
		{"a snapshot of a longer history", func(t *testing.T) (*FSM, []byte) {
			other := newFSM(t)
			applyCmd(t, other, 1, at, &RegisterAgent{Name: "x"})                        // 1, 2
			applyCmd(t, other, 2, at, &SetAgentStatus{Name: "x", Status: AgentOffline}) // 3, 4
			f := newFSM(t)
			applyCmd(t, f, 1, at, &RegisterAgent{Name: "a"}) // 1, 2
			return f, persisted(t, other)
		}, 4 + 1, 0, "1:agent_registered 2:cluster_healthy 3:agent_offline 4:cluster_critical 5:cluster_restored ", "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, snap := tc.build(t)
			var out bytes.Buffer
			e, err := f.CarryForward(bytes.NewReader(snap), Restored{SnapshotIndex: 9, SnapshotTime: saved, RequestedBy: "ops", Time: at}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if e.Seq != tc.lastSeq || e.Type != events.ClusterRestored || e.SnapshotIndex != 9 ||
				e.SnapshotTime == nil || !e.SnapshotTime.Equal(saved) || e.RequestedBy != "ops" || e.Description == "" {
				t.Fatalf("restore event %+v", e)
			}
			follower := newFSM(t)
			for _, g := range []struct {
				name string
				fsm  *FSM
			}{{"restoring", f}, {"installing", follower}} {
				if err := g.fsm.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))); err != nil {
					t.Fatalf("%s: %v", g.name, err)
				}
				s := g.fsm.State()
				meta, err := s.EventMeta()
				if err != nil {
					t.Fatal(err)
				}
				if meta.LastSeq != tc.lastSeq || meta.ShippedSeq != tc.shippedSeq {
					t.Errorf("%s: last seq %d, shipped %d; want %d, %d", g.name, meta.LastSeq, meta.ShippedSeq, tc.lastSeq, tc.shippedSeq)
				}
				if got := outboxSeqs(t, s); got != tc.outbox {
					t.Errorf("%s: outbox %q, want %q", g.name, got, tc.outbox)
				}
				agents, _ := s.Agents()
				names := ""
				for _, a := range agents {
					names += a.Name
				}
				if names != tc.agents {
					t.Errorf("%s: agents %q, want %q", g.name, names, tc.agents)
				}
				// The next event takes the next seq.
				applyCmd(t, g.fsm, 100, at, &RegisterAgent{Name: "next"})
				if m, _ := g.fsm.State().EventMeta(); m.LastSeq <= tc.lastSeq {
					t.Errorf("%s: after the next command the last seq is %d", g.name, m.LastSeq)
				}
				if ev, _ := g.fsm.State().OutboxEvent(tc.lastSeq + 1); ev == nil || ev.Type != events.AgentRegistered {
					t.Errorf("%s: event %d is %+v, want the next registration", g.name, tc.lastSeq+1, ev)
				}
			}
		})
	}
}

// A stream the FSM cannot read is refused before anything changes.
func TestCarryForwardRejectsBadSnapshot(t *testing.T) {
	f := newFSM(t)
	if _, err := f.CarryForward(bytes.NewReader([]byte("not a snapshot")), Restored{}, io.Discard); err == nil {
		t.Fatal("a bad snapshot was carried forward")
	}
}
