package eventquery

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/events"
)

// Replicas is several event stores that hold the same history, read one at a time in
// order: a call that cannot reach one store goes to the next, so a reader notices a
// failed store only as latency. Answers other than "unreachable" (an event not
// found, a bad query) are the history's and are returned as they are.
type Replicas struct {
	Stores []Store
	// Failed, if set, is told of each store that could not be reached (its index),
	// so that the caller can try it last next time.
	Failed func(i int, err error)
	// answered is the index of the store that answered last, plus one (0: none).
	answered atomic.Int32
}

// Answered returns the index of the store that answered the last call, or -1 if no
// store has answered yet.
func (r *Replicas) Answered() int { return int(r.answered.Load()) - 1 }

// NewReplicas returns the Replicas that read from stores in order.
func NewReplicas(stores []Store, failed func(i int, err error)) *Replicas {
	return &Replicas{Stores: stores, Failed: failed}
}

// unreachable reports whether err says the store could not be reached, rather than
// answering.
func unreachable(err error) bool {
	var se *storeError
	if errors.As(err, &se) {
		err = se.err
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// each calls f on each store in turn until one answers.
func each[T any](ctx context.Context, r *Replicas, f func(Store) (T, error)) (T, error) {
	var zero T
	var errs []error
	for i, st := range r.Stores {
		v, err := f(st)
		if err == nil || !unreachable(err) || ctx.Err() != nil {
			r.answered.Store(int32(i + 1))
			return v, err
		}
		if r.Failed != nil {
			r.Failed(i, err)
		}
		errs = append(errs, err)
	}
	switch len(errs) {
	case 0:
		return zero, errors.New("no event store")
	case 1:
		return zero, errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return zero, &allFailed{msg: strings.Join(msgs, "; ")}
}

// allFailed is the error when no replica could be reached.
type allFailed struct{ msg string }

func (e *allFailed) Error() string { return "every event store is unreachable: " + e.msg }

func (r *Replicas) Query(ctx context.Context, q StoreQuery, token string) (*StorePage, error) {
	return each(ctx, r, func(s Store) (*StorePage, error) { return s.Query(ctx, q, token) })
}

func (r *Replicas) Event(ctx context.Context, seq uint64) (*events.Event, error) {
	return each(ctx, r, func(s Store) (*events.Event, error) { return s.Event(ctx, seq) })
}

func (r *Replicas) Effects(ctx context.Context, seq uint64, limit int) ([]uint64, error) {
	return each(ctx, r, func(s Store) ([]uint64, error) { return s.Effects(ctx, seq, limit) })
}

func (r *Replicas) Holds(ctx context.Context, seqs []uint64) ([]uint64, error) {
	return each(ctx, r, func(s Store) ([]uint64, error) { return s.Holds(ctx, seqs) })
}

func (r *Replicas) Count(ctx context.Context, q *CountQuery) (*Counts, error) {
	return each(ctx, r, func(s Store) (*Counts, error) { return s.Count(ctx, q) })
}
