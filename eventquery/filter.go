package eventquery

import (
	"slices"
	"time"

	"github.com/sutragrid/grid/events"
)

// Filter selects events. Each list, when not empty, matches any of its values; the
// lists and the time range combine with AND.
type Filter struct {
	Agents     []string
	Nodes      []string
	Types      []events.Type
	Severities []events.Severity
	// Start (inclusive) and End (exclusive) bound the events' time; zero is unbounded.
	Start, End time.Time
}

// Match reports whether e passes the filter.
func (f *Filter) Match(e *events.Event) bool {
	switch {
	case len(f.Agents) > 0 && !slices.Contains(f.Agents, e.AgentID),
		len(f.Nodes) > 0 && !slices.Contains(f.Nodes, e.NodeID),
		len(f.Types) > 0 && !slices.Contains(f.Types, e.Type),
		len(f.Severities) > 0 && !slices.Contains(f.Severities, e.Severity()),
		!f.Start.IsZero() && e.Timestamp.Before(f.Start),
		!f.End.IsZero() && !e.Timestamp.Before(f.End):
		return false
	}
	return true
}

// Dimension is a property events are counted by.
type Dimension string

// The dimensions of a count. Each is an indexed attribute in the event store.
const (
	ByType     Dimension = "type"
	BySeverity Dimension = "severity"
	ByAgent    Dimension = "agent"
	ByNode     Dimension = "node"
)

// Dimensions lists every dimension in a stable order.
var Dimensions = []Dimension{ByType, BySeverity, ByAgent, ByNode}

// of returns e's value of d; "" when e has none (a cluster event has no agent).
func (d Dimension) of(e *events.Event) string {
	switch d {
	case ByType:
		return string(e.Type)
	case BySeverity:
		return string(e.Severity())
	case ByAgent:
		return e.AgentID
	case ByNode:
		return e.NodeID
	}
	return ""
}

// Buckets are the time buckets a count may group by: those the storage node's
// Aggregate accepts, aligned to the Unix epoch in UTC.
var Buckets = map[string]time.Duration{
	"1m": time.Minute, "5m": 5 * time.Minute, "10m": 10 * time.Minute,
	"15m": 15 * time.Minute, "30m": 30 * time.Minute, "1h": time.Hour,
	"3h": 3 * time.Hour, "6h": 6 * time.Hour, "12h": 12 * time.Hour,
	"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
}

// bucketName returns the name of bucket d in Buckets.
func bucketName(d time.Duration) (string, bool) {
	for name, b := range Buckets {
		if b == d {
			return name, true
		}
	}
	return "", false
}

// bucketOf returns the start of the bucket of width d that holds t.
func bucketOf(t time.Time, d time.Duration) time.Time {
	ns, w := t.UnixNano(), int64(d)
	start := ns / w * w
	if start > ns { // before 1970, integer division rounded up
		start -= w
	}
	return time.Unix(0, start).UTC()
}
