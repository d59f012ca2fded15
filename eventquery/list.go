package eventquery

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sutragrid/grid/events"
)

// Page is one page of a listing.
type Page struct {
	Events []*events.Event
	// NextPageToken continues the listing; "" when no more events match.
	NextPageToken string
	// Partial says why the page may lack events; empty when it is whole.
	Partial []string
}

// List returns one page of the events q selects, from the outbox and the event
// store, each once, in q's order. When the store cannot be read it returns what the
// outbox holds, and says so in Partial; the error is only for a failed outbox read.
func (v *View) List(ctx context.Context, q *ListQuery) (*Page, error) {
	found, err := v.waiting(0, func(e *events.Event) bool { return q.Match(e) && q.pastCursor(e) })
	if err != nil {
		return nil, err
	}
	page := &Page{}
	more := false
	what := fmt.Sprintf("events up to seq %d were shipped and cannot be read here", v.ShippedSeq)
	if gap := v.storeGap(v.ShippedSeq > 0, what); gap != "" {
		page.Partial = append(page.Partial, gap)
	} else if v.Store != nil {
		stored, storeMore, bad, err := q.queryStore(ctx, v.Store)
		switch {
		case err != nil:
			page.Partial = append(page.Partial, err.Error())
		default:
			page.Partial = append(page.Partial, v.missing()...)
			if bad > 0 {
				page.Partial = append(page.Partial, fmt.Sprintf("%d event(s) in the event store could not be decoded", bad))
			}
			found, more = append(found, stored...), storeMore
		}
	}

	list := dedup(found)
	slices.SortFunc(list, func(a, b *events.Event) int { return q.compare(a, b) })
	if len(list) > q.Limit {
		list, more = list[:q.Limit], true
	}
	page.Events = list
	if more && len(list) > 0 {
		last := keyOf(list[len(list)-1])
		page.NextPageToken = Cursor{F: fingerprint(&q.Filter, q.Desc), T: last.t, S: last.seq}.Token()
	}
	return page, nil
}

// dedup drops the repeats of an event, keeping the first: the outbox's, when the
// event was also stored before its shipping was acknowledged.
func dedup(evs []*events.Event) []*events.Event {
	seen := make(map[uint64]bool, len(evs))
	out := evs[:0]
	for _, e := range evs {
		if !seen[e.Seq] {
			seen[e.Seq] = true
			out = append(out, e)
		}
	}
	return out
}

// compare orders a before b (-1) or after (1) in q's order.
func (q *ListQuery) compare(a, b *events.Event) int {
	ka, kb := keyOf(a), keyOf(b)
	if q.Desc {
		ka, kb = kb, ka
	}
	switch {
	case ka.less(kb):
		return -1
	case kb.less(ka):
		return 1
	}
	return 0
}

// pastCursor reports whether e comes after the previous page's end, in q's order.
func (q *ListQuery) pastCursor(e *events.Event) bool {
	if q.After == nil {
		return true
	}
	c := key{q.After.T, q.After.S}
	if q.Desc {
		return keyOf(e).less(c)
	}
	return c.less(keyOf(e))
}

// storeQuery is the store query for q, narrowed to the events at or past the
// cursor's time (the cursor's own and earlier events at that time are skipped by
// pastCursor).
func (q *ListQuery) storeQuery() StoreQuery {
	sq := StoreQuery{Filter: q.Filter, Desc: q.Desc, Limit: q.Limit}
	if q.After != nil {
		t := time.Unix(0, q.After.T)
		if q.Desc {
			if next := t.Add(time.Nanosecond); sq.End.IsZero() || next.Before(sq.End) {
				sq.End = next
			}
		} else if sq.Start.IsZero() || t.After(sq.Start) {
			sq.Start = t
		}
	}
	return sq
}

// queryStore returns up to q.Limit events from the store past q's cursor, in q's
// order, whether more match, and how many stored events could not be decoded.
func (q *ListQuery) queryStore(ctx context.Context, store Store) (out []*events.Event, more bool, bad int, err error) {
	sq, token := q.storeQuery(), ""
	for {
		p, err := store.Query(ctx, sq, token)
		if err != nil {
			return nil, false, bad, err
		}
		bad += p.Bad
		for _, e := range p.Events {
			if q.pastCursor(e) {
				out = append(out, e)
			}
		}
		switch {
		case p.Next == "":
			return out, false, bad, nil
		case len(out) >= q.Limit:
			return out, true, bad, nil
		}
		token = p.Next
	}
}
