package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/restart"
)

// storeFixture is nodeFixture with at least 10 events derived.
func storeFixture(t *testing.T) (*FSM, *uint64) {
	t.Helper()
	f, idx := nodeFixture(t)
	for {
		meta, err := f.State().EventMeta()
		if err != nil {
			t.Fatal(err)
		}
		if meta.LastSeq >= 10 {
			return f, idx
		}
		if err := applyStep(t, f, idx, &SampleHeartbeat{Name: "a1", LastSeen: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// cursors describes the stores as "key=acked" with flags (r released, f faulty),
// and the shipped seq, e.g. "s1=4 s2=0r | shipped 4".
func cursors(t *testing.T, f *FSM) string {
	t.Helper()
	meta, err := f.State().EventMeta()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, s := range meta.Stores {
		if s.LostFrom > 0 {
			parts = append([]string{fmt.Sprintf("%s lost %d-%d |", s.Key(), s.LostFrom, s.LostTo)}, parts...)
		}
		p := fmt.Sprintf("%s=%d", s.Key(), s.Acked)
		if s.Released {
			p += "r"
		}
		if s.Faulty {
			p += "f"
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%s | shipped %d", strings.Join(parts, " "), meta.ShippedSeq)
}

func TestEventStoreCursors(t *testing.T) {
	add := func(addr string) Command { return &EventStoreAdd{Addr: addr} }
	ack := func(key string, upTo uint64) Command { return &EventStoreAck{Key: key, UpTo: upTo} }
	cases := []struct {
		name    string
		steps   []Command
		want    string
		wantErr string // of the last step
	}{
		{"one store trims as it acknowledges", []Command{add("s1"), ack("s1", 4)}, "s1=4 | shipped 4", ""},
		{"the slowest store holds the outbox", []Command{add("s1"), add("s2"), ack("s1", 6), ack("s2", 3)},
			"s1=6 s2=3 | shipped 3", ""},
		{"adding twice does nothing", []Command{add("s1"), ack("s1", 2), add("s1")}, "s1=2 | shipped 2", ""},
		{"a store added late does not hold the outbox back until it catches up",
			[]Command{add("s1"), ack("s1", 5), add("s2"), ack("s1", 7)}, "s1=7 s2=0 | shipped 7", ""},
		{"a caught-up store holds it again",
			[]Command{add("s1"), ack("s1", 5), add("s2"), ack("s2", 5), ack("s1", 8)}, "s1=8 s2=5 | shipped 5", ""},
		{"a released store stops holding it back",
			[]Command{add("s1"), add("s2"), ack("s1", 6), &EventStoreFault{Key: "s2", Fault: "down", Release: true}},
			"s1=6 s2=0r | shipped 6", ""},
		{"an acknowledgement ends the release",
			[]Command{add("s1"), add("s2"), &EventStoreFault{Key: "s2", Release: true}, ack("s2", 2)},
			"s1=0 s2=2 | shipped 0", ""},
		{"lost data resets the cursor, and shipped stays",
			[]Command{add("s1"), add("s2"), ack("s1", 6), ack("s2", 6), &EventStoreFault{Key: "s2", Fault: "lost", Reset: true}, ack("s1", 8)},
			"s1=8 s2=0 | shipped 8", ""},
		{"a faulty store is not waited for",
			[]Command{add("s1"), add("s2"), ack("s1", 6), &EventStoreFault{Key: "s2", Fault: "garbage", Untrusted: true}},
			"s1=6 s2=0f | shipped 6", ""},
		{"clear trusts it again",
			[]Command{add("s1"), &EventStoreFault{Key: "s1", Untrusted: true}, &EventStoreFault{Key: "s1", Clear: true}}, "s1=0 | shipped 0", ""},
		{"with every store faulty nothing is trimmed",
			[]Command{add("s1"), ack("s1", 3), &EventStoreFault{Key: "s1", Untrusted: true}, ack("s1", 9)}, "s1=9f | shipped 3", ""},
		{"a conflict is faulty until the store loses its data",
			[]Command{add("s1"), ack("s1", 4), &EventStoreFault{Key: "s1", Conflict: true}, &EventStoreFault{Key: "s1", Reset: true}},
			"s1=0 | shipped 4", ""},
		{"skip past lost events",
			[]Command{add("s1"), add("s2"), ack("s1", 6), ack("s2", 2), &EventStoreFault{Key: "s2", SkipTo: 5}, ack("s2", 6)},
			"s2 lost 3-5 | s1=6 s2=6 | shipped 6", ""},
		{"remove", []Command{add("s1"), add("s2"), ack("s1", 4), &EventStoreRemove{Key: "s2"}, ack("s1", 5)}, "s1=5 | shipped 5", ""},
		{"ack past the last event", []Command{add("s1"), ack("s1", 1000)}, "s1=0 | shipped 0", "the last event is"},
		{"ack of an unknown store", []Command{ack("s9", 1)}, " | shipped 0", "no event store s9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, idx := storeFixture(t)
			var err error
			for _, c := range tc.steps {
				err = applyStep(t, f, idx, c)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("apply: %v, want a rejection with %q", err, tc.wantErr)
			}
			if got := cursors(t, f); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			meta, _ := f.State().EventMeta()
			waiting, _ := f.State().Outbox(0, 1000)
			if uint64(len(waiting)) != meta.LastSeq-meta.ShippedSeq {
				t.Errorf("the outbox holds %d events, want %d", len(waiting), meta.LastSeq-meta.ShippedSeq)
			}
		})
	}
}

// The first store added to a grid that shipped before stores had cursors takes over
// the shipped seq: that was its cursor.
func TestFirstStoreTakesTheShippedSeq(t *testing.T) {
	f, idx := storeFixture(t)
	if err := applyStep(t, f, idx, &EventsShipped{UpTo: 7}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Command{&EventStoreAdd{Addr: "s1"}, &EventStoreAdd{Addr: "s2"}} {
		if err := applyStep(t, f, idx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := cursors(t, f), "s1=7 s2=0 | shipped 7"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A node spawned with the event-store role is a store until it is asked to stop.
func TestEventStoreNode(t *testing.T) {
	f, idx := storeFixture(t)
	steps := []struct {
		cmd  Command
		want string
	}{
		{&SpawnNode{ID: "n1", Agent: "a1", Port: 9001, Role: RoleEventStore, Restart: restart.Policy{}}, "node:n1=0 | shipped 0"},
		{&NodeStarted{ID: "n1", PID: 42}, "node:n1=0 | shipped 0"},
		{&EventStoreAck{Key: "node:n1", UpTo: 3}, "node:n1=3 | shipped 3"},
		{&StopNode{ID: "n1"}, " | shipped 3"},
	}
	for _, s := range steps {
		if err := applyStep(t, f, idx, s.cmd); err != nil {
			t.Fatalf("%s: %v", s.cmd.Type(), err)
		}
		if got := cursors(t, f); got != s.want {
			t.Errorf("after %s: got %q, want %q", s.cmd.Type(), got, s.want)
		}
	}
	if err := (&SpawnNode{ID: "n2", Agent: "a1", Port: 9002, Role: "cache"}).Validate(); err == nil ||
		!strings.Contains(err.Error(), `the only role is "event-store"`) {
		t.Errorf("spawn with an unknown role: %v", err)
	}
}

// A snapshot restore keeps the stores' cursors: they describe the history, which a
// restore never rewinds.
func TestCarryForwardKeepsStoreCursors(t *testing.T) {
	f, idx := storeFixture(t)
	snap := persisted(t, f)
	for _, c := range []Command{&EventStoreAdd{Addr: "s1"}, &EventStoreAck{Key: "s1", UpTo: 9}} {
		if err := applyStep(t, f, idx, c); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := f.CarryForward(bytes.NewReader(snap), Restored{SnapshotIndex: 1, Time: time.Now()}, &out); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(io.NopCloser(&out)); err != nil {
		t.Fatal(err)
	}
	if got, want := cursors(t, f), "s1=9 | shipped 9"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
