package answer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
)

// usable reports whether a request for scope can match anything: the cluster has
// only cluster events, and a filter with no type left matches nothing.
func (r *run) usable(scope []string) bool {
	if r.emptyFilter() {
		return false
	}
	ts := r.types()
	if ts == nil || !slices.Contains(scope, "cluster") {
		return true
	}
	return slices.ContainsFunc(ts, func(t events.Type) bool { return slices.Contains(clusterTypes, t) })
}

// events answers history and list: the matching events, newest first unless asked
// otherwise, with their total and counts by type.
func (r *run) events() error {
	var lists [][]api.Event
	byType := map[string]uint64{}
	var total uint64
	for _, scope := range r.scopes() {
		if !r.usable(scope) {
			continue
		}
		q := r.eventQuery(scope)
		q.Limit = MaxEvents
		l, err := r.listEvents(q)
		if err != nil {
			return err
		}
		lists = append(lists, l.Events)
		cq := r.countQuery(scope)
		cq.GroupBy = []string{"type"}
		c, err := r.countEvents(cq)
		if err != nil {
			return err
		}
		total += c.Total
		for _, g := range c.Groups {
			byType[g.Values["type"]] += g.Count
		}
	}
	evs := mergeEvents(lists, r.in.Order == "asc", MaxEvents)
	r.answer = api.Answer{Kind: api.AnswerEvents, Events: evs, Total: &total, ByType: typeGroups(byType)}
	r.summary = r.eventsSummary(total, byType, len(evs))
	return nil
}

func sumCounts(gs []api.EventGroup) uint64 {
	var n uint64
	for _, g := range gs {
		n += g.Count
	}
	return n
}

// typeGroups turns counts by type into groups, largest first.
func typeGroups(byType map[string]uint64) []api.EventGroup {
	out := make([]api.EventGroup, 0, len(byType))
	for t, n := range byType {
		out = append(out, api.EventGroup{Values: map[string]string{"type": t}, Count: n})
	}
	sortGroups(out)
	return out
}

func (r *run) eventsSummary(total uint64, byType map[string]uint64, shown int) string {
	var b strings.Builder
	b.WriteString(capital(r.counted(total)))
	if len(byType) > 1 {
		groups := typeGroups(byType)
		parts := make([]string, 0, len(groups))
		// Five kinds are named; a sixth and more are summed up, never one alone.
		named := groups
		if len(groups) > 5 {
			named = groups[:4]
		}
		for _, g := range named {
			t := events.Type(g.Values["type"])
			parts = append(parts, countOf(g.Count, typeNoun(t, int(g.Count))))
		}
		if len(named) < len(groups) {
			parts = append(parts, fmt.Sprintf("%d of other kinds", sumCounts(groups[len(named):])))
		}
		fmt.Fprintf(&b, ": %s", joinAnd(parts))
	}
	b.WriteString(".")
	if uint64(shown) < total {
		order := "newest"
		if r.in.Order == "asc" {
			order = "oldest"
		}
		fmt.Fprintf(&b, " The %s %d are listed.", order, shown)
	}
	return r.withAssumptions(b.String())
}

// count answers count: a total, counts by group, or a series of time buckets.
func (r *run) count() error {
	groupBy := groupParam(r.in.GroupBy)
	c, err := r.counts(groupBy, r.in.Bucket, 0)
	if err != nil {
		return err
	}
	total := c.Total
	switch {
	case r.in.Bucket != "":
		r.answer = api.Answer{Kind: api.AnswerSeries, Total: &total, GroupBy: groupBy, Bucket: r.in.Bucket, Groups: c.Groups}
		r.summary = r.seriesSummary(c)
	case len(groupBy) > 0:
		r.answer = api.Answer{Kind: api.AnswerGroups, Total: &total, GroupBy: groupBy, Groups: c.Groups}
		r.summary = r.groupsSummary(c, groupBy, 0)
	default:
		r.answer = api.Answer{Kind: api.AnswerCount, Total: &total}
		r.summary = r.countSummary(total)
	}
	return nil
}

// top answers top: the largest Limit groups.
func (r *run) top() error {
	groupBy := groupParam(r.in.GroupBy)
	c, err := r.counts(groupBy, "", r.in.Limit)
	if err != nil {
		return err
	}
	total := c.Total
	r.answer = api.Answer{Kind: api.AnswerGroups, Total: &total, GroupBy: groupBy, Groups: c.Groups}
	r.summary = r.groupsSummary(c, groupBy, r.in.Limit)
	return nil
}

// rate answers rate: the count of the first type over the count of the second.
func (r *run) rate() error {
	num, den := r.in.Types[0], r.in.Types[1]
	var n [2]uint64
	for i, t := range []events.Type{num, den} {
		c, err := r.countOfType(t)
		if err != nil {
			return err
		}
		n[i] = c
	}
	rate := &api.Rate{
		Numerator:   api.EventTypeCount{Type: string(num), Count: n[0]},
		Denominator: api.EventTypeCount{Type: string(den), Count: n[1]},
	}
	if n[1] > 0 {
		v := float64(n[0]) / float64(n[1])
		rate.Value = &v
	}
	r.answer = api.Answer{Kind: api.AnswerRate, Rate: rate}
	r.summary = r.rateSummary(rate)
	return nil
}

// countOfType counts the events of type t in every scope.
func (r *run) countOfType(t events.Type) (uint64, error) {
	keep := r.in
	defer func() { r.in = keep }()
	r.in.Types, r.in.Severity = []events.Type{t}, ""
	c, err := r.counts(nil, "", 0)
	if err != nil {
		return 0, err
	}
	return c.Total, nil
}

// counts runs the aggregate for every scope and adds the answers up: groups with
// the same values and bucket are one group.
func (r *run) counts(groupBy []string, bucket string, top int) (*api.EventCounts, error) {
	sum := &api.EventCounts{Groups: []api.EventGroup{}}
	index := map[string]int{}
	scopes := r.scopes()
	for _, scope := range scopes {
		if !r.usable(scope) {
			continue
		}
		q := r.countQuery(scope)
		q.GroupBy, q.Bucket = groupBy, bucket
		if len(scopes) == 1 {
			// Across scopes the largest groups are only known once added up.
			q.Top = top
		}
		c, err := r.countEvents(q)
		if err != nil {
			return nil, err
		}
		sum.Total += c.Total
		sum.Truncated = sum.Truncated || c.Truncated
		for _, g := range c.Groups {
			k := groupKey(g)
			if i, ok := index[k]; ok {
				sum.Groups[i].Count += g.Count
				continue
			}
			index[k] = len(sum.Groups)
			sum.Groups = append(sum.Groups, g)
		}
	}
	if bucket == "" {
		sortGroups(sum.Groups)
	} else {
		slices.SortStableFunc(sum.Groups, func(a, b api.EventGroup) int { return a.Bucket.Compare(*b.Bucket) })
	}
	if top > 0 && len(sum.Groups) > top {
		sum.Groups = sum.Groups[:top]
	}
	r.nameNodes(sum.Groups)
	return sum, nil
}

// nameNodes adds each node group's node name, for people to read.
func (r *run) nameNodes(gs []api.EventGroup) {
	for _, g := range gs {
		if id, ok := g.Values["node"]; ok && id != "" {
			g.Values["node_name"] = r.names.nodeName(id)
		}
	}
}

func groupKey(g api.EventGroup) string {
	keys := make([]string, 0, len(g.Values))
	for k, v := range g.Values {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	if g.Bucket != nil {
		keys = append(keys, g.Bucket.Format(time.RFC3339))
	}
	return strings.Join(keys, "\x00")
}

// sortGroups orders groups by count, largest first, then by their values.
func sortGroups(gs []api.EventGroup) {
	slices.SortStableFunc(gs, func(a, b api.EventGroup) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(groupKey(a), groupKey(b))
	})
}

func (r *run) countSummary(total uint64) string {
	return r.withAssumptions(capital(r.counted(total)) + ".")
}

// counted writes a count of the events asked about, for whom and when: "4 crashes
// for agent-001 today", "no spawn failures since Mon 2 Mar".
func (r *run) counted(n uint64) string {
	s := countOf(n, r.what(int(n)))
	if subject := r.subject(); subject != "" {
		s += " for " + subject
	}
	return s + " " + r.rangePhrase()
}

// groupsSummary names the largest groups: "3 crashes today: agent-001 2, agent-002 1."
func (r *run) groupsSummary(c *api.EventCounts, groupBy []string, top int) string {
	what := r.what(2)
	if top > 0 && len(c.Groups) > 0 {
		g := c.Groups[0]
		lead := fmt.Sprintf("%s had the most %s %s: %d", r.groupLabel(g, groupBy), what, r.rangePhrase(), g.Count)
		if len(c.Groups) > 1 {
			rest := make([]string, 0, len(c.Groups)-1)
			for _, g := range c.Groups[1:] {
				rest = append(rest, fmt.Sprintf("%s %d", r.groupLabel(g, groupBy), g.Count))
			}
			lead += "; then " + strings.Join(rest, ", ")
		}
		return r.withAssumptions(lead + ".")
	}
	s := capital(r.counted(c.Total))
	if len(c.Groups) > 0 {
		parts := make([]string, 0, 5)
		for _, g := range first(c.Groups, 5) {
			parts = append(parts, fmt.Sprintf("%s %d", r.groupLabel(g, groupBy), g.Count))
		}
		if len(c.Groups) > 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(c.Groups)-5))
		}
		s += ": " + strings.Join(parts, ", ")
	}
	return r.withAssumptions(s + ".")
}

// groupLabel is how a group is named in a sentence: its values, a node by name,
// events of no agent as "no agent".
func (r *run) groupLabel(g api.EventGroup, groupBy []string) string {
	parts := make([]string, 0, len(groupBy))
	for _, k := range groupBy {
		v := g.Values[k]
		switch {
		case v == "":
			v = "no " + k
		case k == "node":
			v = r.names.nodeName(v)
		case k == "type":
			v = typeNoun(events.Type(v), 2)
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, " / ")
}

// seriesSummary gives the total and the busiest bucket.
func (r *run) seriesSummary(c *api.EventCounts) string {
	s := fmt.Sprintf("%s, per %s", capital(r.counted(c.Total)), bucketWord(r.in.Bucket))
	var busiest *api.EventGroup
	for i := range c.Groups {
		if g := &c.Groups[i]; busiest == nil || g.Count > busiest.Count {
			busiest = g
		}
	}
	if busiest != nil && busiest.Count > 0 && busiest.Bucket != nil {
		s += fmt.Sprintf("; the busiest %s was %s with %d", bucketWord(r.in.Bucket), bucketTime(*busiest.Bucket, r.in.Bucket), busiest.Count)
	}
	return r.withAssumptions(s + ".")
}

func (r *run) rateSummary(rt *api.Rate) string {
	name := rateName(events.Type(rt.Numerator.Type))
	subject := ""
	if s := r.subject(); s != "" {
		subject = " for " + s
	}
	if rt.Value == nil {
		return r.withAssumptions(fmt.Sprintf("No %s %s%s, so there is no %s.",
			typeNoun(events.Type(rt.Denominator.Type), 2), r.rangePhrase(), subject, name))
	}
	return r.withAssumptions(fmt.Sprintf("The %s%s %s is %s: %d of %d %s.", name, subject, r.rangePhrase(),
		percent(*rt.Value), rt.Numerator.Count, rt.Denominator.Count, typeNoun(events.Type(rt.Denominator.Type), int(rt.Denominator.Count))))
}

// rateName is "spawn failure rate" for spawn_failed, "spawn success rate" for
// spawn_succeeded.
func rateName(num events.Type) string {
	kind, outcome, _ := strings.Cut(string(num), "_")
	switch outcome {
	case "failed":
		return kind + " failure rate"
	case "succeeded":
		return kind + " success rate"
	}
	return string(num) + " rate"
}

// subject names the interpretation's entities: "agent-001", "node-2 and the cluster".
func (r *run) subject() string {
	return joinAnd(r.in.Entities)
}

// what names the events asked about, in the number n asks for: "crashes",
// "events of severity error or worse", "events".
func (r *run) what(n int) string {
	ts := r.in.Types
	switch {
	case r.in.Severity != "" && ts == nil:
		return plural(n, "event", "events") + " of severity " + r.in.Severity + " or worse"
	case sameTypes(ts, events.TypesAtLeast(events.SeverityWarning)):
		return plural(n, "failure", "failures")
	case len(ts) == 1:
		return typeNoun(ts[0], n)
	case len(ts) > 1 && sameKind(ts):
		kind, _, _ := strings.Cut(string(ts[0]), "_")
		return kind + " " + plural(n, "event", "events")
	case len(ts) > 1:
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = string(t)
		}
		return plural(n, "event", "events") + " (" + strings.Join(names, ", ") + ")"
	}
	return plural(n, "event", "events")
}

// sameTypes reports whether a and b hold the same types, in any order.
func sameTypes(a, b []events.Type) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(t events.Type) bool { return !slices.Contains(b, t) })
}

func sameKind(ts []events.Type) bool {
	kind, _, _ := strings.Cut(string(ts[0]), "_")
	for _, t := range ts[1:] {
		if k, _, _ := strings.Cut(string(t), "_"); k != kind {
			return false
		}
	}
	return true
}

// withAssumptions adds what the answer assumed: the default window.
func (r *run) withAssumptions(s string) string {
	if r.in.DefaultWindow {
		s += fmt.Sprintf(" No time was given, so this covers the last %s.", hoursPhrase(ask.DefaultWindow))
	}
	return s
}
