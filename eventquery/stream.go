package eventquery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// StreamStart returns the seq a stream starts after. lastEventID is the
// Last-Event-ID header, which EventSource sends when it reconnects: it is newer than
// sinceSeq, the since_seq parameter of the URL. Without either, the stream starts
// after lastSeq, with the next new event.
func StreamStart(lastEventID, sinceSeq string, lastSeq uint64) (uint64, error) {
	if lastEventID != "" {
		seq, err := strconv.ParseUint(strings.TrimSpace(lastEventID), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("Last-Event-ID must be an event seq, not %q", lastEventID)
		}
		return seq, nil
	}
	if sinceSeq != "" {
		seq, err := strconv.ParseUint(sinceSeq, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("since_seq must be an event seq (0 or more), not %q", sinceSeq)
		}
		return seq, nil
	}
	return lastSeq, nil
}

// Gap reports an event that a stream could not deliver in its place.
type Gap struct {
	Seq   uint64 `json:"seq"`
	Error string `json:"error"`
	// Retrying is true when the stream tries again and will deliver the event (or a
	// final gap) next; false when the event is skipped and the stream goes on after it.
	Retrying bool `json:"retrying"`
}

// Action is what a stream does with the outcome of looking its next event up.
type Action int

const (
	// Send the event; the stream goes on after it.
	Send Action = iota
	// Skip the event: send the final Gap; the stream goes on after it.
	Skip
	// Retry the same seq after a while, having sent the Gap if there is one.
	Retry
)

// Step is what a stream does next.
type Step struct {
	Action Action
	Event  *events.Event // with Send
	Gap    *Gap          // with Skip, and with the first Retry of a seq
}

// Follower decides, seq after seq, what a stream sends: the events in seq order
// and, for an event it cannot deliver, a gap. An event the store no longer holds, or
// that cannot be read here at all, is skipped at once; one the store cannot deliver
// now is retried for RetryFor after the store began to fail, then skipped.
type Follower struct {
	// Next is the seq to deliver next.
	Next     uint64
	RetryFor time.Duration

	// down is when the store began to fail, while it fails.
	down time.Time
	// gapSent is the seq of the last retrying gap sent.
	gapSent uint64
}

// Step takes the outcome of View.Find for f.Next at now, and returns what to send.
// After Send and Skip, f.Next is the following seq.
func (f *Follower) Step(e *events.Event, err error, now time.Time) Step {
	seq := f.Next
	switch {
	case err == nil:
		f.down = time.Time{}
		f.Next++
		return Step{Action: Send, Event: e}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoStore):
		// Gone for good (retention removed it), or never readable here.
		f.Next++
		return Step{Action: Skip, Gap: &Gap{Seq: seq, Error: gapReason(seq, err)}}
	}
	// The store could not answer: the event exists, so wait for it, for a while.
	if f.down.IsZero() {
		f.down = now
	}
	if now.Sub(f.down) >= f.RetryFor {
		f.Next++
		return Step{Action: Skip, Gap: &Gap{Seq: seq, Error: fmt.Sprintf("%v; skipped after retrying for %s", err, f.RetryFor)}}
	}
	if f.gapSent == seq {
		return Step{Action: Retry}
	}
	f.gapSent = seq
	return Step{Action: Retry, Gap: &Gap{Seq: seq, Error: err.Error(), Retrying: true}}
}

// gapReason says why the event with seq cannot be delivered at all.
func gapReason(seq uint64, err error) string {
	if errors.Is(err, ErrNotFound) {
		return fmt.Sprintf("event %d is no longer in the event store (removed by retention?)", seq)
	}
	return fmt.Sprintf("event %d: %v", seq, err)
}
