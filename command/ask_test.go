package command

import (
	"io"
	"net/http"
	"testing"
)

// askReply answers POST /v1/ask with body and keeps the request body in *got.
func askReply(body string, got *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = string(b)
		rawReply(body)(w, r)
	}
}

// bodyIs expects the request body the fake API got.
func bodyIs(got *string, want string) check {
	return func(t *testing.T, _ result) {
		t.Helper()
		if *got != want {
			t.Errorf("request body %s, want %s", *got, want)
		}
	}
}

func TestAsk(t *testing.T) {
	const cmd = "ask"
	const (
		chain = `{"question":"why did web-1 restart","now":"2026-03-05T09:15:00Z",
			"interpretation":{"intent":"cause","entities":["web-1"],"types":["node_restarted"],"group_by":[],"window":"15m","order":"desc"},
			"queries":["GET /v1/events?entity=web-1&limit=1&type=node_restarted","GET /v1/event/9"],
			"answer":{"kind":"chain","window":"15m",
				"anchor":{"seq":9,"type":"node_restarted","timestamp":"2026-03-05T09:00:02Z","description":"Node web-1 restarted"},
				"causes":[{"seq":8,"type":"node_crashed","timestamp":"2026-03-05T09:00:00Z","description":"Node web-1 crashed"}],
				"events":[{"seq":8,"type":"node_crashed","timestamp":"2026-03-05T09:00:00Z","description":"Node web-1 crashed"}]},
			"summary":"Node web-1 restarted. Caused by: Node web-1 crashed."}`
		series = `{"question":"q","now":"2026-03-05T09:15:00Z","interpretation":{"intent":"count","entities":[],"group_by":[],"bucket":"1d"},
			"queries":["GET /v1/events/aggregate?bucket=1d"],
			"answer":{"kind":"series","bucket":"1d","total":6,"groups":[
				{"values":{},"bucket":"2026-03-03T00:00:00Z","count":4},{"values":{},"bucket":"2026-03-04T00:00:00Z","count":0},
				{"values":{},"bucket":"2026-03-05T00:00:00Z","count":2}]},
			"summary":"6 events since Tue 3 Mar, per day."}`
		agents = `{"question":"q","now":"2026-03-05T09:15:00Z","interpretation":{"intent":"state","entities":[],"entities_kind":"agent","state":"offline","group_by":[]},
			"queries":["GET /v1/agents"],
			"answer":{"kind":"state","agents":[{"name":"agent-003","status":"offline","address":"10.0.0.3:8001","nodes":0,"max_nodes":10,"last_heartbeat":"2026-03-05T09:14:00Z"}]},
			"summary":"1 of 3 agents is offline: agent-003."}`
		none = `{"question":"q","now":"2026-03-05T09:15:00Z","interpretation":{"intent":"unanswerable","entities":[],"group_by":[],"reason":"events are not metrics"},
			"queries":[],"answer":{"kind":"none","reason":"events are not metrics"},"summary":"Events are not metrics."}`
	)
	var body string
	tests := []apiCase{
		{
			name:   "a chain as a tree, then its context and what was run",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": askReply(chain, &body)},
			args:   []string{"-address=ADDR", "-now=2026-03-05T09:15:00Z", "why", "did", "web-1", "restart"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(),
					bodyIs(&body, `{"question":"why did web-1 restart","now":"2026-03-05T09:15:00Z"}`),
					stdoutIs(`Node web-1 restarted. Caused by: Node web-1 crashed.

  2026-03-05T09:00:00Z       8  node_crashed        Node web-1 crashed
> └─ 2026-03-05T09:00:02Z       9  node_restarted      Node web-1 restarted

Events in the 15m before it, on its agent and the cluster:
  2026-03-05T09:00:00Z       8  node_crashed        Node web-1 crashed

Interpreted as: intent=cause entities=web-1 types=node_restarted window=15m
  GET /v1/events?entity=web-1&limit=1&type=node_restarted
  GET /v1/event/9`)}
			},
		},
		{
			name:   "a series as a bar chart, the empty day included",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": askReply(series, &body)},
			args:   []string{"-address=ADDR", "how many events per day since March 3"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs(`6 events since Tue 3 Mar, per day.

2026-03-03  4  ████████████████████████████████████████
2026-03-04  0
2026-03-05  2  ████████████████████

Interpreted as: intent=count bucket=1d
  GET /v1/events/aggregate?bucket=1d`)}
			},
		},
		{
			name:   "the present state as a table",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": askReply(agents, &body)},
			args:   []string{"-address=ADDR", "-now=2026-03-05T09:15:00Z", "which agents are offline"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("1 of 3 agents is offline: agent-003.",
					"Name       Status   Address        Nodes  Last Heartbeat\nagent-003  offline  10.0.0.3:8001  0/10   1m0s ago\n",
					"Interpreted as: intent=state kind=agent state=offline\n  GET /v1/agents")}
			},
		},
		{
			name:   "an unanswerable question exits 0",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": askReply(none, &body)},
			args:   []string{"-address=ADDR", "what is the CPU of node-2"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("Events are not metrics.\n\nInterpreted as: intent=unanswerable")}
			},
		},
		{
			name:   "json is the API's answer",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": askReply(none, &body)},
			args:   []string{"-address=ADDR", "-json", "what is the CPU of node-2"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(`"intent": "unanswerable"`, `"kind": "none"`, `"queries": []`)}
			},
		},
		{
			name:   "a server error exits 1",
			routes: map[string]http.HandlerFunc{"POST /v1/ask": errorReply(http.StatusServiceUnavailable, "no leader")},
			args:   []string{"-address=ADDR", "what happened today"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("ask: no leader")} },
		},
		{
			name:   "no question",
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "no question"), requestsAre(f)} },
		},
		{
			name: "a bad -now",
			args: []string{"-address=ADDR", "-now=yesterday", "what happened"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-now must be an RFC 3339 time"), requestsAre(f)}
			},
		},
	}
	runAPICases(t, cmd, tests)
}

func TestAskServerUnreachable(t *testing.T) {
	isolateEnv(t)
	r := runCommand(t, "ask", "-address="+deadAddress(t), "what happened today")
	failsWith("ask:")(t, r)
}
