package eventquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sutragrid/grid/events"
)

// causal is a history with causes: 2 and 5 are effects of 1, and 2, 3, 4 a chain.
//
//	1 spawn_requested   2 spawn_succeeded (1)   3 node_crashed (2)
//	4 node_restarted (3)   5 spawn_failed (1)
func causal() []*events.Event {
	evs := []*events.Event{
		ev(1, events.SpawnRequested, 0, "a1"), ev(2, events.SpawnSucceeded, 1, "a1"),
		ev(3, events.NodeCrashed, 2, "a1"), ev(4, events.NodeRestarted, 3, "a1"),
		ev(5, events.SpawnFailed, 4, "a1"),
	}
	evs[1].CausedBy, evs[2].CausedBy, evs[3].CausedBy, evs[4].CausedBy = 1, 2, 3, 1
	return evs
}

// recent returns a cache that holds evs.
func recent(evs []*events.Event) func(uint64) *events.Event {
	return func(seq uint64) *events.Event {
		for _, e := range evs {
			if e.Seq == seq {
				return e
			}
		}
		return nil
	}
}

func TestDetail(t *testing.T) {
	h := causal()
	down := newFakeStore(h...)
	down.fail(errDown)
	cached := func(v *View) *View { v.Recent, v.RecentSpan = recent(h), 100; return v }
	for _, tc := range []struct {
		name    string
		v       *View
		seq     uint64
		causes  string
		effects string
		partial string
	}{
		{"store: chain", view(h, 5, newFakeStore(h...)), 4, "[3 2 1]", "[]", ""},
		{"store: effects", view(h, 5, newFakeStore(h...)), 1, "[]", "[2 5]", ""},
		{"outbox: chain", view(h, 0, newFakeStore()), 4, "[3 2 1]", "[]", ""},
		{"outbox: effects", view(h, 0, newFakeStore()), 1, "[]", "[2 5]", ""},
		{"outbox without a store", view(h, 0, nil), 1, "[]", "[2 5]", ""},
		{"store and outbox", view(h, 2, newFakeStore(h[:3]...)), 2, "[1]", "[3]", ""},
		{"cache, store down", cached(view(h, 5, down)), 1, "[]", "[2 5]", "event store unreachable: connection refused"},
		{"cause unreadable", view(h, 3, down), 4, "[]", "[]", "cause 3: event store unreachable: connection refused; event store unreachable: connection refused"},
		{"shipped effects, no store", func() *View { v := view(h, 2, nil); v.Recent, v.RecentSpan = recent(h[:1]), 100; return v }(), 1, "[]", "[5]",
			"no event store configured on this server (-event-store): effects already shipped cannot be read here"},
		{"effect unreadable", view(h, 5, &fakeStore{evs: map[uint64]*events.Event{1: h[0], 2: h[1], 5: h[4]}}), 2, "[1]", "[]", ""},
	} {
		d, err := tc.v.Detail(context.Background(), tc.seq)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Event.Seq != tc.seq || seqs(d.Causes) != tc.causes || seqs(d.Effects) != tc.effects ||
			strings.Join(d.Partial, "; ") != tc.partial {
			t.Errorf("%s: event %d, causes %s, effects %s, partial %q; want %d, %s, %s, %q", tc.name,
				d.Event.Seq, seqs(d.Causes), seqs(d.Effects), d.Partial, tc.seq, tc.causes, tc.effects, tc.partial)
		}
	}
}

func TestDetailErrors(t *testing.T) {
	h := causal()
	down := newFakeStore(h...)
	down.fail(errDown)
	unusable := view(h, 5, nil)
	unusable.StoreErr = errors.New("event store bad:address: no port")
	for _, tc := range []struct {
		name string
		v    *View
		seq  uint64
		kind error
		msg  string
	}{
		{"not stored", view(h, 5, newFakeStore(h[1:]...)), 1, ErrNotFound, "event 1 not found"},
		{"not derived yet", view(h, 5, newFakeStore(h...)), 99, ErrNotFound, "event 99 not found"},
		{"not derived yet, store down", view(h, 5, down), 99, ErrNotFound, "event 99 not found"},
		{"store down", view(h, 5, down), 2, ErrUnavailable, "event 2: event store unreachable: connection refused"},
		{"no store", view(h, 5, nil), 2, ErrUnavailable, "event 2: " + ErrNoStore.Error()},
		{"store unusable", unusable, 2, ErrUnavailable, "event 2: event store bad:address: no port"},
	} {
		_, err := tc.v.Detail(context.Background(), tc.seq)
		if !errors.Is(err, tc.kind) || err.Error() != tc.msg {
			t.Errorf("%s: %v, want %q wrapping %v", tc.name, err, tc.msg, tc.kind)
		}
	}
}

// TestDetailChainBounds: a chain of causes is followed up to MaxCauseDepth events,
// and a loop (which derivation never makes) ends the walk.
func TestDetailChainBounds(t *testing.T) {
	var long []*events.Event
	for seq := uint64(1); seq <= MaxCauseDepth+2; seq++ {
		e := ev(seq, events.NodeRestarted, int(seq), "a1")
		e.CausedBy = seq - 1
		long = append(long, e)
	}
	d, err := view(long, 0, nil).Detail(context.Background(), MaxCauseDepth+2)
	want := fmt.Sprintf("the chain of causes is longer than %d events", MaxCauseDepth)
	if err != nil || len(d.Causes) != MaxCauseDepth || d.Causes[0].Seq != MaxCauseDepth+1 || strings.Join(d.Partial, "; ") != want {
		t.Errorf("long chain: %d causes, partial %q, %v", len(d.Causes), d.Partial, err)
	}

	loop := []*events.Event{ev(1, events.NodeCrashed, 0, "a1"), ev(2, events.NodeRestarted, 1, "a1")}
	loop[0].CausedBy, loop[1].CausedBy = 2, 1
	d, err = view(loop, 0, nil).Detail(context.Background(), 2)
	if err != nil || seqs(d.Causes) != "[1]" || seqs(d.Effects) != "[]" || len(d.Partial) != 0 {
		t.Errorf("loop: causes %s, effects %s, partial %q, %v", seqs(d.Causes), seqs(d.Effects), d.Partial, err)
	}
}
