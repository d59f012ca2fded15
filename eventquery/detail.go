package eventquery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sutragrid/grid/events"
)

const (
	// MaxCauseDepth bounds the chain of causes Detail follows.
	MaxCauseDepth = 64
	// MaxEffects bounds the effects Detail asks the event store for.
	MaxEffects = 10000
)

// Detail is one event with its causal neighbours.
type Detail struct {
	Event *events.Event
	// Causes is the chain of events that led to Event, its direct cause first.
	Causes []*events.Event
	// Effects are the events that name Event as their cause, in seq order.
	Effects []*events.Event
	// Partial says why Causes or Effects may be incomplete; empty when they are whole.
	Partial []string
}

// detailError is an error of Detail about the event itself: its text is for people,
// and it wraps ErrNotFound or ErrUnavailable.
type detailError struct {
	msg  string
	kind error
}

func (e *detailError) Error() string        { return e.msg }
func (e *detailError) Is(target error) bool { return target == e.kind }

// Detail returns the event with seq, its causes and its effects. Its error wraps
// ErrNotFound when there is no such event, ErrUnavailable when the event exists but
// the store cannot deliver it, and neither when the outbox could not be read.
func (v *View) Detail(ctx context.Context, seq uint64) (*Detail, error) {
	e, err := v.Find(ctx, seq)
	switch {
	case errors.Is(err, ErrNotFound), err != nil && seq > v.LastSeq:
		return nil, &detailError{fmt.Sprintf("event %d not found", seq), ErrNotFound}
	case err != nil:
		return nil, &detailError{fmt.Sprintf("event %d: %v", seq, err), ErrUnavailable}
	}
	d := &Detail{Event: e, Causes: []*events.Event{}}
	d.Partial = v.causes(ctx, d)
	partial, err := v.effects(ctx, d)
	if err != nil {
		return nil, err
	}
	d.Partial = append(d.Partial, partial...)
	return d, nil
}

// causes follows caused_by from d.Event up the chain into d.Causes, and returns why
// it stopped early, if it did.
func (v *View) causes(ctx context.Context, d *Detail) (partial []string) {
	visited := map[uint64]bool{d.Event.Seq: true}
	for cur := d.Event; cur.CausedBy != 0 && !visited[cur.CausedBy]; {
		if len(d.Causes) == MaxCauseDepth {
			return []string{fmt.Sprintf("the chain of causes is longer than %d events", MaxCauseDepth)}
		}
		visited[cur.CausedBy] = true
		c, err := v.Find(ctx, cur.CausedBy)
		if err != nil {
			return []string{fmt.Sprintf("cause %d: %v", cur.CausedBy, err)}
		}
		d.Causes = append(d.Causes, c)
		cur = c
	}
	return nil
}

// effects gathers the events that name d.Event as their cause, wherever they are,
// into d.Effects, and returns why some may be missing.
func (v *View) effects(ctx context.Context, d *Detail) (partial []string, err error) {
	seq := d.Event.Seq
	causedBySeq := func(x *events.Event) bool { return x.CausedBy == seq }
	waiting, err := v.waiting(seq, causedBySeq)
	if err != nil {
		return nil, err
	}
	found := map[uint64]*events.Event{}
	for _, x := range waiting {
		found[x.Seq] = x
	}
	if v.Recent != nil {
		for q := seq + 1; q <= v.LastSeq && q <= seq+v.RecentSpan; q++ {
			if x := v.Recent(q); x != nil && causedBySeq(x) {
				found[x.Seq] = x
			}
		}
	}
	if gap := v.storeGap(v.ShippedSeq > seq, "effects already shipped cannot be read here"); gap != "" {
		partial = append(partial, gap)
	} else if v.Store != nil {
		partial = append(partial, v.storedEffects(ctx, seq, found)...)
		partial = append(partial, v.missing()...)
	}
	d.Effects = slices.SortedFunc(maps.Values(found), func(a, b *events.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return partial, nil
}

// storedEffects adds to found the effects of seq that the store links to it by
// caused_by, and returns why some may be missing.
func (v *View) storedEffects(ctx context.Context, seq uint64, found map[uint64]*events.Event) (partial []string) {
	seqs, err := v.Store.Effects(ctx, seq, MaxEffects)
	if err != nil {
		return []string{err.Error()}
	}
	for _, q := range seqs {
		if found[q] != nil {
			continue
		}
		x, err := v.Find(ctx, q)
		if err != nil {
			partial = append(partial, fmt.Sprintf("effect %d: %v", q, err))
			continue
		}
		found[q] = x
	}
	return partial
}
