package ask

import (
	"slices"
	"strings"

	"github.com/sutragrid/grid/events"
)

// failures are the events of severity warning or worse, in events.Types order:
// what "failures", "problems" and "anything wrong" mean.
var failures = func() []events.Type {
	var out []events.Type
	for _, t := range events.Types {
		if t.Severity() != events.SeverityInfo {
			out = append(out, t)
		}
	}
	return out
}()

// Word lists. Each is small on purpose: a word that is not here is not understood,
// and the understood check below turns a question made mostly of such words into
// unanswerable instead of a guess.
var (
	crashWords    = []string{"crash", "crashes", "crashed", "crashing", "crash-looping", "crashloop", "segfault", "segfaulted"}
	restartWords  = []string{"restart", "restarts", "restarted", "restarting"}
	offlineWords  = []string{"offline", "down", "died", "dead", "disconnected", "unreachable", "lost"}
	degradedWords = []string{"degraded", "degrade", "degrading", "unhealthy"}
	recoverWords  = []string{"recovered", "recover", "recovers", "recovery", "recoveries", "recovering"}
	registerWords = []string{"registered", "register", "registers", "registration", "registrations", "joined", "join", "joins"}
	leftWords     = []string{"unregistered", "unregister", "unregistration", "unregistrations", "deregistered", "left", "leave", "leaves", "removed"}
	beatWords     = []string{"heartbeat", "heartbeats"}
	restoreWords  = []string{"restore", "restores", "restored", "restoring", "snapshot", "snapshots"}
	spawnWords    = []string{"spawn", "spawns", "spawned", "spawning", "start", "starts", "started", "starting", "launch", "launches", "launched"}
	stopWords     = []string{"stop", "stops", "stopped", "stopping"}
	failWords     = []string{"fail", "fails", "failed", "failing", "failure", "failures", "problem", "problems", "issue", "issues", "wrong", "trouble", "incident", "incidents", "outage", "outages", "bad"}
	// troubleNouns are the failure words that name events, not a condition: "which
	// nodes are failed" asks for a state, "which nodes had failures" for history.
	troubleNouns = []string{"failure", "failures", "problem", "problems", "issue", "issues", "wrong", "trouble", "incident", "incidents", "outage", "outages"}
	successWords = []string{"success", "successes", "succeeded", "successful", "succeed", "succeeds"}
	requestWords = []string{"request", "requests", "requested"}
	errorWords   = []string{"error", "errors", "erroring"}
	warningWords = []string{"warning", "warnings", "warn"}
	eventWords   = []string{"event", "events", "history", "happened", "happen", "happening", "anything", "activity", "timeline", "lifecycle", "changes", "changed", "occurred", "log"}
	agentNouns   = []string{"agent", "agents", "host", "hosts"}
	nodeNouns    = []string{"node", "nodes", "instance", "instances"}
	clusterNouns = []string{"cluster", "grid", "fleet"}
)

// typeSet is what a question's type and severity words mean.
type typeSet struct {
	types    []events.Type
	severity string
}

func (t *typeSet) add(ts ...events.Type) {
	for _, x := range ts {
		if !slices.Contains(t.types, x) {
			t.types = append(t.types, x)
		}
	}
}

// sorted returns the types in events.Types order, or nil for none (all types).
func (t *typeSet) sorted() []events.Type {
	if len(t.types) == 0 {
		return nil
	}
	var out []events.Type
	for _, x := range events.Types {
		if slices.Contains(t.types, x) {
			out = append(out, x)
		}
	}
	return out
}

// subject is what a question is about, which decides what "offline" or "degraded"
// mean: an agent goes offline, a node crashes.
type subject struct{ agent, node, cluster bool }

func subjectOf(s *sentence, es []entity) subject {
	return subject{
		agent:   hasKind(es, "agent") || s.has(agentNouns...),
		node:    hasKind(es, "node") || s.has(nodeNouns...),
		cluster: hasKind(es, "cluster") || s.has("cluster"),
	}
}

// readTypes maps the type and severity words of s, which it does not consume:
// the intent rules still need to see them.
func readTypes(s *sentence, sub subject) typeSet {
	var t typeSet
	spawn, stop := s.has(spawnWords...), s.has(stopWords...)
	fail := s.has(failWords...) || s.hasPhrase("went wrong", "go wrong")

	if s.has(crashWords...) {
		t.add(events.NodeCrashed)
	}
	if s.has(restartWords...) {
		t.add(events.NodeRestarted)
	}
	if s.has(offlineWords...) {
		switch {
		case sub.node && !sub.agent:
			t.add(events.NodeCrashed)
		case sub.agent || s.has("offline"):
			t.add(events.AgentOffline)
		default:
			t.add(events.AgentOffline, events.NodeCrashed)
		}
	}
	if s.has(degradedWords...) {
		if sub.agent || !sub.cluster {
			t.add(events.AgentDegraded)
		}
		if sub.cluster || !sub.agent {
			t.add(events.ClusterDegraded)
		}
	}
	if s.has("critical") {
		if sub.cluster {
			t.add(events.ClusterCritical)
		} else {
			t.severity = string(events.SeverityCritical)
		}
	}
	if s.has(recoverWords...) || s.hasPhrase("back online", "came back") {
		t.add(events.AgentRecovered)
	}
	if s.has("healthy", "healthy_again") && sub.cluster {
		t.add(events.ClusterHealthy)
	}
	if s.has(registerWords...) || s.hasPhrase("new agents", "new agent") {
		t.add(events.AgentRegistered)
	}
	if s.has(leftWords...) {
		t.add(events.AgentUnregistered)
	}
	if s.has(beatWords...) {
		t.add(events.AgentHeartbeat)
	}
	if s.has(restoreWords...) {
		t.add(events.ClusterRestored)
	}

	// Spawn and stop words take their meaning from the words around them.
	kinds := []struct {
		on                         bool
		requested, succeeded, bad  events.Type
		phraseEvents, phraseEvent1 string
	}{
		{spawn, events.SpawnRequested, events.SpawnSucceeded, events.SpawnFailed, "spawn events", "spawn event"},
		{stop, events.StopRequested, events.StopSucceeded, events.StopFailed, "stop events", "stop event"},
	}
	for _, k := range kinds {
		switch {
		case !k.on:
		case s.hasPhrase(k.phraseEvents, k.phraseEvent1):
			t.add(k.requested, k.succeeded, k.bad)
		case fail:
			t.add(k.bad)
		case s.has(requestWords...):
			t.add(k.requested)
		default:
			t.add(k.succeeded)
		}
	}
	if fail && !spawn && !stop {
		switch {
		case s.hasPhrase("node failures", "node failure", "node problems", "node issues"):
			t.add(events.NodeCrashed)
		case s.hasPhrase("agent failures", "agent failure", "agent problems", "agent issues"):
			t.add(events.AgentDegraded, events.AgentOffline)
		case s.hasPhrase("cluster failures", "cluster problems", "cluster issues"):
			t.add(events.ClusterDegraded, events.ClusterCritical)
		default:
			t.add(failures...)
		}
	}
	if s.has(errorWords...) {
		t.severity = string(events.SeverityError)
	}
	if s.has(warningWords...) {
		t.severity = string(events.SeverityWarning)
	}
	return t
}

// known is every word the rules read, plus the small words of English questions.
// Words outside it are counted by understood.
var known = func() map[string]bool {
	m := map[string]bool{}
	lists := [][]string{
		crashWords, restartWords, offlineWords, degradedWords, recoverWords, registerWords,
		leftWords, beatWords, restoreWords, spawnWords, stopWords, failWords, successWords, requestWords,
		errorWords, warningWords, eventWords, agentNouns, nodeNouns, clusterNouns,
		strings.Fields(smallWords), strings.Fields(intentWords),
	}
	for _, l := range lists {
		for _, w := range l {
			m[w] = true
		}
	}
	for w := range units {
		m[w] = true
	}
	for w := range numberWords {
		m[w] = true
	}
	for w := range months {
		m[w] = true
	}
	for w := range weekdays {
		m[w] = true
	}
	return m
}()

const smallWords = `the a an of to in on at for from by with about and or but is are was were be been
being has have had do does did done will would can could should shall may might must it its this that these
those there here what whats which who whom whose where when how why me my i we our us you your they them their
any all some each every no not none only just also still ever than then so very more most less least many much
same other another such as if into onto over under up out off again now right please tell show give list get
let see find display print did went go goes going gone got get gets become became becomes come came
since until till between during within before after ago today yesterday tonight morning afternoon evening night
weekend week month year hour minute day time times last past previous next first latest recent recently
lately oldest newest earliest order ordered chronological chronologically sequence replay trace tracing
happens something things thing hit had been kind kinds type types categories category sort sorts
noon midnight midday am pm a.m p.m couple few one two three four five six seven eight nine ten lot
currently present moment healthy health status state states running online alive up pending failed
stopping critical doing totally overall summary summarize report recap`

const intentWords = `count counts counted number numbers total totals tally rate rates ratio percent
percentage often frequently frequency top highest most common frequent worst biggest largest best per
each cause caused causes causing reason reasons led lead leading prior preceded preceding following followed
afterwards chain causal effect effects root why`

// understood reports whether most of the unused words of s are words the rules
// know. A question mostly made of other words — another language, a topic events
// do not cover — is refused rather than guessed at from the few words that match.
func understood(s *sentence) (bool, []string) {
	var unknown []string
	total := 0
	for i, w := range s.words {
		if s.used[i] || isNumeric(w) {
			continue
		}
		total++
		if !known[w] {
			unknown = append(unknown, w)
		}
	}
	return 2*len(unknown) <= total, unknown
}

func isNumeric(w string) bool {
	if w == "" {
		return false
	}
	if _, ok := dayOfMonth(w); ok {
		return true
	}
	for _, r := range w {
		if (r < '0' || r > '9') && r != ':' && r != '-' {
			return false
		}
	}
	return true
}
