package eventquery

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

var now = time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestParseList(t *testing.T) {
	first := &ListQuery{Filter: Filter{Agents: []string{"a1"}}, Desc: true, Limit: 2}
	tok := Cursor{F: fingerprint(&first.Filter, true), T: 5, S: 7}.Token()
	for _, tc := range []struct {
		query string
		want  *ListQuery
		err   string // a part of the error; "" when the query is valid
	}{
		{"", &ListQuery{Desc: true, Limit: 100}, ""},
		{"agent=a1,a2&node=n1&type=agent_offline,cluster_healthy", &ListQuery{Filter: Filter{
			Agents: []string{"a1", "a2"}, Nodes: []string{"n1"}, Types: []events.Type{events.AgentOffline, events.ClusterHealthy},
		}, Desc: true, Limit: 100}, ""},
		{"agent=+a1+,,a2,", &ListQuery{Filter: Filter{Agents: []string{"a1", "a2"}}, Desc: true, Limit: 100}, ""},
		{"order=asc&limit=10000", &ListQuery{Limit: 10000}, ""},
		{"order=desc&limit=1", &ListQuery{Desc: true, Limit: 1}, ""},
		{"since=1h&until=2024-05-01T23:30:00.5Z", &ListQuery{Filter: Filter{
			Start: now.Add(-time.Hour), End: time.Date(2024, 5, 1, 23, 30, 0, 5e8, time.UTC),
		}, Desc: true, Limit: 100}, ""},
		{"agent=a1&limit=2&page_token=" + tok, &ListQuery{Filter: first.Filter, Desc: true, Limit: 2,
			After: &Cursor{V: 1, F: fingerprint(&first.Filter, true), T: 5, S: 7}}, ""},

		{"agents=a1", nil, `unknown query parameter "agents" (known: agent, node, type, since, until, limit, order, page_token)`},
		{"severity=error", nil, `unknown query parameter "severity"`},
		{"type=agent_exploded", nil, `type: unknown event type "agent_exploded"`},
		{"limit=0", nil, "limit must be a number from 1 to 10000"},
		{"limit=10001", nil, "limit must be a number from 1 to 10000"},
		{"limit=x", nil, "limit must be a number from 1 to 10000"},
		{"order=sideways", nil, `order must be asc or desc, not "sideways"`},
		{"since=yesterday", nil, "since must be an RFC 3339 time"},
		{"since=-1h", nil, "since must be an RFC 3339 time"},
		{"until=soon", nil, "until must be an RFC 3339 time"},
		{"since=2024-05-01T12:00:00Z&until=2024-05-01T12:00:00Z", nil, "must be before until"},
		{"since=1h&until=2h", nil, "must be before until"},
		{"page_token=garbage", nil, "page_token is malformed"},
		{"page_token=" + Cursor{V: 2}.Token()[:4], nil, "page_token is malformed"},
		{"page_token=" + tok, nil, "page_token belongs to a listing with other filters or another order"},
		{"agent=a1&order=asc&page_token=" + tok, nil, "page_token belongs to a listing"},
		{"agent=a2&page_token=" + tok, nil, "page_token belongs to a listing"},
	} {
		got, err := ParseList(mustQuery(t, tc.query), now)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.query, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestParseCount(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  *CountQuery
		err   string
	}{
		{"", &CountQuery{MaxGroups: 1000, Now: now}, ""},
		{"group_by=type,severity&bucket=1h&since=24h", &CountQuery{
			Filter: Filter{Start: now.Add(-24 * time.Hour)}, GroupBy: []Dimension{ByType, BySeverity}, Bucket: time.Hour, MaxGroups: 1000, Now: now,
		}, ""},
		{"group_by=agent&top=3", &CountQuery{GroupBy: []Dimension{ByAgent}, MaxGroups: 1000, Top: 3, Now: now}, ""},
		{"group_by=node,agent&severity=error,critical&agent=a1&max_groups=5&bucket=7d", &CountQuery{
			Filter:  Filter{Agents: []string{"a1"}, Severities: []events.Severity{events.SeverityError, events.SeverityCritical}},
			GroupBy: []Dimension{ByNode, ByAgent}, Bucket: 7 * 24 * time.Hour, MaxGroups: 5, Now: now,
		}, ""},

		{"limit=5", nil, `unknown query parameter "limit"`},
		{"group_by=colour", nil, `group_by: unknown dimension "colour"`},
		{"group_by=type,type", nil, `group_by: "type" is given twice`},
		{"bucket=2h", nil, "bucket must be one of"},
		{"severity=fatal", nil, `unknown severity "fatal"`},
		{"max_groups=0", nil, "max_groups must be a number from 1 to 100000"},
		{"max_groups=100001", nil, "max_groups must be a number from 1 to 100000"},
		{"type=nope", nil, "unknown event type"},
		{"since=2h&until=3h", nil, "must be before until"},
		{"top=0", nil, "top must be a number from 1"},
		{"bucket=1m&since=720h", nil, "at most 10000: use a larger bucket"},
	} {
		got, err := ParseCount(mustQuery(t, tc.query), now)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.query, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

// TestFingerprint: a page token fits the listing with the same filters, in any
// order of their values, and the same order; the time range does not matter.
func TestFingerprint(t *testing.T) {
	a := &Filter{Agents: []string{"a1", "a2"}, Types: []events.Type{events.AgentOffline, events.NodeCrashed}}
	for _, tc := range []struct {
		name string
		f    *Filter
		desc bool
		same bool
	}{
		{"values in another order", &Filter{Agents: []string{"a2", "a1"}, Types: []events.Type{events.NodeCrashed, events.AgentOffline}}, true, true},
		{"another time range", &Filter{Agents: a.Agents, Types: a.Types, Start: now}, true, true},
		{"another order", a, false, false},
		{"another agent", &Filter{Agents: []string{"a1"}, Types: a.Types}, true, false},
		{"a value moved to another list", &Filter{Agents: []string{"a1"}, Nodes: []string{"a2"}, Types: a.Types}, true, false},
		{"a severity", &Filter{Agents: a.Agents, Types: a.Types, Severities: []events.Severity{events.SeverityError}}, true, false},
	} {
		if got := fingerprint(tc.f, tc.desc) == fingerprint(a, true); got != tc.same {
			t.Errorf("%s: same fingerprint %v, want %v", tc.name, got, tc.same)
		}
	}
}
