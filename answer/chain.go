package answer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
)

// anchor finds the event a cause, before, after, chain or last question is about:
// the latest that matches, in the range if one was given. Nil when none does.
func (r *run) anchor() (*api.Event, error) {
	var latest *api.Event
	for _, scope := range r.scopes() {
		if !r.usable(scope) {
			continue
		}
		q := r.eventQuery(scope)
		q.Ascending, q.Limit = false, 1
		l, err := r.listEvents(q)
		if err != nil {
			return nil, err
		}
		if len(l.Events) > 0 && (latest == nil || eventLess(latest, &l.Events[0])) {
			latest = &l.Events[0]
		}
	}
	return latest, nil
}

// noAnchor answers when nothing matched the anchor's description.
func (r *run) noAnchor() {
	what := r.what(1)
	if s := r.subject(); s != "" {
		what += " of " + s
	}
	reason := fmt.Sprintf("no %s %s", what, r.anchorRange())
	r.answer = api.Answer{Kind: api.AnswerNone, Reason: reason}
	r.summary = sentence(reason)
}

// anchorRange names where the anchor was looked for.
func (r *run) anchorRange() string {
	if r.in.Since == nil && r.in.Until == nil {
		return "in the retained history"
	}
	return r.rangePhrase()
}

// last answers last: the latest matching event.
func (r *run) last() error {
	a, err := r.anchor()
	if err != nil {
		return err
	}
	if a == nil {
		r.noAnchor()
		return nil
	}
	r.answer = api.Answer{Kind: api.AnswerEvent, Anchor: a}
	r.summary = fmt.Sprintf("The last %s was %s (%s): %s.", r.what(1), at(a.Timestamp, r.now), ago(a.Timestamp, r.now),
		strings.TrimSuffix(describe(a, r.names), "."))
	return nil
}

// chain answers cause, before, after and chain: the anchor, its causes (and for a
// chain its effects, followed both ways), and the events in the window around it
// on the same agent, its nodes and the cluster.
func (r *run) chain() error {
	a, err := r.anchor()
	if err != nil {
		return err
	}
	if a == nil {
		r.noAnchor()
		return nil
	}
	d, err := r.detail(a.Seq)
	if err != nil {
		return err
	}
	ans := api.Answer{Kind: api.AnswerChain, Anchor: &d.Event, Causes: d.Causes, Effects: d.Effects, Window: r.in.Window}
	if r.in.Intent == ask.IntentChain {
		if ans.Effects, err = r.allEffects(d); err != nil {
			return err
		}
	}
	if r.in.Window != "" {
		w, _ := time.ParseDuration(r.in.Window) // Validate has checked it
		if ans.Events, err = r.context(&d.Event, w); err != nil {
			return err
		}
	}
	r.answer = ans
	r.summary = r.chainSummary(&ans)
	return nil
}

// allEffects follows the anchor's effects to theirs, breadth first, up to
// maxEffects requests, and returns them in seq order.
func (r *run) allEffects(d *api.EventDetail) ([]api.Event, error) {
	found := slices.Clone(d.Effects)
	queue := slices.Clone(d.Effects)
	seen := map[uint64]bool{d.Event.Seq: true}
	for _, e := range found {
		seen[e.Seq] = true
	}
	for asked := 0; len(queue) > 0 && asked < maxEffects; asked++ {
		next, err := r.detail(queue[0].Seq)
		queue = queue[1:]
		if err != nil {
			return nil, err
		}
		for _, e := range next.Effects {
			if !seen[e.Seq] {
				seen[e.Seq] = true
				found = append(found, e)
				queue = append(queue, e)
			}
		}
	}
	slices.SortFunc(found, func(a, b api.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return found, nil
}

// context returns the events in window w before the anchor (cause, before) or
// after it (after), on the anchor's agent (its nodes included) and the cluster,
// or on the whole fleet for an event of no agent; the closest MaxEvents, in time
// order.
func (r *run) context(a *api.Event, w time.Duration) ([]api.Event, error) {
	after := r.in.Intent == ask.IntentAfter
	var since, until time.Time
	if after {
		since, until = a.Timestamp, a.Timestamp.Add(w)
	} else {
		// until is exclusive: one nanosecond past the anchor keeps events of its
		// very instant, which are then cut by seq below.
		since, until = a.Timestamp.Add(-w), a.Timestamp.Add(time.Nanosecond)
	}
	scopes := [][]string{nil}
	if a.AgentID != "" {
		scopes = [][]string{{a.AgentID}, {"cluster"}}
	}
	var lists [][]api.Event
	for _, scope := range scopes {
		l, err := r.listEvents(api.EventQuery{
			Entities: scope, Since: timeParam(&since), Until: timeParam(&until),
			Limit: MaxEvents + 1, Ascending: after,
		})
		if err != nil {
			return nil, err
		}
		lists = append(lists, l.Events)
	}
	evs := mergeEvents(lists, after, MaxEvents+1)
	evs = slices.DeleteFunc(evs, func(e api.Event) bool {
		if after {
			return !eventLess(a, &e)
		}
		return !eventLess(&e, a)
	})
	evs = first(evs, MaxEvents)
	if !after {
		slices.Reverse(evs)
	}
	return evs, nil
}

func (r *run) chainSummary(ans *api.Answer) string {
	a := ans.Anchor
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s.", at(a.Timestamp, r.now), strings.TrimSuffix(describe(a, r.names), "."))
	// The question named a kind of event, not one event: say which one was taken.
	what := r.what(1)
	if subj := r.subject(); subj != "" {
		what += " of " + subj
	}
	fmt.Fprintf(&b, " This is the latest %s %s.", what, r.anchorRange())
	switch {
	case len(ans.Causes) > 0:
		fmt.Fprintf(&b, " Caused by: %s", describe(&ans.Causes[0], r.names))
		for _, c := range ans.Causes[1:] {
			fmt.Fprintf(&b, ", which was caused by: %s", describe(&c, r.names))
		}
		b.WriteString(".")
	case r.in.Intent == ask.IntentCause || r.in.Intent == ask.IntentChain:
		b.WriteString(" It has no recorded cause.")
	}
	if r.in.Intent == ask.IntentChain && len(ans.Effects) > 0 {
		fmt.Fprintf(&b, " It led to %s.", countOf(uint64(len(ans.Effects)), plural(len(ans.Effects), "event", "events")))
	}
	if r.in.Window != "" {
		w, _ := time.ParseDuration(r.in.Window)
		side := "before"
		if r.in.Intent == ask.IntentAfter {
			side = "after"
		}
		where := "in the fleet"
		if a.AgentID != "" {
			where = "on " + a.AgentID + " and the cluster"
		}
		n := len(ans.Events)
		fmt.Fprintf(&b, " %s %s in the %s %s it.", capital(countOf(uint64(n), plural(n, "event", "events"))), where, durationPhrase(w), side)
	}
	return b.String()
}

// describe is the event's one-line description, with its node by name.
func describe(e *api.Event, names directory) string {
	if e.NodeID != "" && e.NodeName == "" {
		named := *e
		named.NodeName = names.nodeName(e.NodeID)
		e = &named
	}
	return events.Describe(e)
}
