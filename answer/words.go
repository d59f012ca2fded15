package answer

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sutragrid/grid/events"
)

// typeNouns name each event type as something that happened, singular and
// plural: "3 crashes", "1 spawn failure".
var typeNouns = map[events.Type][2]string{
	events.AgentRegistered:   {"agent registration", "agent registrations"},
	events.AgentHeartbeat:    {"heartbeat", "heartbeats"},
	events.AgentDegraded:     {"agent degradation", "agent degradations"},
	events.AgentOffline:      {"agent going offline", "agents going offline"},
	events.AgentRecovered:    {"agent recovery", "agent recoveries"},
	events.AgentUnregistered: {"agent unregistration", "agent unregistrations"},
	events.SpawnRequested:    {"spawn request", "spawn requests"},
	events.SpawnSucceeded:    {"node start", "node starts"},
	events.SpawnFailed:       {"spawn failure", "spawn failures"},
	events.StopRequested:     {"stop request", "stop requests"},
	events.StopSucceeded:     {"node stop", "node stops"},
	events.StopFailed:        {"stop failure", "stop failures"},
	events.NodeCrashed:       {"crash", "crashes"},
	events.NodeRestarted:     {"restart", "restarts"},
	events.ClusterHealthy:    {"return of the cluster to health", "returns of the cluster to health"},
	events.ClusterDegraded:   {"cluster degradation", "cluster degradations"},
	events.ClusterCritical:   {"time the cluster went critical", "times the cluster went critical"},
	events.ClusterRestored:   {"snapshot restore", "snapshot restores"},
}

// typeNoun names type t for a count of n.
func typeNoun(t events.Type, n int) string {
	if w, ok := typeNouns[t]; ok {
		return plural(n, w[0], w[1])
	}
	return plural(n, string(t)+" event", string(t)+" events")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countOf writes "3 crashes", "no crashes".
func countOf(n uint64, noun string) string {
	if n == 0 {
		return "no " + noun
	}
	return fmt.Sprintf("%d %s", n, noun)
}

// joinAnd writes "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func first[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// sentence makes s a sentence: a capital first letter and a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = capital(s)
	end := strings.TrimSuffix(s, `"`)
	if !strings.HasSuffix(end, ".") && !strings.HasSuffix(end, "?") && !strings.HasSuffix(end, "!") {
		s += "."
	}
	return s
}

// capital makes the first letter of s a capital.
func capital(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

func percent(v float64) string {
	p := v * 100
	if p == float64(int(p)) {
		return fmt.Sprintf("%d%%", int(p))
	}
	return fmt.Sprintf("%.1f%%", p)
}

// hoursPhrase writes a duration of whole hours or days: "24 hours", "7 days".
func hoursPhrase(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return fmt.Sprintf("%d hours", int(d.Hours()))
}

// durationPhrase writes a Go duration in words: "15 minutes", "1 hour 30 minutes".
func durationPhrase(d time.Duration) string {
	var parts []string
	for _, u := range []struct {
		d          time.Duration
		one, other string
	}{{time.Hour, "hour", "hours"}, {time.Minute, "minute", "minutes"}, {time.Second, "second", "seconds"}} {
		if n := int(d / u.d); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, plural(n, u.one, u.other)))
			d -= time.Duration(n) * u.d
		}
	}
	if len(parts) == 0 {
		return d.String()
	}
	return strings.Join(parts, " ")
}

func bucketWord(b string) string {
	switch b {
	case "1m":
		return "minute"
	case "1h":
		return "hour"
	case "1d":
		return "day"
	}
	return b
}

// bucketTime names a bucket by its start: "Mon 2 Mar" for days, the time within.
func bucketTime(t time.Time, b string) string {
	if b == "1d" {
		return t.UTC().Format("Mon 2 Jan")
	}
	return t.UTC().Format("Mon 2 Jan 15:04 UTC")
}

// at writes the moment t: "Thu 5 Mar 09:02:11 UTC", with the year when it is not
// now's.
func at(t, now time.Time) string {
	t = t.UTC()
	if t.Year() != now.Year() {
		return t.Format("Mon 2 Jan 2006 15:04:05 UTC")
	}
	return t.Format("Mon 2 Jan 15:04:05 UTC")
}

// ago writes how long before now t was: "16 minutes ago", "3 days ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		n := int(d / time.Minute)
		return fmt.Sprintf("%d %s ago", n, plural(n, "minute", "minutes"))
	case d < 48*time.Hour:
		n := int(d / time.Hour)
		return fmt.Sprintf("%d %s ago", n, plural(n, "hour", "hours"))
	}
	n := int(d / (24 * time.Hour))
	return fmt.Sprintf("%d days ago", n)
}

// rangePhrase names the interpretation's range: "since Mon 2 Mar 00:00 UTC",
// "on Sun 1 Mar", "between Wed 4 Mar 10:00 and 12:00 UTC", "in all the history".
func (r *run) rangePhrase() string {
	return rangePhrase(r.in.Since, r.in.Until, r.now)
}

func rangePhrase(since, until *time.Time, now time.Time) string {
	day := func(t time.Time) string {
		if t.Year() != now.Year() {
			return t.Format("Mon 2 Jan 2006")
		}
		return t.Format("Mon 2 Jan")
	}
	clock := func(t time.Time) string { return day(t) + " " + t.Format("15:04") }
	midnight := func(t time.Time) bool { return t.Equal(t.Truncate(24 * time.Hour)) }
	switch {
	case since == nil && until == nil:
		return "in all the history"
	case since == nil:
		return "before " + clock(until.UTC()) + " UTC"
	}
	s := since.UTC()
	today := now.UTC().Truncate(24 * time.Hour)
	switch {
	case s.Equal(today) && (until == nil || until.Equal(now)):
		return "today"
	case s.Equal(today.Add(-24*time.Hour)) && until != nil && until.Equal(today):
		return "yesterday"
	}
	if until == nil || until.Equal(now) {
		if midnight(s) {
			return "since " + day(s)
		}
		return "since " + clock(s) + " UTC"
	}
	u := until.UTC()
	switch {
	case midnight(s) && midnight(u) && u.Sub(s) == 24*time.Hour:
		return "on " + day(s)
	case midnight(s) && midnight(u):
		return "from " + day(s) + " to " + day(u.Add(-time.Nanosecond))
	case s.Truncate(24 * time.Hour).Equal(u.Truncate(24 * time.Hour)):
		return "between " + clock(s) + " and " + u.Format("15:04") + " UTC"
	}
	return "between " + clock(s) + " and " + clock(u) + " UTC"
}
