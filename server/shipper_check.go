package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sutragrid/grid/eventquery"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
)

// What a store answers is checked, so that a store that lost data or answers wrong
// is never taken for one that holds the history:
//   - before the first batch of a term, after a failure, and every storeCheckInterval,
//     the store must hold the event at its cursor, decoded, under its seq, with the
//     content the history has (when this server still has it to compare);
//   - a batch the store says it partly had already is read back and compared;
//   - a backfill source must give exactly the events asked for.
//
// A store that lacks an event it acknowledged lost data: its cursor goes back to 0
// and it is backfilled. A store that answers garbage is untrusted (not read from,
// not holding the outbox back) until a check passes. A store that holds other
// content under an event's ID is untrusted until it loses that data (its data dir
// wiped): Grid never overwrites a stored event.

// storeCheckInterval is how often a store is checked deeply: storeCheckSamples
// events below its cursor besides the one at it.
const (
	storeCheckInterval = 30 * time.Second
	storeCheckSamples  = 8
)

// storeFault is what the shipper found wrong with a store, and what to record.
type storeFault struct {
	key string
	msg string
	// reset: the store lost events; untrusted: it answers garbage; conflict: it
	// holds other content under an event's ID; release: it has been down too long;
	// skipTo: the seqs up to it are in no store any more.
	reset, untrusted, conflict, release bool
	skipTo                              uint64
}

func (f *storeFault) Error() string { return fmt.Sprintf("event store %s: %s", f.key, f.msg) }

func asFault(err error) (*storeFault, bool) {
	var f *storeFault
	return f, errors.As(err, &f)
}

// readFault turns a failed read of store key into its fault: a missing event is lost
// data, a wrong answer garbage. Other errors (the store unreachable) are returned as
// they are.
func readFault(key string, err error, doing string) error {
	switch {
	case errors.Is(err, eventquery.ErrMissing):
		return &storeFault{key: key, reset: true,
			msg: fmt.Sprintf("lost data it had acknowledged (%s: %v); backfilling it from the start", doing, err)}
	case errors.Is(err, eventquery.ErrGarbage):
		return &storeFault{key: key, untrusted: true, msg: fmt.Sprintf("answered garbage (%s: %v)", doing, err)}
	}
	return err
}

// check checks that the store holds the event at its cursor, as the history has it;
// deep, also storeCheckSamples events below it, picked at random. A passing deep
// check of an untrusted store (not one with a conflict) trusts it again.
func (sh *shipping) check(ctx context.Context, cur fsm.StoreCursor, deep bool) error {
	seqs := []uint64{cur.Acked}
	if deep && cur.Acked > 1 {
		for range storeCheckSamples {
			seqs = append(seqs, 1+rand.Uint64N(cur.Acked-1))
		}
	}
	for _, seq := range seqs {
		if seq == 0 || (cur.LostFrom > 0 && seq >= cur.LostFrom && seq <= cur.LostTo) {
			continue // nothing it must hold
		}
		stored, err := eventquery.ReadRange(ctx, sh.store, seq, seq)
		if err != nil {
			return readFault(sh.key, err, fmt.Sprintf("checking event %d (its cursor is at %d)", seq, cur.Acked))
		}
		if ref := sh.s.historyEvent(seq); ref != nil && !sameEvent(ref, stored[0]) {
			return &storeFault{key: sh.key, conflict: true,
				msg: fmt.Sprintf("holds other content under event %d's ID; wipe its data dir to have it backfilled", seq)}
		}
	}
	if deep && cur.Faulty && !cur.Conflict {
		sh.s.recordFault(ctx, sh.key, &storeFault{key: sh.key, msg: "answers correctly again"})
	}
	return nil
}

// historyEvent returns the event with seq if this server still has it to compare:
// in its feed of recent events, or in the outbox.
func (s *Server) historyEvent(seq uint64) *events.Event {
	if e := s.feed.get(seq); e != nil {
		return e
	}
	e, _ := s.fsm.State().OutboxEvent(seq)
	return e
}

// recordFault commits what was found about a store, and logs it.
func (s *Server) recordFault(ctx context.Context, key string, f *storeFault) {
	clear := !f.reset && !f.untrusted && !f.conflict && !f.release && f.skipTo == 0
	cmd := &fsm.EventStoreFault{Key: key, Fault: f.msg, Reset: f.reset, Untrusted: f.untrusted,
		Conflict: f.conflict, Release: f.release, SkipTo: f.skipTo, Clear: clear}
	if clear {
		cmd.Fault = ""
		s.logs.shipper.Info("event store trusted again", "store", key, "why", f.msg)
	} else {
		s.logs.shipper.Error("event store fault", "store", key, "fault", f.msg)
		s.metrics.storeFaults.Inc()
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Apply(actx, cmd); err != nil && ctx.Err() == nil {
		s.logs.shipper.Warn("recording an event store fault failed", "store", key, "error", err)
	}
}
