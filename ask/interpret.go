package ask

import (
	"fmt"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// DefaultWindow is the range of history, list, count, rate and top questions that
// name no time: the last 24 hours, flagged with default_window so the answer says so.
const DefaultWindow = 24 * time.Hour

// DefaultAnchorWindow is how far cause, before and after look from their anchor
// unless the question says otherwise.
const DefaultAnchorWindow = 15 * time.Minute

// example is what a refusal offers instead, so that every dead end shows a way on.
const example = `try e.g. "which nodes crashed today?", "what happened to agent-001 this week?" or "how many spawns failed yesterday?"`

// Interpret maps a question in plain English to the interpretation of
// website/ask.md, resolving times against now (in UTC) and names against known.
// It is pure and deterministic: the same arguments always give the same result,
// and it never guesses: what it cannot map is unanswerable, with the reason.
func Interpret(question string, now time.Time, known Names) Interpretation {
	now = now.UTC()
	// Rule 1: refuse junk, what events do not hold, orders and unknown names, in
	// the contract's order, before anything else reads the question.
	if why := screen(question); why != "" {
		return refuse(IntentUnanswerable, why+"; "+example)
	}
	s := newSentence(question)
	if len(s.words) == 0 {
		return refuse(IntentUnanswerable, "the question has no words; "+example)
	}
	if why := offTopic(s); why != "" {
		return refuse(IntentUnanswerable, why)
	}
	if cmd, ok := order(s); ok {
		return refuse(IntentAction, "grid ask only reads what happened and changes nothing; to do this, run: "+cmd)
	}
	ents, unknown := resolveEntities(s, known.index())
	if len(unknown) > 0 {
		in := refuse(IntentUnknownEntity, noSuch(unknown))
		in.Entities = unknown
		return in
	}
	// The anchor window first: "in the 5 minutes before" is no time range.
	window, hasWindow := anchorWindow(s)
	when := parseTime(s, now)
	switch {
	case when.future:
		return refuse(IntentUnanswerable, "events record the past and cannot say what will happen; "+example)
	case when.bad != "":
		return refuse(IntentUnanswerable, "the time is unclear: "+when.bad+`; try e.g. "from March 1 to March 3" or "in the last 2 hours"`)
	}
	if ok, words := understood(s); !ok {
		return refuse(IntentUnanswerable, fmt.Sprintf("the question is mostly words I do not know (%s); only questions in English about the grid's events are understood; %s", strings.Join(first(words, 3), ", "), example))
	}
	if s.has("cluster") && !hasKind(ents, "cluster") {
		ents = append(ents, entity{name: "cluster", kind: "cluster"})
	}

	sub := subjectOf(s, ents)
	ts := readTypes(s, sub)
	if len(ents) == 0 && ts.types == nil && ts.severity == "" && !when.found && !when.present &&
		!s.has(eventWords...) && !s.has(agentNouns...) && !s.has(nodeNouns...) && !s.has(clusterNouns...) {
		// Nothing in the question is about the grid: answering it would be a guess.
		return refuse(IntentUnanswerable, "nothing in the question names an agent, a node, an event or a time; "+example)
	}
	in := Interpretation{
		Entities: names(ents),
		Types:    ts.sorted(),
		Severity: ts.severity,
		Order:    "desc",
		GroupBy:  []string{},
	}
	if ascending(s) {
		in.Order = "asc"
	}
	// Rules 2 to 6, then what each intent adds.
	in.Intent = decide(s, ents, ts, when)

	switch in.Intent {
	case IntentState:
		return stateOf(s, ents, sub)
	case IntentRate:
		num, den, why := rateTypes(s)
		if why != "" {
			return refuse(IntentUnanswerable, why)
		}
		in.Types, in.Severity = []events.Type{num, den}, ""
	case IntentTop:
		in.GroupBy = []string{groupOfTop(s)}
		in.Limit = topLimit(s)
	case IntentCount:
		in.GroupBy = groupOf(s)
		in.Bucket = bucketOf(s)
	case IntentCause, IntentBefore, IntentAfter:
		in.Window = formatWindow(DefaultAnchorWindow)
		if hasWindow {
			in.Window = formatWindow(window)
		}
	}
	switch in.Intent {
	case IntentBefore, IntentAfter, IntentCause, IntentChain, IntentLast:
		if in.Types == nil && in.Severity == "" && len(ents) == 0 {
			return refuse(IntentUnanswerable, fmt.Sprintf(`%s what? Name the event to start from, e.g. "what happened before node-2 crashed?"`, in.Intent))
		}
		// A time phrase only limits where the anchor is searched.
		in.Since, in.Until = when.since, when.until
	default:
		if when.found {
			in.Since, in.Until = when.since, when.until
		} else {
			since := now.Add(-DefaultWindow)
			in.Since, in.Until, in.DefaultWindow = &since, &now, true
		}
	}
	if !writable(in.Since) || !writable(in.Until) {
		// "the last 100000 years", or a now far in the future: RFC 3339 cannot say it.
		return refuse(IntentUnanswerable, `the time range reaches outside the years 0 to 9999; try e.g. "in the last 2 hours"`)
	}
	return in
}

// writable reports whether t can be written in RFC 3339, whose years have 4 digits.
func writable(t *time.Time) bool {
	return t == nil || (t.Year() >= 0 && t.Year() <= 9999)
}

// decide applies the contract's rules in its order; the first that fits wins.
// Refusals (rule 1) are already behind us.
func decide(s *sentence, ents []entity, ts typeSet, when span) Intent {
	trace := s.has("trace", "tracing")
	typed := ts.types != nil || ts.severity != ""
	switch {
	case s.hasPhrase("sequence of events", "chain of events", "event chain", "causal chain", "cause and effect", "causes and effects") ||
		s.has("chain", "causal") || (trace && (typed || s.has("event", "events"))):
		return IntentChain
	case s.has("why", "cause", "caused", "causes", "causing", "reason", "reasons") ||
		s.hasPhrase("led to", "lead to", "how come", "what made"):
		return IntentCause
	case s.has("before", "prior", "preceded", "preceding") || s.hasPhrase("leading up to", "leading to", "run-up to", "run up to"):
		return IntentBefore
	case s.has("after", "following", "followed", "afterwards"):
		return IntentAfter
	}
	if !s.has("first") && (s.hasPhrase("when did", "when was", "when were", "when has", "when have", "last time", "most recent", "how long ago") ||
		s.has("latest") || (lastAnchor(s) && !s.has("most", "top", "highest"))) {
		return IntentLast
	}
	if isState(s, ents, ts, when) {
		return IntentState
	}
	switch {
	case s.has("rate", "rates", "ratio", "percent", "percentage"):
		return IntentRate
	case s.has("top", "most", "highest", "worst", "biggest", "largest", "frequent"):
		return IntentTop
	case s.hasPhrase("how many", "number of", "how often") || s.has("count", "counts", "total", "totals", "tally"):
		return IntentCount
	}
	if len(ents) > 0 && !typed {
		return IntentHistory
	}
	return IntentList
}

// lastAnchor reports a "last" that asks for the latest event: "the last crash",
// not "the last 5 crashes", which lists them.
func lastAnchor(s *sentence) bool {
	for i := range s.words {
		if s.at(i) == "last" {
			if _, n := numberAt(s, i+1); n == 0 || s.at(i+1) == "a" || s.at(i+1) == "an" {
				return true
			}
		}
	}
	return false
}

// stateWords are the present-tense conditions a state question can ask about.
var stateWords = []string{
	"offline", "online", "down", "up", "dead", "alive", "healthy", "unhealthy", "degraded", "critical",
	"running", "stopped", "failed", "pending", "restarting", "stopping", "health", "status", "state",
}

// isState is rule 4: the present, about agents, nodes or the cluster themselves.
// Any sign of the past — a time phrase, an event word, a past verb, a word only
// events carry — makes it a question about history instead.
func isState(s *sentence, ents []entity, ts typeSet, when span) bool {
	if when.found || s.has(eventWords...) || s.has("went", "gone", "was", "were", "did", "had", "got", "became", "ago", "been") {
		return false
	}
	if s.has(crashWords...) || s.has(restartWords...) || s.has(troubleNouns...) || s.has(registerWords...) ||
		s.has(leftWords...) || s.has(beatWords...) || s.has(recoverWords...) || s.has(errorWords...) ||
		s.has(warningWords...) || s.has(requestWords...) || s.has("spawns", "spawned", "spawn", "stops", "stop", "started", "launched") {
		return false
	}
	noun := s.has(agentNouns...) || s.has(nodeNouns...) || s.has(clusterNouns...)
	cue := when.present || s.has("is", "are", "list", "show", "display", "status", "health", "state", "doing", "have", "has", "there") || s.has(stateWords...)
	return (noun || len(ents) > 0) && cue
}

// stateOf builds a state interpretation: entities is the scope, entities_kind
// what is listed, state the condition asked about.
func stateOf(s *sentence, ents []entity, sub subject) Interpretation {
	in := Interpretation{Intent: IntentState, Entities: []string{}, GroupBy: []string{}, Order: "desc"}
	// What is listed is the first kind of thing the question names as a noun.
	kind, at := "", len(s.words)
	for _, k := range []struct {
		kind  string
		words []string
	}{{"agent", agentNouns}, {"node", nodeNouns}, {"cluster", append([]string{"health"}, clusterNouns...)}} {
		if i := s.index(k.words...); i >= 0 && i < at {
			kind, at = k.kind, i
		}
	}
	for _, e := range ents {
		if e.kind == "cluster" {
			continue
		}
		if kind == "" {
			kind = e.kind
		}
		in.Entities = append(in.Entities, e.name)
	}
	if kind == "" {
		kind = "cluster"
	}
	in.EntitiesKind = kind
	in.State = stateWord(s, kind)
	return in
}

func stateWord(s *sentence, kind string) string {
	switch {
	case s.has("running", "up", "alive", "online"):
		if kind == "node" {
			return "running"
		}
		if s.has("running") {
			return "running"
		}
		return "healthy"
	case s.has("offline", "down", "dead", "unreachable"):
		if kind == "node" {
			return "failed"
		}
		return "offline"
	case s.has("degraded", "unhealthy"):
		return "degraded"
	case s.has("critical"):
		return "critical"
	case s.has("healthy"):
		return "healthy"
	case s.has("stopped"):
		return "stopped"
	case s.has("stopping"):
		return "stopping"
	case s.has("failed"):
		return "failed"
	case s.has("pending"):
		return "pending"
	case s.has("restarting"):
		return "restarting"
	}
	return ""
}

// rateTypes is [numerator, denominator] of a rate; the kind defaults to spawn.
func rateTypes(s *sentence) (num, den events.Type, why string) {
	req, ok, bad := events.SpawnRequested, events.SpawnSucceeded, events.SpawnFailed
	if s.has(stopWords...) && !s.has(spawnWords...) {
		req, ok, bad = events.StopRequested, events.StopSucceeded, events.StopFailed
	}
	switch {
	case s.has(successWords...):
		return ok, req, ""
	case s.has(failWords...) || s.has(errorWords...):
		return bad, req, ""
	}
	return "", "", `rates are of spawns or stops: ask for a "success rate" or a "failure rate", e.g. "what is the spawn failure rate today?"`
}

// groupKey maps a noun to the key that groups by it.
func groupKey(w string) string {
	switch w {
	case "agent", "agents", "host", "hosts":
		return "agent_id"
	case "node", "nodes", "instance", "instances":
		return "node_id"
	case "type", "types", "kind", "kinds", "category", "categories":
		return "type"
	}
	return ""
}

// groupOf reads "per agent", "by node", "for each type", "of each type".
func groupOf(s *sentence) []string {
	out := []string{}
	for i := range s.words {
		switch s.at(i) {
		case "per", "by", "each", "every":
			k := groupKey(s.at(i + 1))
			if k != "" && !contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// groupOfTop is what a top question ranks: the noun after "per" or "by", else
// after "which", "top" or "top N", else the first noun; "most common" alone ranks
// types.
func groupOfTop(s *sentence) string {
	if g := groupOf(s); len(g) > 0 {
		return g[0]
	}
	for i := range s.words {
		switch s.at(i) {
		case "which", "what", "top":
			k := i + 1
			if _, n := numberAt(s, k); n > 0 {
				k += n
			}
			if g := groupKey(s.at(k)); g != "" {
				return g
			}
		}
	}
	for i := range s.words {
		if g := groupKey(s.at(i)); g != "" {
			return g
		}
	}
	return "type"
}

// topLimit is N of "top N", else 1: "the most" and "the highest" ask for one.
func topLimit(s *sentence) int {
	if i := s.index("top"); i >= 0 {
		if n, k := numberAt(s, i+1); k > 0 && s.at(i+1) != "a" && s.at(i+1) != "an" {
			return n
		}
	}
	return 1
}

func bucketOf(s *sentence) string {
	for i := range s.words {
		w := s.at(i)
		switch w {
		case "hourly", "per-hour":
			return "1h"
		case "daily", "per-day":
			return "1d"
		case "per-minute":
			return "1m"
		case "per", "by", "each", "every", "a":
			switch units[s.at(i+1)] {
			case "minute":
				return "1m"
			case "hour":
				return "1h"
			case "day":
				return "1d"
			}
		}
	}
	return ""
}

// anchorWindow reads and consumes "in the 5 minutes before", "10 minutes after",
// "the hour before": the window of cause, before and after.
func anchorWindow(s *sentence) (time.Duration, bool) {
	for i := range s.words {
		if w := s.at(i); w != "before" && w != "after" && w != "prior" && w != "leading" {
			continue
		}
		u, ok := unitAt(s, i-1)
		if !ok {
			continue
		}
		n, start := 1, i-1
		if m, k := numberAt(s, i-2); k == 1 {
			n, start = m, i-2
		} else if s.at(i-2) != "the" && s.at(i-2) != "an" && s.at(i-2) != "a" {
			continue
		}
		d := back(time.Unix(0, 0).UTC(), -n, u).Sub(time.Unix(0, 0).UTC())
		if d <= 0 || d > 366*day {
			continue
		}
		for start > 0 && (s.at(start-1) == "the" || s.at(start-1) == "in" || s.at(start-1) == "within") {
			start--
		}
		s.take(start, i-start)
		return d, true
	}
	return 0, false
}

// formatWindow writes d as the contract shows it: 15m, 1h, 90s, not 15m0s.
func formatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func ascending(s *sentence) bool {
	return s.has("timeline", "replay", "chronological", "chronologically", "first") ||
		s.hasPhrase("in order", "oldest first", "earliest first", "oldest to newest", "in sequence")
}

func refuse(intent Intent, reason string) Interpretation {
	return Interpretation{Intent: intent, Entities: []string{}, GroupBy: []string{}, Reason: reason}
}

func noSuch(unknown []string) string {
	parts := make([]string, 0, len(unknown))
	for _, u := range unknown {
		kind := "node"
		if strings.HasPrefix(u, "agent-") {
			kind = "agent"
		}
		parts = append(parts, "no such "+kind+" "+u)
	}
	return strings.Join(parts, "; ") + `: the grid has never known it; "grid agent status" and "grid node status" list the ones it has`
}

func first(ws []string, n int) []string {
	if len(ws) > n {
		return ws[:n]
	}
	return ws
}

func contains(l []string, x string) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}
