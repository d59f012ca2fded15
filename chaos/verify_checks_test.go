//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/chaos/checker"
	"github.com/sutragrid/grid/events"
)

// The final checks are what a chaos run's verdict rests on: each must find what it
// looks for, and nothing else. These run anywhere, without root.

func TestOutcomeOfACall(t *testing.T) {
	for _, c := range []struct {
		err  error
		want checker.Outcome
		code int
	}{
		{nil, checker.OK, 0},
		{&api.StatusError{Code: 409, Message: "conflict"}, checker.Failed, 409},
		{fmt.Errorf("spawn: %w", &api.StatusError{Code: 404}), checker.Failed, 404},
		{&api.StatusError{Code: 503, Message: "no leader"}, checker.Unknown, 503},
		{errors.New("dial tcp: i/o timeout"), checker.Unknown, 0},
	} {
		if got, code := outcome(c.err); got != c.want || code != c.code {
			t.Errorf("outcome(%v) = %s, %d; want %s, %d", c.err, got, code, c.want, c.code)
		}
	}
}

func TestCheckAcknowledged(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	op := func(kind checker.Kind, name string, o checker.Outcome, from, to int) checker.Op {
		return checker.Op{Kind: kind, Name: name, Outcome: o, Call: at(from), Return: at(to)}
	}
	state := &serverView{Nodes: []api.Node{
		{Name: "kept", Status: api.NodeRunning},
		{Name: "stopped", Status: api.NodeStopped},
		{Name: "unstopped", Status: api.NodeRunning},
	}}
	ops := []checker.Op{
		op(checker.Spawn, "kept", checker.OK, 0, 1),
		op(checker.Spawn, "lost", checker.OK, 0, 1),
		op(checker.Spawn, "restored-away", checker.OK, 11, 12),
		op(checker.Spawn, "maybe", checker.Unknown, 0, 3),
		op(checker.Stop, "stopped", checker.OK, 2, 3),
		op(checker.Stop, "unstopped", checker.OK, 2, 3),
		op(checker.Stop, "refused", checker.Failed, 2, 3),
	}
	bad := checkAcknowledged(ops, state, []interval{{at(10), at(20)}})
	if len(bad) != 2 || !strings.Contains(bad[0], "spawn of lost") || !strings.Contains(bad[1], "stop of unstopped") {
		t.Fatalf("problems %q; want the lost spawn and the stop that did not take", bad)
	}
}

func TestCheckEventSeqsAndOrder(t *testing.T) {
	t0 := time.Now()
	ev := func(seq uint64, ms int) storedEvent {
		return storedEvent{Seq: seq, Ev: events.Event{Seq: seq, Type: events.SpawnRequested, Timestamp: t0.Add(time.Duration(ms) * time.Millisecond)}}
	}
	good := []storedEvent{ev(1, 0), ev(2, 1), ev(3, 2)}
	if bad := checkEventSeqs("e", good, 3); len(bad) != 0 {
		t.Fatalf("1..3 of 3: %q", bad)
	}
	if bad := checkEventSeqs("e", good, 4); len(bad) != 2 {
		t.Fatalf("1..3 of 4: %q; want event 4 missing and a short count", bad)
	}
	dup := []storedEvent{ev(1, 0), ev(2, 1), ev(2, 1)}
	if bad := checkEventSeqs("e", dup, 3); len(bad) != 2 {
		t.Fatalf("1,2,2 of 3: %q; want 2 twice, 3 missing", bad)
	}
	swapped := []storedEvent{ev(1, 0), ev(3, 1), ev(2, 2)}
	if bad := checkEventOrder("e", swapped); len(bad) != 1 || !strings.Contains(bad[0], "event 3") {
		t.Fatalf("order 1,3,2: %q", bad)
	}
	if bad := checkSameEvents(good, swapped, "a", "b"); len(bad) != 0 {
		t.Fatalf("the same events in another order: %q", bad)
	}
}

func TestCheckSpawnEvents(t *testing.T) {
	evs := []storedEvent{{Seq: 1, Ev: events.Event{Seq: 1, Type: events.SpawnRequested, NodeName: "n1"}}}
	ops := []checker.Op{
		{Kind: checker.Spawn, Name: "n1", Outcome: checker.OK},
		{Kind: checker.Spawn, Name: "n2", Outcome: checker.OK},
		{Kind: checker.Spawn, Name: "n3", Outcome: checker.Unknown},
	}
	if bad := checkSpawnEvents(ops, evs); len(bad) != 1 || !strings.Contains(bad[0], "n2") {
		t.Fatalf("problems %q; want n2's spawn without its event", bad)
	}
}
