package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/sutragrid/grid/events"
)

// The event history has a running digest, replicated with its counters: each event's
// JSON (as the event stores hold it) chained onto the digest of the events before it.
// Every server computes it from what its own FSM derived, so two servers that agree
// on it at a seq derived the same history up to there, and a store's copy of events
// 1..N can be checked against it by recomputing it from the stored contents (the
// chaos suite does). Cost: one JSON encoding and one SHA-256 per event.

// ChainDigest returns the digest of the history after the event whose JSON is
// content, given the digest before it ("" before the first event).
func ChainDigest(prev string, content []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// chainEvents adds evs, in seq order, to the digest d.
func chainEvents(d string, evs []*events.Event) (string, error) {
	for _, e := range evs {
		content, err := json.Marshal(e)
		if err != nil {
			return "", fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		d = ChainDigest(d, content)
	}
	return d, nil
}
