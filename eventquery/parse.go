package eventquery

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// Limits of a listing.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Limits of a count.
const (
	DefaultMaxGroups = 1000
	MaxMaxGroups     = 100000
)

// ListQuery asks for one page of events.
type ListQuery struct {
	Filter
	// Desc lists the newest first.
	Desc bool
	// Limit is the most events on the page, 1 to MaxLimit.
	Limit int
	// After, from a page token, is where the previous page ended; nil on the first.
	After *Cursor
}

// CountQuery asks how many events match Filter, grouped by GroupBy and, if Bucket
// is not zero, by time buckets of that width (one of Buckets).
type CountQuery struct {
	Filter
	GroupBy []Dimension
	Bucket  time.Duration
	// MaxGroups bounds the groups returned, 1 to MaxMaxGroups.
	MaxGroups int
	// Top, if not 0, keeps the Top largest groups, by their count over all buckets.
	Top int
	// Now is when the query was asked: with Bucket and Start, every bucket from Start
	// to End (or Now) is in the answer, empty ones with 0.
	Now time.Time
}

// MaxBuckets bounds the time buckets of a count over a range.
const MaxBuckets = 10000

// Continue makes q continue the listing whose page ended with page token tok.
func (q *ListQuery) Continue(tok string) error {
	c, err := decodeCursor(tok)
	if err != nil {
		return err
	}
	if c.F != fingerprint(&q.Filter, q.Desc) {
		return errors.New("page_token belongs to a listing with other filters or another order")
	}
	q.After = c
	return nil
}

// ParseList parses the query parameters of GET /v1/events; relative times count
// back from now.
func ParseList(q url.Values, now time.Time) (*ListQuery, error) {
	if err := knownParams(q, "agent", "node", "type", "since", "until", "limit", "order", "page_token"); err != nil {
		return nil, err
	}
	lq := &ListQuery{Desc: true, Limit: DefaultLimit}
	if err := parseFilter(q, now, &lq.Filter); err != nil {
		return nil, err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return nil, fmt.Errorf("limit must be a number from 1 to %d, not %q", MaxLimit, v)
		}
		lq.Limit = n
	}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		lq.Desc = false
	default:
		return nil, fmt.Errorf("order must be asc or desc, not %q", q.Get("order"))
	}
	if tok := q.Get("page_token"); tok != "" {
		if err := lq.Continue(tok); err != nil {
			return nil, err
		}
	}
	return lq, nil
}

// ParseCount parses the query parameters of GET /v1/events/aggregate; relative
// times count back from now.
func ParseCount(q url.Values, now time.Time) (*CountQuery, error) {
	if err := knownParams(q, "agent", "node", "type", "severity", "since", "until", "group_by", "bucket", "max_groups", "top"); err != nil {
		return nil, err
	}
	cq := &CountQuery{MaxGroups: DefaultMaxGroups, Now: now}
	if err := parseFilter(q, now, &cq.Filter); err != nil {
		return nil, err
	}
	for _, v := range splitList(q.Get("severity")) {
		s := events.Severity(v)
		if !slices.Contains(severities, s) {
			return nil, fmt.Errorf("severity: unknown severity %q (known: info, warning, error, critical)", v)
		}
		cq.Severities = append(cq.Severities, s)
	}
	for _, v := range splitList(q.Get("group_by")) {
		d := Dimension(v)
		switch {
		case !slices.Contains(Dimensions, d):
			return nil, fmt.Errorf("group_by: unknown dimension %q (known: type, severity, agent, node)", v)
		case slices.Contains(cq.GroupBy, d):
			return nil, fmt.Errorf("group_by: %q is given twice", v)
		}
		cq.GroupBy = append(cq.GroupBy, d)
	}
	if v := q.Get("bucket"); v != "" {
		d, ok := Buckets[v]
		if !ok {
			return nil, fmt.Errorf("bucket must be one of 1m, 5m, 10m, 15m, 30m, 1h, 3h, 6h, 12h, 1d or 7d, not %q", v)
		}
		cq.Bucket = d
	}
	if v := q.Get("max_groups"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMaxGroups {
			return nil, fmt.Errorf("max_groups must be a number from 1 to %d, not %q", MaxMaxGroups, v)
		}
		cq.MaxGroups = n
	}
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMaxGroups {
			return nil, fmt.Errorf("top must be a number from 1 to %d, not %q", MaxMaxGroups, v)
		}
		cq.Top = n
	}
	if cq.Bucket > 0 && !cq.Start.IsZero() {
		if n := cq.end().Sub(cq.Start) / cq.Bucket; n > MaxBuckets {
			return nil, fmt.Errorf("since and until span %d buckets of %s; at most %d: use a larger bucket", n, cq.Bucket, MaxBuckets)
		}
	}
	return cq, nil
}

// end is where the count's range ends: End, or Now.
func (q *CountQuery) end() time.Time {
	if !q.End.IsZero() {
		return q.End
	}
	return q.Now
}

var severities = []events.Severity{events.SeverityInfo, events.SeverityWarning, events.SeverityError, events.SeverityCritical}

// knownParams refuses parameters other than known: a misspelt filter must not
// silently select everything.
func knownParams(q url.Values, known ...string) error {
	for k := range q {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// parseFilter parses the parameters every query shares: agent, node, type, since
// and until.
func parseFilter(q url.Values, now time.Time, f *Filter) error {
	f.Agents = splitList(q.Get("agent"))
	f.Nodes = splitList(q.Get("node"))
	var err error
	if f.Types, err = events.ParseTypes(q.Get("type")); err != nil {
		return fmt.Errorf("type: %w", err)
	}
	if f.Start, err = parseTime("since", q.Get("since"), now); err != nil {
		return err
	}
	if f.End, err = parseTime("until", q.Get("until"), now); err != nil {
		return err
	}
	if !f.Start.IsZero() && !f.End.IsZero() && !f.Start.Before(f.End) {
		return fmt.Errorf("since (%s) must be before until (%s)", f.Start.Format(time.RFC3339Nano), f.End.Format(time.RFC3339Nano))
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseTime parses an RFC 3339 time, or a duration that far before now.
func parseTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time (2024-05-01T12:00:00Z) or a positive duration such as 1h, not %q", name, v)
	}
	return now.Add(-d), nil
}
