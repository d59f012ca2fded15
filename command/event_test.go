package command

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// Three events as the server sends them: a spawn request, the start it caused, and a
// change of the cluster's health.
var (
	evRequested = api.Event{Seq: 11, Type: events.SpawnRequested, Timestamp: testNow.Add(-time.Minute),
		AgentID: "agent-001", NodeID: "n1", Port: 50100, StoragePath: "/var/lib/grid/nodes/n1", MemoryLimitMB: 512,
		Description: "Spawn of node n1 requested on agent-001, port 50100"}
	evStarted = api.Event{Seq: 12, Type: events.SpawnSucceeded, Timestamp: testNow.Add(-30 * time.Second),
		AgentID: "agent-001", NodeID: "n1", Port: 50100, PID: 4242, CausedBy: 11,
		Description: "Node n1 started on agent-001 (pid 4242)"}
	evDegraded = api.Event{Seq: 13, Type: events.ClusterDegraded, Timestamp: testNow,
		TotalAgents: 2, HealthyAgents: 1, DegradedAgents: 1, Reason: "agent agent-002 became degraded",
		Description: "Cluster is degraded: 1 of 2 agents healthy (agent agent-002 became degraded)"}
	// evRestored is an operator's restore of a snapshot saved an hour before.
	evRestored = api.Event{Seq: 14, Type: events.ClusterRestored, Timestamp: testNow,
		SnapshotIndex: 9, SnapshotTime: &restoredSnapshotTime,
		Description: "Cluster state restored from the snapshot at Raft index 9 (saved 2024-05-01T11:00:00Z); the history goes on"}
	restoredSnapshotTime = testNow.Add(-time.Hour)
)

// The three events as `grid event list` prints them.
const (
	lineRequested = "2024-05-01T11:59:00Z      11  spawn_requested     Spawn of node n1 requested on agent-001, port 50100"
	lineStarted   = "2024-05-01T11:59:30Z      12  spawn_succeeded     Node n1 started on agent-001 (pid 4242)"
	lineDegraded  = "2024-05-01T12:00:00Z      13  cluster_degraded    Cluster is degraded: 1 of 2 agents healthy (agent agent-002 became degraded)"
)

// The three events as the event commands print them with -json.
const (
	jsonRequested = `{"seq":11,"type":"spawn_requested","timestamp":"2024-05-01T11:59:00Z","agent_id":"agent-001",
		"node_id":"n1","caused_by":null,"description":"Spawn of node n1 requested on agent-001, port 50100",
		"port":50100,"storage_path":"/var/lib/grid/nodes/n1","memory_limit_mb":512}`
	jsonStarted = `{"seq":12,"type":"spawn_succeeded","timestamp":"2024-05-01T11:59:30Z","agent_id":"agent-001",
		"node_id":"n1","caused_by":11,"description":"Node n1 started on agent-001 (pid 4242)","port":50100,"pid":4242}`
	jsonDegraded = `{"seq":13,"type":"cluster_degraded","timestamp":"2024-05-01T12:00:00Z","agent_id":"","node_id":"",
		"caused_by":null,"description":"Cluster is degraded: 1 of 2 agents healthy (agent agent-002 became degraded)",
		"total_agents":2,"healthy_agents":1,"degraded_agents":1,"reason":"agent agent-002 became degraded"}`
)

func eventListJSON(t *testing.T, next string, evs ...api.Event) string {
	t.Helper()
	if evs == nil {
		evs = []api.Event{}
	}
	b, err := json.Marshal(api.EventList{Events: evs, NextPageToken: next})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEventList(t *testing.T) {
	const cmd = "event list"
	all := map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, "", evDegraded, evStarted, evRequested))}
	tests := []apiCase{
		{
			name:   "newest first, one line each",
			routes: all,
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/events?limit=100"),
					stdoutIs(lineDegraded + "\n" + lineStarted + "\n" + lineRequested)}
			},
		},
		{
			name:   "filters and order are sent",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, "", evRequested, evStarted))},
			args: []string{"-address=ADDR", "-agent=agent-001", "-node=n1,n2", "-type=spawn_requested,spawn_succeeded",
				"-since=1h", "-until=2024-05-01T12:00:00Z", "-limit=5", "-asc"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/events?agent=agent-001&limit=5&node=n1%2Cn2"+
					"&order=asc&since=1h&type=spawn_requested%2Cspawn_succeeded&until=2024-05-01T12%3A00%3A00Z"),
					stdoutIs(lineRequested + "\n" + lineStarted)}
			},
		},
		{
			name:   "entities are sent",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, "", evStarted, evRequested))},
			args:   []string{"-address=ADDR", "-entity=agent-001, n7", "-severity=error"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(lineStarted + "\n" + lineRequested),
					requestsAre(f, "GET /v1/events?entity=agent-001%2Cn7&limit=100&type=agent_offline%2Cspawn_failed%2Cnode_crashed%2Ccluster_critical")}
			},
		},
		{
			name:   "an entity never known",
			routes: map[string]http.HandlerFunc{"GET /v1/events": errorReply(http.StatusNotFound, "entity: no agent or node named agent-404")},
			args:   []string{"-address=ADDR", "-entity=agent-404"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("list events: entity: no agent or node named agent-404 (HTTP 404)")}
			},
		},
		{
			name: "entity with agent",
			args: []string{"-address=ADDR", "-entity=cluster", "-agent=agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-entity cannot be combined with -agent or -node"), requestsAre(f)}
			},
		},
		{
			name:   "json always has agent_id, node_id and caused_by",
			routes: all,
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs("[" + jsonDegraded + "," + jsonStarted + "," + jsonRequested + "]"),
					stdoutHas(`"seq": 13,`, `"agent_id": "",`, `"caused_by": null,`)}
			},
		},
		{
			name:   "no events",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, ""))},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), noStdout(), noStderr()} },
		},
		{
			name:   "no events, json is an empty list",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(`{"events":null,"next_page_token":""}`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutIs("[]")} },
		},
		{
			name: "a partial answer is listed with a warning",
			routes: map[string]http.HandlerFunc{"GET /v1/events": headerReply(api.PartialHeader,
				"event store unreachable: connection refused", eventListJSON(t, "", evDegraded))},
			args: []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs(lineDegraded),
					stderrIs("Warning: the answer may be incomplete: event store unreachable: connection refused")}
			},
		},
		{
			name:   "more events than the limit",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, "tok", evDegraded))},
			args:   []string{"-address=ADDR", "-limit=1"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs(lineDegraded), requestsAre(f, "GET /v1/events?limit=1"),
					stderrHas("More events match", "-limit")}
			},
		},
		{
			name:   "server error",
			routes: map[string]http.HandlerFunc{"GET /v1/events": errorReply(http.StatusBadRequest, `type: unknown event type "x"`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith(`list events: type: unknown event type "x" (HTTP 400)`)}
			},
		},
		{
			name: "unknown type",
			args: []string{"-address=ADDR", "-type=agent_exploded"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unknown event type "agent_exploded"`), requestsAre(f)}
			},
		},
		{
			name:   "minimum severity, with and without -type",
			routes: map[string]http.HandlerFunc{"GET /v1/events": rawReply(eventListJSON(t, "", evDegraded))},
			args:   []string{"-address=ADDR", "-severity=error", "-type=node_crashed,spawn_requested,agent_offline"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), requestsAre(f, "GET /v1/events?limit=100&type=node_crashed%2Cagent_offline")}
			},
		},
		{
			name: "no type of -type is that severe",
			args: []string{"-address=ADDR", "-severity=critical", "-type=spawn_requested"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "no event type of -type=spawn_requested is of severity critical or more"), requestsAre(f)}
			},
		},
		{
			name:   "unknown severity",
			args:   []string{"-address=ADDR", "-severity=loud"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `unknown severity "loud"`), requestsAre(f)} },
		},
		{
			name:   "bad since",
			args:   []string{"-address=ADDR", "-since=yesterday"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "-since", `"yesterday"`), requestsAre(f)} },
		},
		{
			name:   "bad until",
			args:   []string{"-address=ADDR", "-until=-1h"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "-until"), requestsAre(f)} },
		},
		{
			name: "limit too large",
			args: []string{"-address=ADDR", "-limit=10001"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-limit must be from 1 to 10000"), requestsAre(f)}
			},
		},
		{
			name:   "an argument",
			args:   []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `unexpected argument "agent-001"`)} },
		},
	}
	runAPICases(t, cmd, tests)
}

func TestEventListServerUnreachable(t *testing.T) {
	isolateEnv(t)
	r := runCommand(t, "event list", "-address="+deadAddress(t))
	failsWith("list events:", "connection refused")(t, r)
}

func TestEventShow(t *testing.T) {
	const cmd = "event show"
	detail := func(e api.Event, causes, effects []api.Event) string {
		b, err := json.Marshal(api.EventDetail{Event: e, Causes: causes, Effects: effects})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	started := map[string]http.HandlerFunc{"GET /v1/event/12": rawReply(detail(evStarted, []api.Event{evRequested}, []api.Event{}))}
	tests := []apiCase{
		{
			name:   "fields, causes and effects",
			routes: started,
			args:   []string{"-address=ADDR", "12"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/event/12"), stdoutIs(strings.Join([]string{
					"Seq         = 12",
					"Type        = spawn_succeeded",
					"Severity    = info",
					"Time        = 2024-05-01T11:59:30Z (30s ago)",
					"Description = Node n1 started on agent-001 (pid 4242)",
					"Agent       = agent-001",
					"Node        = n1",
					"Port        = 50100",
					"PID         = 4242",
					"Caused By   = 11",
					"",
					"Causes:",
					"  " + lineRequested,
					"",
					"Effects:",
					"  (none)",
				}, "\n"))}
			},
		},
		{
			name: "a cluster event with effects",
			routes: map[string]http.HandlerFunc{"GET /v1/event/13": rawReply(detail(evDegraded, nil,
				[]api.Event{evRequested, evStarted}))},
			args: []string{"-address=ADDR", "13"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(
					"Severity    = warning\n",
					"Agents      = 2 total: 1 healthy, 1 degraded, 0 offline\n",
					"Reason      = agent agent-002 became degraded\n",
					"Causes:\n  (none)\n",
					"Effects:\n  "+lineRequested+"\n  "+lineStarted+"\n",
				)}
			},
		},
		{
			name: "a spawn request shows its limits",
			routes: map[string]http.HandlerFunc{"GET /v1/event/11": rawReply(detail(func(e api.Event) api.Event {
				e.CPULimit = 0.25
				return e
			}(evRequested), nil, []api.Event{evStarted}))},
			args: []string{"-address=ADDR", "11"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(
					"Memory Limit = 512 MB\n",
					"CPU Limit    = 0.25 cores\n",
				)}
			},
		},
		{
			name:   "a spawn request without a CPU limit",
			routes: map[string]http.HandlerFunc{"GET /v1/event/11": rawReply(detail(evRequested, nil, nil))},
			args:   []string{"-address=ADDR", "11"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("Memory Limit = 512 MB\n"), stdoutLacks("CPU Limit")}
			},
		},
		{
			name:   "a restore",
			routes: map[string]http.HandlerFunc{"GET /v1/event/14": rawReply(detail(evRestored, nil, nil))},
			args:   []string{"-address=ADDR", "14"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(
					"Type           = cluster_restored\n",
					"Snapshot Index = 9\n",
					"Snapshot Saved = 2024-05-01T11:00:00Z (1h0m ago)\n",
				)}
			},
		},
		{
			name:   "json",
			routes: started,
			args:   []string{"-address=ADDR", "-json", "12"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(),
					jsonIs(`{"event":` + jsonStarted + `,"causes":[` + jsonRequested + `],"effects":[]}`)}
			},
		},
		{
			name: "partial",
			routes: map[string]http.HandlerFunc{"GET /v1/event/12": headerReply(api.PartialHeader, "event store unreachable: timeout",
				detail(evStarted, nil, nil))},
			args: []string{"-address=ADDR", "12"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("Seq         = 12\n"),
					stderrIs("Warning: the answer may be incomplete: event store unreachable: timeout")}
			},
		},
		{
			name:   "unknown event",
			routes: map[string]http.HandlerFunc{"GET /v1/event/99": errorReply(http.StatusNotFound, "event 99 not found")},
			args:   []string{"-address=ADDR", "99"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("event 99 not found")} },
		},
		{
			name:   "store down",
			routes: map[string]http.HandlerFunc{"GET /v1/event/5": errorReply(http.StatusServiceUnavailable, "event 5: event store unreachable: refused")},
			args:   []string{"-address=ADDR", "5"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("get event 5: event 5: event store unreachable: refused (HTTP 503)")}
			},
		},
		{
			name:   "no seq",
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "missing argument"), requestsAre(f)} },
		},
		{
			name:   "not a seq",
			args:   []string{"-address=ADDR", "abc"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `SEQ must be a positive integer, not "abc"`)} },
		},
		{
			name:   "seq zero",
			args:   []string{"-address=ADDR", "0"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "positive integer")} },
		},
		{
			name:   "two seqs",
			args:   []string{"-address=ADDR", "1", "2"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `unexpected argument "2"`)} },
		},
	}
	runAPICases(t, cmd, tests)
}

// sseEvent is e as a message of the event stream.
func sseEvent(t *testing.T, e api.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b)
}

func sseStart(seq uint64) string { return fmt.Sprintf("id: %d\n\n", seq) }

// runTail runs `grid event tail` until it has printed lines lines on stdout (or ends
// by itself), as a user who presses Ctrl-C then would.
func runTail(t *testing.T, lines int, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui := &stopAfterUi{MockUi: cli.NewMockUi(), n: lines, stop: cancel}
	cmd := &EventTailCommand{Meta: Meta{Ui: ui}, interrupt: func() (context.Context, context.CancelFunc) {
		return context.WithCancel(ctx)
	}}
	useTestClock(cmd)
	done := make(chan int, 1)
	go func() { done <- cmd.Run(args) }()
	select {
	case code := <-done:
		return result{code: code, stdout: ui.OutputWriter.String(), stderr: ui.ErrorWriter.String()}
	case <-time.After(30 * time.Second):
		t.Fatal("event tail did not end")
	}
	return result{}
}

func TestEventTail(t *testing.T) {
	const cmd = "event tail"
	e4 := api.Event{Seq: 4, Type: events.AgentRegistered, Timestamp: testNow, AgentID: "a3", Description: "Agent a3 registered from 127.0.0.1:8001"}
	e5 := api.Event{Seq: 5, Type: events.AgentOffline, Timestamp: testNow, AgentID: "a3", Description: "Agent a3 is offline: no heartbeat for 30s"}
	e7 := api.Event{Seq: 7, Type: events.ClusterHealthy, Timestamp: testNow, TotalAgents: 1, HealthyAgents: 1, Description: "Cluster is healthy: 1 of 1 agents healthy (x)"}
	line4 := "2024-05-01T12:00:00Z       4  agent_registered    Agent a3 registered from 127.0.0.1:8001"
	line5 := "2024-05-01T12:00:00Z       5  agent_offline       Agent a3 is offline: no heartbeat for 30s"
	line7 := "2024-05-01T12:00:00Z       7  cluster_healthy     Cluster is healthy: 1 of 1 agents healthy (x)"
	// The first connection delivers 4 and 5, says 6 is not there yet, and drops; the
	// second resumes after 5, reports 6 as skipped, delivers 7 and stays open.
	dropping := func() map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{"GET /v1/event/stream": sequence(
			sseReply(false, sseStart(3), sseEvent(t, e4), sseEvent(t, e5),
				"event: gap\ndata: {\"seq\":6,\"error\":\"event store unreachable: refused\",\"retrying\":true}\n\n"),
			sseReply(true, sseStart(5),
				"id: 6\nevent: gap\ndata: {\"seq\":6,\"error\":\"event 6 is no longer in the event store\",\"retrying\":false}\n\n",
				": keepalive\n\n", sseEvent(t, e7)),
		)}
	}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		lines  int
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "follows, reports gaps, reconnects after the last event",
			routes: dropping(),
			args:   []string{"-address=ADDR"},
			lines:  3,
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs(line4 + "\n" + line5 + "\n" + line7),
					requestsAre(f, "GET /v1/event/stream", "GET /v1/event/stream?since_seq=5"),
					stderrIs("Warning: event 6 is not available yet (event store unreachable: refused); the server retries\n" +
						"==> Lost the event stream (event stream ended); reconnecting in 1ms to resume after seq 5\n" +
						"Warning: event 6 is missing and was skipped: event 6 is no longer in the event store")}
			},
		},
		{
			name:   "json lines from a seq",
			routes: dropping(),
			args:   []string{"-address=ADDR", "-since-seq=3", "-json"},
			lines:  3,
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), requestsAre(f, "GET /v1/event/stream?since_seq=3", "GET /v1/event/stream?since_seq=5"),
					stdoutIs(`{"seq":4,"type":"agent_registered","timestamp":"2024-05-01T12:00:00Z","agent_id":"a3","node_id":"","caused_by":null,"description":"Agent a3 registered from 127.0.0.1:8001"}` + "\n" +
						`{"seq":5,"type":"agent_offline","timestamp":"2024-05-01T12:00:00Z","agent_id":"a3","node_id":"","caused_by":null,"description":"Agent a3 is offline: no heartbeat for 30s"}` + "\n" +
						`{"seq":7,"type":"cluster_healthy","timestamp":"2024-05-01T12:00:00Z","agent_id":"","node_id":"","caused_by":null,"description":"Cluster is healthy: 1 of 1 agents healthy (x)","total_agents":1,"healthy_agents":1}`)}
			},
		},
		{
			name:   "a quiet stream until interrupted",
			routes: map[string]http.HandlerFunc{"GET /v1/event/stream": sseReply(true, sseStart(9), sseEvent(t, e4))},
			args:   []string{"-address=ADDR", "-since-seq=0"},
			lines:  1,
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(line4), requestsAre(f, "GET /v1/event/stream?since_seq=0")}
			},
		},
		{
			name:   "refused by the server",
			routes: map[string]http.HandlerFunc{"GET /v1/event/stream": errorReply(http.StatusBadRequest, `since_seq must be an event seq`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("follow events: since_seq must be an event seq (HTTP 400)")}
			},
		},
		{
			name:   "bad since-seq",
			args:   []string{"-address=ADDR", "-since-seq=-1"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "-since-seq"), requestsAre(f)} },
		},
		{
			name:   "an argument",
			args:   []string{"-address=ADDR", "now"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `unexpected argument "now"`)} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFakeAPI(t, tt.routes)
			r := runTail(t, tt.lines, substAddr(tt.args, f)...)
			for _, c := range tt.checks(f) {
				c(t, r)
			}
		})
	}
}

func TestEventTailServerUnreachable(t *testing.T) {
	isolateEnv(t)
	r := runTail(t, 0, "-address="+deadAddress(t))
	failsWith("follow events:", "connection refused")(t, r)
}

func TestEventCommandsAreRegistered(t *testing.T) {
	r := runCLI(t, "event")
	exitCode(1)(t, r)
	for _, sub := range []string{"count", "list", "show", "tail"} {
		if !strings.Contains(r.stdout+r.stderr, "\n  "+sub+" ") {
			t.Errorf("grid event help does not list %q:\n%s", sub, r.stdout+r.stderr)
		}
		h := runCLI(t, "event", sub, "-help")
		if !strings.Contains(h.stdout+h.stderr, "Usage: grid event "+sub) {
			t.Errorf("grid event %s -help:\n%s", sub, h.stdout+h.stderr)
		}
	}
}

func TestEventCount(t *testing.T) {
	const cmd = "event count"
	byAgent := `{"groups":[{"values":{"agent":"agent-001"},"count":3},{"values":{"agent":""},"count":1}],"total":4,"truncated":false}`
	byHour := `{"groups":[{"values":{},"bucket":"2024-05-01T12:00:00Z","count":2},{"values":{},"bucket":"2024-05-01T13:00:00Z","count":0}],"total":2,"truncated":true}`
	tests := []apiCase{
		{
			name:   "a table by agent",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": rawReply(byAgent)},
			args:   []string{"-address=ADDR", "-by=agent", "-type=node_crashed", "-since=24h", "-top=2"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(),
					requestsAre(f, "GET /v1/events/aggregate?group_by=agent&since=24h&top=2&type=node_crashed"),
					stdoutIs("Agent      Count\nagent-001  3\n-          1")}
			},
		},
		{
			name:   "by hour, the empty hours included, more groups said on stderr",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": rawReply(byHour)},
			args:   []string{"-address=ADDR", "-bucket=1h", "-since=2h", "-severity=critical"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0),
					requestsAre(f, "GET /v1/events/aggregate?bucket=1h&since=2h&type=cluster_critical"),
					stdoutIs("Bucket                Count\n2024-05-01T12:00:00Z  2\n2024-05-01T13:00:00Z  0"),
					stderrHas("More groups exist")}
			},
		},
		{
			name:   "by entity",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": rawReply(`{"groups":[{"values":{},"count":2}],"total":2,"truncated":false}`)},
			args:   []string{"-address=ADDR", "-entity=cluster", "-since=24h"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("Count\n2"),
					requestsAre(f, "GET /v1/events/aggregate?entity=cluster&since=24h")}
			},
		},
		{
			name: "entity with node",
			args: []string{"-address=ADDR", "-entity=agent-001", "-node=n1"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-entity cannot be combined with -agent or -node"), requestsAre(f)}
			},
		},
		{
			name:   "one total",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": rawReply(`{"groups":[{"values":{},"count":7}],"total":7,"truncated":false}`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutIs("Count\n7")} },
		},
		{
			name:   "json is the API's answer",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": rawReply(byAgent)},
			args:   []string{"-address=ADDR", "-by=agent", "-json"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutHas(`"total": 4`, `"agent": "agent-001"`)} },
		},
		{
			name: "unknown grouping",
			args: []string{"-address=ADDR", "-by=colour"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `-by takes type, severity, agent and node, not "colour"`), requestsAre(f)}
			},
		},
		{
			name:   "unknown bucket",
			args:   []string{"-address=ADDR", "-bucket=2h"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, `-bucket must be one of`), requestsAre(f)} },
		},
		{
			name:   "server error",
			routes: map[string]http.HandlerFunc{"GET /v1/events/aggregate": errorReply(http.StatusBadRequest, "since and until span 43200 buckets")},
			args:   []string{"-address=ADDR", "-bucket=1m", "-since=720h"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("count events: since and until span 43200 buckets (HTTP 400)")}
			},
		},
	}
	runAPICases(t, cmd, tests)
}
