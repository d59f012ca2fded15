package eventquery

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

// groups renders counts as "12:00 type=agent_registered:2 …/total".
func groups(q *CountQuery, c *Counts) string {
	var parts []string
	for _, g := range c.Groups {
		var s []string
		if !g.Bucket.IsZero() {
			s = append(s, g.Bucket.Format("15:04"))
		}
		for i, d := range q.GroupBy {
			s = append(s, fmt.Sprintf("%s=%s", d, g.Values[i]))
		}
		parts = append(parts, fmt.Sprintf("%s:%d", strings.Join(s, " "), g.Count))
	}
	out := strings.Join(parts, " ") + fmt.Sprintf(" /%d", c.Total)
	if c.Truncated {
		out += " truncated"
	}
	return out
}

// TestCount counts the same history wherever its events are: each is counted once.
func TestCount(t *testing.T) {
	h := history()
	views := map[string]func() *View{
		"store":          func() *View { return view(h, 7, newFakeStore(h...)) },
		"store and both": func() *View { return view(h, 3, newFakeStore(h[:5]...)) },
		"outbox":         func() *View { return view(h, 0, newFakeStore()) },
		"no store":       func() *View { return view(h, 0, nil) },
	}
	for _, tc := range []struct {
		name string
		q    CountQuery
		want string
	}{
		{"total", CountQuery{MaxGroups: 10}, ":7 /7"},
		{"by type", CountQuery{GroupBy: []Dimension{ByType}, MaxGroups: 10},
			"type=agent_registered:2 type=cluster_healthy:2 type=agent_degraded:1 type=agent_recovered:1 type=cluster_degraded:1 /7"},
		{"by severity", CountQuery{GroupBy: []Dimension{BySeverity}, MaxGroups: 10}, "severity=info:5 severity=warning:2 /7"},
		{"by agent, warnings", CountQuery{Filter: Filter{Severities: []events.Severity{events.SeverityWarning}}, GroupBy: []Dimension{ByAgent}, MaxGroups: 10},
			"agent=:1 agent=a1:1 /2"},
		{"by hour and severity", CountQuery{GroupBy: []Dimension{BySeverity}, Bucket: time.Hour, MaxGroups: 10},
			"12:00 severity=info:3 13:00 severity=info:2 13:00 severity=warning:2 /7"},
		{"by 15 minutes, one agent", CountQuery{Filter: Filter{Agents: []string{"a1"}}, Bucket: 15 * time.Minute, MaxGroups: 10},
			"12:00:1 13:00:1 13:15:1 /3"},
		{"the top agent", CountQuery{GroupBy: []Dimension{ByAgent}, Top: 1, MaxGroups: 10},
			"agent=:3 /7 truncated"},
		{"empty buckets are there with 0", CountQuery{Filter: Filter{Agents: []string{"a2"}, Start: base, End: base.Add(3 * time.Hour)}, Bucket: time.Hour, MaxGroups: 10},
			"12:00:1 13:00:0 14:00:0 /1"},
		{"empty buckets of every series, up to now", CountQuery{Filter: Filter{Agents: []string{"a1"}, Start: base}, GroupBy: []Dimension{ByType}, Bucket: time.Hour, MaxGroups: 10, Now: base.Add(90 * time.Minute)},
			"12:00 type=agent_registered:1 12:00 type=agent_degraded:0 12:00 type=agent_recovered:0 13:00 type=agent_degraded:1 13:00 type=agent_recovered:1 13:00 type=agent_registered:0 /3"},
		{"since", CountQuery{Filter: Filter{Start: base.Add(time.Hour)}, GroupBy: []Dimension{ByType}, MaxGroups: 10},
			"type=agent_degraded:1 type=agent_recovered:1 type=cluster_degraded:1 type=cluster_healthy:1 /4"},
	} {
		for where, mk := range views {
			c, err := mk().Count(context.Background(), &tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := groups(&tc.q, c); got != tc.want || len(c.Partial) > 0 {
				t.Errorf("%s: %s: %s (partial %q), want %s", where, tc.name, got, c.Partial, tc.want)
			}
		}
	}
}

// TestCountTruncated: when there are more groups than asked for, the total still
// counts every event, and the groups shown have exact counts. When the store left
// groups out, so are those of the waiting events in them.
func TestCountTruncated(t *testing.T) {
	h := history()
	q := &CountQuery{GroupBy: []Dimension{ByType}, MaxGroups: 2}
	for _, tc := range []struct {
		name string
		v    *View
		want string
	}{
		{"store", view(h, 7, newFakeStore(h...)), "type=agent_registered:2 type=cluster_healthy:2 /7 truncated"},
		{"outbox", view(h, 0, nil), "type=agent_registered:2 type=cluster_healthy:2 /7 truncated"},
		{"store and outbox", view(h, 4, newFakeStore(h[:4]...)), "type=agent_registered:2 type=agent_degraded:1 /7 truncated"},
	} {
		c, err := tc.v.Count(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if got := groups(q, c); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestCountPartial: without a readable store, the outbox's events are counted and
// the answer says why others may be missing.
func TestCountPartial(t *testing.T) {
	h := history()
	down := newFakeStore(h[:2]...)
	down.fail(errDown)
	q := &CountQuery{GroupBy: []Dimension{BySeverity}, MaxGroups: 10}
	for _, tc := range []struct {
		name    string
		v       *View
		partial string
	}{
		{"store down", view(h, 2, down), "event store unreachable: connection refused"},
		{"no store, events shipped", view(h, 2, nil),
			"no event store configured on this server (-event-store): events up to seq 2 were shipped and cannot be counted here"},
	} {
		c, err := tc.v.Count(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := groups(q, c), "severity=info:3 severity=warning:2 /5"; got != want || strings.Join(c.Partial, "; ") != tc.partial {
			t.Errorf("%s: %s, partial %q; want %s, %q", tc.name, got, c.Partial, want, tc.partial)
		}
	}
}

// TestCountWhileShipping: when the shipper stores waiting events while Count asks,
// Count starts again, and counts each event once.
func TestCountWhileShipping(t *testing.T) {
	h := history()
	q := &CountQuery{GroupBy: []Dimension{ByType}, MaxGroups: 10}
	want := "type=agent_registered:2 type=cluster_healthy:2 type=agent_degraded:1 type=agent_recovered:1 type=cluster_degraded:1 /7"
	for _, tc := range []struct {
		name    string
		ships   map[int][]*events.Event // by the call of Holds after whose answer they are stored
		holds   int                     // calls of Holds expected
		partial string
	}{
		{"nothing shipped", nil, 2, ""},
		{"shipped while counting", map[int][]*events.Event{1: h[3:5]}, 4, ""},
		{"shipped after counting", map[int][]*events.Event{2: h[3:5]}, 2, ""},
		{"shipped all the time", map[int][]*events.Event{1: h[3:4], 3: h[4:5], 5: h[5:6]}, 6,
			"events were shipped while they were counted: a few may be counted twice or not at all"},
	} {
		store := newFakeStore(h[:3]...)
		store.onHolds = func(call int) { store.add(tc.ships[call]...) }
		c, err := view(h, 3, store).Count(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got := groups(q, c)
		if tc.partial == "" && got != want || strings.Join(c.Partial, "; ") != tc.partial || store.holds != tc.holds {
			t.Errorf("%s: %s, partial %q, %d calls of Holds; want %s, %q, %d", tc.name, got, c.Partial, store.holds, want, tc.partial, tc.holds)
		}
	}
}

// TestCountManyWaiting: when too many events wait to ask the store about each, they
// are counted from the outbox, and the answer says some may be counted twice.
func TestCountManyWaiting(t *testing.T) {
	var h []*events.Event
	for seq := uint64(1); seq <= maxHoldsCheck+11; seq++ {
		h = append(h, ev(seq, events.AgentHeartbeat, 0, "a1"))
	}
	store := newFakeStore(h[:20]...) // 11-20 stored, not yet acknowledged: counted twice
	c, err := view(h, 10, store).Count(context.Background(), &CountQuery{MaxGroups: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d events wait to be shipped, too many to ask which of them the event store holds already: some may be counted twice", maxHoldsCheck+1)
	if c.Total != maxHoldsCheck+21 || strings.Join(c.Partial, "; ") != want || store.holds != 0 {
		t.Errorf("total %d, partial %q, %d calls of Holds", c.Total, c.Partial, store.holds)
	}
}

func TestBucketOf(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		d    time.Duration
		want time.Time
	}{
		{base.Add(59 * time.Minute), time.Hour, base},
		{base, time.Hour, base},
		{base.Add(-time.Nanosecond), time.Hour, base.Add(-time.Hour)},
		{time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600)), 24 * time.Hour, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{base, 7 * 24 * time.Hour, time.Date(2024, 4, 25, 0, 0, 0, 0, time.UTC)}, // epoch weeks start on Thursdays
		{time.Unix(-1, 0), time.Minute, time.Unix(-60, 0).UTC()},
	} {
		if got := bucketOf(tc.t, tc.d); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("bucket of %s by %s: %s, want %s", tc.t, tc.d, got, tc.want)
		}
	}
}
