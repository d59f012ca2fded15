package storage

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// queryData writes n events a minute apart, and a few more that share times with
// them (so that ties are broken by ID), and returns them all.
func queryData(t *testing.T, s *Store, n int) []Concept {
	t.Helper()
	cs, as := eventBatch(0, n, time.Minute)
	for i := 0; i < 5; i++ {
		c := eventConcept(n+i, cs[i*10].Time)
		cs = append(cs, c)
	}
	// Write in several batches and out of time order.
	for i := len(cs); i > 0; i -= 97 {
		mustWrite(t, s, cs[max(i-97, 0):i], nil)
	}
	mustWrite(t, s, nil, as)
	return cs
}

// modelQuery is what Query must return, computed the slow way.
func modelQuery(all []Concept, q QuerySpec) []string {
	var out []Concept
	for _, c := range all {
		if c.Time < q.Start || (q.End != MaxTime && c.Time >= q.End) || !matches(c, q.Filters) {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Time != b.Time {
			return (a.Time < b.Time) == (q.Order == Ascending)
		}
		return (a.ID < b.ID) == (q.Order == Ascending)
	})
	ids := []string{}
	for _, c := range out {
		ids = append(ids, c.ID)
	}
	return ids
}

func matches(c Concept, fs []Filter) bool {
	for _, f := range fs {
		v, ok := c.Attributes[f.Attribute]
		found := false
		for _, want := range f.Values {
			found = found || (ok && v == want)
		}
		if !found {
			return false
		}
	}
	return true
}

func querySpecs() []QuerySpec {
	at := func(minute int) int64 { return epoch + int64(minute)*int64(time.Minute) }
	ranges := [][2]int64{{MinTime, MaxTime}, {at(100), at(400)}, {at(10), at(11)}, {at(599), MaxTime}, {MinTime, at(0)}, {at(1000), at(2000)}}
	filters := [][]Filter{
		nil,
		{{Attribute: "agent_id", Values: []string{"agent-007"}}},
		{{Attribute: "type", Values: []string{"node_crashed", "spawn_failed", "no_such_type"}}},
		{{Attribute: "agent_id", Values: []string{"agent-003", "agent-004"}}, {Attribute: "severity", Values: []string{"error"}}},
		{{Attribute: "agent_id", Values: []string{"agent-001"}}, {Attribute: "type", Values: []string{"agent_registered"}}, {Attribute: "severity", Values: []string{"info", "warning"}}},
		{{Attribute: "node_id", Values: []string{"node-001"}}, {Attribute: "node_id", Values: []string{"node-002"}}},
		{{Attribute: "missing", Values: []string{"x"}}},
		// Dense: runs of five matches between gaps of ten; and every concept.
		{{Attribute: "severity", Values: []string{"info"}}},
		{{Attribute: "severity", Values: []string{"info", "warning", "error"}}},
	}
	var specs []QuerySpec
	for _, r := range ranges {
		for _, f := range filters {
			for _, o := range []Order{Ascending, Descending} {
				specs = append(specs, QuerySpec{Start: r[0], End: r[1], Filters: f, Order: o})
			}
		}
	}
	return specs
}

func describe(q QuerySpec) string {
	var fs []string
	for _, f := range q.Filters {
		fs = append(fs, f.Attribute+"="+strings.Join(f.Values, "|"))
	}
	return fmt.Sprintf("[%d,%d) %v order=%d", (q.Start-epoch)/int64(time.Minute), (q.End-epoch)/int64(time.Minute), fs, q.Order)
}

func TestQueryMatchesModel(t *testing.T) {
	s := openTestStore(t)
	all := queryData(t, s, 600)
	for _, q := range querySpecs() {
		want := modelQuery(all, q)
		for _, limit := range []int{1, 7, 100, 10000} {
			var got []string
			var after []byte
			pages := 0
			for {
				cs, next, err := s.Query(q, after, limit)
				if err != nil {
					t.Fatalf("%s: %v", describe(q), err)
				}
				if len(cs) > limit || (next != nil && len(cs) != limit) {
					t.Fatalf("%s limit %d: page of %d, next %v", describe(q), limit, len(cs), next != nil)
				}
				for _, c := range cs {
					got = append(got, c.ID)
				}
				pages++
				if next == nil {
					break
				}
				after = next
			}
			if got == nil {
				got = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s limit %d:\n got %v\nwant %v", describe(q), limit, got, want)
			}
			// A query whose answer fills its last page exactly may need one more
			// (empty) page; never more.
			if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages && pages != wantPages+1 {
				t.Fatalf("%s limit %d: %d pages for %d results", describe(q), limit, pages, len(want))
			}
		}
	}
}

func TestQueryPagesAreStableUnderWrites(t *testing.T) {
	// Keyset paging: concepts written behind the cursor do not shift later pages.
	s := openTestStore(t)
	cs, _ := eventBatch(0, 50, time.Minute)
	mustWrite(t, s, cs, nil)
	q := QuerySpec{Start: MinTime, End: MaxTime, Order: Descending}
	page, next, err := s.Query(q, nil, 10)
	if err != nil || len(page) != 10 || page[0].ID != eventID(49) {
		t.Fatalf("first page: %v %v", page, err)
	}
	newer := eventConcept(1000, cs[49].Time+1) // newer than everything: before the cursor
	mustWrite(t, s, []Concept{newer}, nil)
	page, _, err = s.Query(q, next, 10)
	if err != nil || page[0].ID != eventID(39) {
		t.Fatalf("second page starts at %s, want %s (%v)", page[0].ID, eventID(39), err)
	}
}

// modelAggregate is what Aggregate must return.
func modelAggregate(all []Concept, a AggregateSpec) map[string]uint64 {
	counts := map[string]uint64{}
	for _, id := range modelQuery(all, a.QuerySpec) {
		var c Concept
		for _, x := range all {
			if x.ID == id {
				c = x
			}
		}
		key := ""
		if a.Bucket > 0 {
			key = fmt.Sprint(floorDiv(c.Time, a.Bucket)*a.Bucket) + "/"
		}
		for _, g := range a.GroupBy {
			key += c.Attributes[g] + "/"
		}
		counts[key]++
	}
	return counts
}

func TestAggregateMatchesModel(t *testing.T) {
	s := openTestStore(t)
	all := queryData(t, s, 600)
	groupings := []struct {
		by     []string
		bucket time.Duration
	}{
		{nil, 0},
		{[]string{"type"}, 0},
		{[]string{"agent_id", "severity"}, 0},
		{nil, time.Hour},
		{[]string{"type"}, 15 * time.Minute},
		{[]string{"missing"}, 24 * time.Hour},
	}
	for _, q := range querySpecs() {
		if q.Order == Descending {
			continue
		}
		for _, g := range groupings {
			spec := AggregateSpec{QuerySpec: q, GroupBy: g.by, Bucket: int64(g.bucket)}
			want := modelAggregate(all, spec)
			res, err := s.Aggregate(spec)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]uint64{}
			var total uint64
			for _, grp := range res.Groups {
				key := ""
				if spec.Bucket > 0 {
					key = fmt.Sprint(grp.Bucket) + "/"
				}
				for _, v := range grp.Values {
					key += v + "/"
				}
				got[key] = grp.Count
				total += grp.Count
			}
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%s by %v/%s:\n got %v\nwant %v", describe(q), g.by, g.bucket, got, want)
			}
			if total != res.Total || res.Truncated {
				t.Fatalf("%s: total %d, groups sum to %d, truncated %v", describe(q), res.Total, total, res.Truncated)
			}
			for i := 1; i < len(res.Groups); i++ {
				a, b := res.Groups[i-1], res.Groups[i]
				if a.Bucket > b.Bucket || (a.Bucket == b.Bucket && a.Count < b.Count) {
					t.Fatalf("groups out of order: %+v before %+v", a, b)
				}
			}
		}
	}
}

func TestAggregateMaxGroups(t *testing.T) {
	s := openTestStore(t)
	queryData(t, s, 200)
	res, err := s.Aggregate(AggregateSpec{QuerySpec: QuerySpec{Start: MinTime, End: MaxTime}, GroupBy: []string{"agent_id"}, MaxGroups: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 5 || !res.Truncated || res.Total != 205 {
		t.Fatalf("got %d groups, truncated %v, total %d", len(res.Groups), res.Truncated, res.Total)
	}
}
