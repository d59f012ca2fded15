package eventquery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sutragrid/grid/events"
)

// Outbox is the replicated outbox as one reader sees it: the events derived and not
// yet acknowledged by the event store, a consistent snapshot. *fsm.State is one.
type Outbox interface {
	// Outbox returns up to limit waiting events with seq > after, in seq order.
	Outbox(after uint64, limit int) ([]*events.Event, error)
	// OutboxEvent returns the waiting event with seq, or nil.
	OutboxEvent(seq uint64) (*events.Event, error)
}

// Store is the event store: the events shipped. Its errors say, for people, what
// went wrong with it ("event store unreachable: …").
type Store interface {
	// Query returns one page of the events that match q in its time order, starting
	// where token (from the previous page; "" for the first) left off.
	Query(ctx context.Context, q StoreQuery, token string) (*StorePage, error)
	// Event returns the event with seq, or an error that wraps ErrNotFound.
	Event(ctx context.Context, seq uint64) (*events.Event, error)
	// Effects returns the seqs of up to limit events stored as caused by seq.
	Effects(ctx context.Context, seq uint64, limit int) ([]uint64, error)
	// Holds returns those of seqs that the store holds, in any order.
	Holds(ctx context.Context, seqs []uint64) ([]uint64, error)
	// Count counts the stored events that match q, as Count does.
	Count(ctx context.Context, q *CountQuery) (*Counts, error)
}

// StoreQuery is one query of the store: the events that match Filter, in time
// order (the newest first if Desc), Limit to a page.
type StoreQuery struct {
	Filter
	Desc  bool
	Limit int
}

// StorePage is one page of a StoreQuery.
type StorePage struct {
	Events []*events.Event
	// Bad counts the stored events on the page that could not be decoded.
	Bad int
	// Next continues the query; "" at its end.
	Next string
}

// View is what one reader knows of the event pipeline, taken at one instant.
type View struct {
	// LastSeq is the seq of the last event derived; ShippedSeq the last the event
	// store acknowledged.
	LastSeq, ShippedSeq uint64
	Outbox              Outbox
	// Recent returns the event with seq from the reader's cache of the events it
	// derived last, or nil; RecentSpan is how many of the last seqs the cache can
	// hold. Both are optional: the cache only spares a call to the store.
	Recent     func(seq uint64) *events.Event
	RecentSpan uint64
	// Store is the event store; nil when none is configured, or when StoreErr says
	// why the configured one cannot be used.
	Store    Store
	StoreErr error
	// Missing, if set, says which shipped events the store that answered lacks (a
	// store still being backfilled, or events lost from every store): answers that
	// read the store carry it in their partial marker. It is asked after the store.
	Missing func() []string
}

// Errors of Find.
var (
	// ErrNotFound: the event store does not hold the event.
	ErrNotFound = errors.New("event not found")
	// ErrNoStore: the event was shipped, and there is no event store to read it from.
	ErrNoStore = errors.New("the event was shipped, and this server has no event store configured (-event-store) to read it from")
)

// ErrUnavailable is wrapped by the errors of Detail about an event that exists but
// cannot be read now.
var ErrUnavailable = errors.New("event unavailable")

// StoreTimeout bounds each call to the event store.
const StoreTimeout = 10 * time.Second

// Find looks the event with seq up in the cache, then in the outbox, then in the
// event store. It returns an error that wraps ErrNotFound when the store does not
// hold it, ErrNoStore when there is no store to ask, or another error when the store
// could not answer.
func (v *View) Find(ctx context.Context, seq uint64) (*events.Event, error) {
	if v.Recent != nil {
		if e := v.Recent(seq); e != nil {
			return e, nil
		}
	}
	e, err := v.Outbox.OutboxEvent(seq)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	if e != nil {
		return e, nil
	}
	switch {
	case v.StoreErr != nil:
		return nil, v.StoreErr
	case v.Store == nil:
		return nil, ErrNoStore
	}
	return v.Store.Event(ctx, seq)
}

// waiting returns the events in the outbox with seq > after that match keep.
func (v *View) waiting(after uint64, keep func(*events.Event) bool) ([]*events.Event, error) {
	evs, err := v.Outbox.Outbox(after, math.MaxInt)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	out := evs[:0:0]
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// missing is what Missing says, if anything.
func (v *View) missing() []string {
	if v.Missing == nil {
		return nil
	}
	return v.Missing()
}

// storeGap says why shipped events cannot be read, or "" when the store can be asked.
// shipped tells whether any event the answer needs was shipped.
func (v *View) storeGap(shipped bool, what string) string {
	switch {
	case v.StoreErr != nil:
		return v.StoreErr.Error()
	case v.Store == nil && shipped:
		return "no event store configured on this server (-event-store): " + what
	}
	return ""
}
