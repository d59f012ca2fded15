package eventquery

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// Group is one group of a count.
type Group struct {
	// Values are the group's values of the query's GroupBy, in its order; "" for
	// events without one (a cluster event has no agent).
	Values []string
	// Bucket is the start of the group's time bucket; zero without buckets.
	Bucket time.Time
	Count  uint64
}

// Counts is the answer of Count.
type Counts struct {
	// Groups are ordered by bucket, then by count (highest first), then by values.
	Groups []Group
	// Total counts every matching event, including those in groups left out.
	Total uint64
	// Truncated is true when more than MaxGroups groups existed: some are left out.
	Truncated bool
	// Partial says why the counts may be incomplete; empty when they are whole.
	Partial []string
}

const (
	// maxHoldsCheck bounds the waiting events Count asks the store about, to learn
	// which it holds already: more wait only while the store catches up after an
	// outage, and then asking would cost more than the answer is worth.
	maxHoldsCheck = 1024
	// countAttempts bounds how often Count starts again when the shipper stored
	// waiting events while it counted.
	countAttempts = 3
)

// Count counts the events q selects, in the event store and in the outbox, each
// once. When the store cannot be read it counts what the outbox holds, and says so in
// Partial; the error is only for a failed outbox read.
//
// An event can be in both places: stored, its shipping not yet acknowledged. The
// store counts only by attributes, so Count asks it which of the waiting events it
// holds, before and after counting: if the answers agree, the count is exact.
func (v *View) Count(ctx context.Context, q *CountQuery) (*Counts, error) {
	c, err := v.count(ctx, q)
	if err != nil {
		return nil, err
	}
	return q.shape(c), nil
}

func (v *View) count(ctx context.Context, q *CountQuery) (*Counts, error) {
	waiting, err := v.waiting(0, q.Match)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("events up to seq %d were shipped and cannot be counted here", v.ShippedSeq)
	if gap := v.storeGap(v.ShippedSeq > 0, what); gap != "" {
		c := q.merge(&Counts{}, waiting)
		c.Partial = []string{gap}
		return c, nil
	}
	if v.Store == nil {
		return q.merge(&Counts{}, waiting), nil
	}
	for attempt := 1; ; attempt++ {
		c, settled, err := v.countOnce(ctx, q, waiting)
		if err != nil {
			c = q.merge(&Counts{}, waiting)
			c.Partial = []string{err.Error()}
			return c, nil
		}
		if settled || attempt == countAttempts {
			c.Partial = append(c.Partial, v.missing()...)
			if !settled {
				c.Partial = append(c.Partial, "events were shipped while they were counted: a few may be counted twice or not at all")
			}
			return c, nil
		}
	}
}

// countOnce counts the stored events and adds the waiting ones that the store does
// not hold. settled is false when the store took waiting events while it counted.
func (v *View) countOnce(ctx context.Context, q *CountQuery, waiting []*events.Event) (c *Counts, settled bool, err error) {
	if len(waiting) > maxHoldsCheck {
		c, err := v.Store.Count(ctx, q)
		if err != nil {
			return nil, false, err
		}
		c = q.merge(c, waiting)
		c.Partial = append(c.Partial, fmt.Sprintf("%d events wait to be shipped, too many to ask which of them the event store holds already: some may be counted twice", len(waiting)))
		return c, true, nil
	}
	before, err := v.held(ctx, waiting)
	if err != nil {
		return nil, false, err
	}
	if c, err = v.Store.Count(ctx, q); err != nil {
		return nil, false, err
	}
	after := before
	if len(before) < len(waiting) {
		if after, err = v.held(ctx, waiting); err != nil {
			return nil, false, err
		}
	}
	var unstored []*events.Event
	for _, e := range waiting {
		if !after[e.Seq] {
			unstored = append(unstored, e)
		}
	}
	return q.merge(c, unstored), len(after) == len(before), nil
}

// held returns which of evs the store holds.
func (v *View) held(ctx context.Context, evs []*events.Event) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	if len(evs) == 0 {
		return out, nil
	}
	seqs := make([]uint64, len(evs))
	for i, e := range evs {
		seqs[i] = e.Seq
	}
	held, err := v.Store.Holds(ctx, seqs)
	for _, s := range held {
		out[s] = true
	}
	return out, err
}

// merge adds evs to the store's counts c, and orders and bounds the groups as the
// store does. When the store left groups out, an event of a group it left out counts
// in the total alone: its group's count is not known.
func (q *CountQuery) merge(c *Counts, evs []*events.Event) *Counts {
	index := make(map[string]int, len(c.Groups))
	for i, g := range c.Groups {
		index[groupKey(g)] = i
	}
	for _, e := range evs {
		c.Total++
		g := Group{Values: make([]string, len(q.GroupBy)), Count: 1}
		for i, d := range q.GroupBy {
			g.Values[i] = d.of(e)
		}
		if q.Bucket > 0 {
			g.Bucket = bucketOf(e.Timestamp, q.Bucket)
		}
		k := groupKey(g)
		switch i, ok := index[k]; {
		case ok:
			c.Groups[i].Count++
		case !c.Truncated:
			index[k] = len(c.Groups)
			c.Groups = append(c.Groups, g)
		}
	}
	slices.SortFunc(c.Groups, compareGroups)
	if q.MaxGroups > 0 && len(c.Groups) > q.MaxGroups {
		c.Groups, c.Truncated = c.Groups[:q.MaxGroups], true
	}
	return c
}

// shape keeps the Top largest groups, and with buckets over a known range adds the
// empty buckets of every group (of the one group, without GroupBy) with count 0, so
// that a series has a point for every bucket.
func (q *CountQuery) shape(c *Counts) *Counts {
	if q.Top > 0 {
		totals := map[string]uint64{}
		for _, g := range c.Groups {
			totals[valuesKey(g.Values)] += g.Count
		}
		keys := make([]string, 0, len(totals))
		for k := range totals {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if c := cmp.Compare(totals[b], totals[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		if len(keys) > q.Top {
			keep := map[string]bool{}
			for _, k := range keys[:q.Top] {
				keep[k] = true
			}
			c.Groups = slices.DeleteFunc(c.Groups, func(g Group) bool { return !keep[valuesKey(g.Values)] })
			c.Truncated = true
		}
	}
	if q.Bucket > 0 && !q.Start.IsZero() {
		series := map[string][]string{}
		have := map[string]bool{}
		for _, g := range c.Groups {
			series[valuesKey(g.Values)] = g.Values
			have[groupKey(g)] = true
		}
		if len(q.GroupBy) == 0 {
			series[""] = []string{}
		}
		for b := bucketOf(q.Start, q.Bucket); b.Before(q.end()); b = b.Add(q.Bucket) {
			for _, values := range series {
				g := Group{Values: values, Bucket: b}
				if !have[groupKey(g)] {
					c.Groups = append(c.Groups, g)
				}
			}
		}
	}
	slices.SortFunc(c.Groups, compareGroups)
	if q.MaxGroups > 0 && len(c.Groups) > q.MaxGroups {
		c.Groups, c.Truncated = c.Groups[:q.MaxGroups], true
	}
	return c
}

// valuesKey identifies a group's values, whatever its bucket.
func valuesKey(values []string) string { return strings.Join(values, "\x00") }

// groupKey identifies a group by its bucket and values.
func groupKey(g Group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", g.Bucket.UnixNano())
	for _, v := range g.Values {
		b.WriteByte(0)
		b.WriteString(v)
	}
	return b.String()
}

// compareGroups orders groups as the store does: by bucket, then by count (highest
// first), then by values.
func compareGroups(a, b Group) int {
	if c := a.Bucket.Compare(b.Bucket); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Count, a.Count); c != 0 {
		return c
	}
	return slices.Compare(a.Values, b.Values)
}
