package eventquery

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

// listAll pages through q's listing and returns the pages' seqs.
func listAll(t *testing.T, v *View, q ListQuery) string {
	t.Helper()
	var pages []string
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatalf("listing %+v does not end", q)
		}
		p, err := v.List(context.Background(), &q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Partial) > 0 {
			t.Errorf("list %+v: partial %q", q, p.Partial)
		}
		pages = append(pages, seqs(p.Events))
		if p.NextPageToken == "" {
			return strings.Join(pages, " ")
		}
		if err := q.Continue(p.NextPageToken); err != nil {
			t.Fatal(err)
		}
	}
}

// TestList lists and pages the same history wherever its events are: in the store
// alone; in the store, in both (stored before the acknowledgement) and in the outbox
// alone; in the outbox alone. Each event is listed once, in order.
func TestList(t *testing.T) {
	h := history()
	mid := base.Add(30 * time.Minute) // between 3 and 4
	views := map[string]func() *View{
		"store":           func() *View { return view(h, 7, newFakeStore(h...)) },
		"store and both":  func() *View { return view(h, 3, newFakeStore(h[:5]...)) },
		"outbox":          func() *View { return view(h, 0, newFakeStore()) },
		"outbox no store": func() *View { return view(h, 0, nil) },
	}
	lists := []struct {
		name string
		q    ListQuery
		want string
	}{
		{"newest first", ListQuery{Desc: true, Limit: 100}, "[7 6 5 4 3 2 1]"},
		{"oldest first", ListQuery{Limit: 100}, "[1 2 3 4 5 6 7]"},
		{"one agent", ListQuery{Filter: Filter{Agents: []string{"a1"}}, Desc: true, Limit: 100}, "[6 4 1]"},
		{"two agents", ListQuery{Filter: Filter{Agents: []string{"a1", "a2"}}, Limit: 100}, "[1 3 4 6]"},
		{"types", ListQuery{Filter: Filter{Types: []events.Type{events.ClusterHealthy, events.ClusterDegraded}}, Desc: true, Limit: 100}, "[7 5 2]"},
		{"agent and type", ListQuery{Filter: Filter{Agents: []string{"a1"}, Types: []events.Type{events.AgentDegraded}}, Desc: true, Limit: 100}, "[4]"},
		{"severity", ListQuery{Filter: Filter{Severities: []events.Severity{events.SeverityWarning}}, Limit: 100}, "[4 5]"},
		{"no match", ListQuery{Filter: Filter{Agents: []string{"nobody"}}, Desc: true, Limit: 100}, "[]"},
		{"since", ListQuery{Filter: Filter{Start: mid}, Desc: true, Limit: 100}, "[7 6 5 4]"},
		{"until", ListQuery{Filter: Filter{End: mid}, Desc: true, Limit: 100}, "[3 2 1]"},
		{"until the time of 4 and 5", ListQuery{Filter: Filter{End: h[3].Timestamp}, Desc: true, Limit: 100}, "[3 2 1]"},
		{"limit", ListQuery{Desc: true, Limit: 2}, "[7 6]"},
		{"limit oldest first", ListQuery{Limit: 2}, "[1 2]"},
	}
	pages := []struct {
		q    ListQuery
		want string
	}{
		{ListQuery{Desc: true, Limit: 3}, "[7 6 5] [4 3 2] [1]"},
		{ListQuery{Limit: 3}, "[1 2 3] [4 5 6] [7]"},
		{ListQuery{Desc: true, Limit: 1}, "[7] [6] [5] [4] [3] [2] [1]"},
		{ListQuery{Desc: true, Limit: 2}, "[7 6] [5 4] [3 2] [1]"},
		{ListQuery{Filter: Filter{Agents: []string{"a1"}}, Desc: true, Limit: 2}, "[6 4] [1]"},
		{ListQuery{Filter: Filter{Agents: []string{"a1"}}, Limit: 1}, "[1] [4] [6]"},
		{ListQuery{Desc: true, Limit: 7}, "[7 6 5 4 3 2 1]"},
		{ListQuery{Filter: Filter{Start: mid}, Limit: 3}, "[4 5 6] [7]"},
	}
	for where, mk := range views {
		for _, tc := range lists {
			p, err := mk().List(context.Background(), &tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(p.Events); got != tc.want || len(p.Partial) > 0 {
				t.Errorf("%s: %s: %s (partial %q), want %s", where, tc.name, got, p.Partial, tc.want)
			}
		}
		for _, tc := range pages {
			if got := listAll(t, mk(), tc.q); got != tc.want {
				t.Errorf("%s: pages of %+v: %s, want %s", where, tc.q, got, tc.want)
			}
		}
	}
}

// TestListPartial: when the store cannot be read, the outbox's events are listed,
// and the page says why others may be missing.
func TestListPartial(t *testing.T) {
	h := history()
	down := newFakeStore(h[:2]...)
	down.fail(errDown)
	bad := newFakeStore(h[:2]...)
	bad.bad = 2
	for _, tc := range []struct {
		name    string
		v       *View
		want    string
		partial string
	}{
		{"store down", view(h, 2, down), "[7 6 5 4 3]", "event store unreachable: connection refused"},
		{"store unusable", func() *View {
			v := view(h, 2, nil)
			v.StoreErr = fmt.Errorf("event store bad:address: no port")
			return v
		}(), "[7 6 5 4 3]", "event store bad:address: no port"},
		{"no store, events shipped", view(h, 2, nil), "[7 6 5 4 3]",
			"no event store configured on this server (-event-store): events up to seq 2 were shipped and cannot be read here"},
		{"undecodable events", view(h, 2, bad), "[7 6 5 4 3 2 1]", "2 event(s) in the event store could not be decoded"},
	} {
		p, err := tc.v.List(context.Background(), &ListQuery{Desc: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(p.Events); got != tc.want || strings.Join(p.Partial, "; ") != tc.partial {
			t.Errorf("%s: %s, partial %q; want %s, %q", tc.name, got, p.Partial, tc.want, tc.partial)
		}
	}
}

// TestListStoreQueryFromCursor: the store is asked for the events from the cursor's
// time on, not for those of the pages before.
func TestListStoreQueryFromCursor(t *testing.T) {
	h := history()
	for _, tc := range []struct {
		desc       bool
		start, end time.Time
	}{
		{true, time.Time{}, h[6].Timestamp.Add(time.Nanosecond)},
		{false, h[1].Timestamp, time.Time{}},
	} {
		q := &ListQuery{Desc: tc.desc, Limit: 2}
		p, err := view(h, 7, newFakeStore(h...)).List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Continue(p.NextPageToken); err != nil {
			t.Fatal(err)
		}
		if sq := q.storeQuery(); !sq.Start.Equal(tc.start) || !sq.End.Equal(tc.end) || sq.Desc != tc.desc || sq.Limit != 2 {
			t.Errorf("desc %v: store query %+v, want %v to %v", tc.desc, sq, tc.start, tc.end)
		}
	}
}
