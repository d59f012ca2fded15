package answer

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
)

func TestRun(t *testing.T) {
	tests := []struct {
		question string
		intent   ask.Intent
		kind     api.AnswerKind
		// summary holds fragments the summary must contain, in order.
		summary []string
		// check looks at the answer itself.
		check func(t *testing.T, a *api.Answer)
		// queries is the number of API requests the answer ran.
		queries int
	}{
		{
			question: "what happened on agent-001 today", intent: ask.IntentHistory, kind: api.AnswerEvents, queries: 2,
			summary: []string{"4 events for agent-001 today: 1 crash, 1 restart, 1 spawn failure and 1 spawn request."},
			check: func(t *testing.T, a *api.Answer) {
				// The agent's nodes' events are its own; newest first.
				want(t, "events", seqs(a.Events), "19,18,17,16")
				want(t, "total", *a.Total, uint64(4))
			},
		},
		{
			question: "agent-001 timeline", intent: ask.IntentHistory, kind: api.AnswerEvents, queries: 2,
			summary: []string{"4 events for agent-001 since Wed 4 Mar 09:15 UTC", "No time was given, so this covers the last 24 hours."},
			check: func(t *testing.T, a *api.Answer) {
				want(t, "events", seqs(a.Events), "16,17,18,19")
			},
		},
		{
			question: "what happened to node-2 this week", intent: ask.IntentHistory, kind: api.AnswerEvents, queries: 2,
			check: func(t *testing.T, a *api.Answer) { want(t, "events", seqs(a.Events), "19,18,8,7") },
		},
		{
			question: "what happened on agent-009 last week", intent: ask.IntentHistory, kind: api.AnswerEvents, queries: 2,
			summary: []string{"1 event for agent-009 from Mon 23 Feb to Sun 1 Mar."},
			check:   func(t *testing.T, a *api.Answer) { want(t, "events", seqs(a.Events), "1") },
		},
		{
			question: "show failures today", intent: ask.IntentList, kind: api.AnswerEvents, queries: 2,
			summary: []string{"5 failures today: 1 agent degradation, 1 agent going offline, 1 cluster degradation, 1 crash and 1 spawn failure."},
			check:   func(t *testing.T, a *api.Answer) { want(t, "events", seqs(a.Events), "18,17,15,14,13") },
		},
		{
			question: "what happened on agent-001 and the cluster today", intent: ask.IntentHistory, kind: api.AnswerEvents, queries: 4,
			check: func(t *testing.T, a *api.Answer) { want(t, "events", seqs(a.Events), "19,18,17,16,15") },
		},
		{
			question: "how many crashes per agent today", intent: ask.IntentCount, kind: api.AnswerGroups, queries: 1,
			summary: []string{"1 crash today: agent-001 1."},
			check: func(t *testing.T, a *api.Answer) {
				want(t, "groups", a.Groups, []api.EventGroup{{Values: map[string]string{"agent": "agent-001"}, Count: 1}})
			},
		},
		{
			question: "how many events of each type happened yesterday", intent: ask.IntentCount, kind: api.AnswerGroups, queries: 1,
			summary: []string{"10 events yesterday: agent registrations 3, spawn requests 2, node starts 2, returns of the cluster to health 1, stop requests 1, and 1 more."},
		},
		{
			question: "how many spawn failures this week", intent: ask.IntentCount, kind: api.AnswerCount, queries: 1,
			summary: []string{"1 spawn failure since Mon 2 Mar."},
		},
		{
			question: "number of spawn requests per day since March 3", intent: ask.IntentCount, kind: api.AnswerSeries, queries: 1,
			summary: []string{"3 spawn requests since Tue 3 Mar, per day; the busiest day was Wed 4 Mar with 2."},
		},
		{
			question: "which node has the most restarts this week", intent: ask.IntentTop, kind: api.AnswerGroups, queries: 1,
			summary: []string{"node-2 had the most restarts since Mon 2 Mar: 1."},
			check: func(t *testing.T, a *api.Answer) {
				want(t, "node name", a.Groups[0].Values["node_name"], "node-2")
			},
		},
		{
			question: "spawn failure rate for agent-001 this week", intent: ask.IntentRate, kind: api.AnswerRate, queries: 2,
			summary: []string{"The spawn failure rate for agent-001 since Mon 2 Mar is 50%: 1 of 2 spawn requests."},
		},
		{
			question: "spawn success rate on agent-003", intent: ask.IntentRate, kind: api.AnswerRate, queries: 2,
			summary: []string{"No spawn requests", "so there is no spawn success rate"},
			check:   func(t *testing.T, a *api.Answer) { want(t, "value", a.Rate.Value, (*float64)(nil)) },
		},
		{
			question: "why did node-2 restart?", intent: ask.IntentCause, kind: api.AnswerChain, queries: 4,
			summary: []string{"Thu 5 Mar 09:00:02 UTC: Node node-2 (n-2) on agent-001 restarted",
				"This is the latest restart of node-2 in the retained history.",
				"Caused by: Node node-2 (n-2) on agent-001 crashed",
				"1 event on agent-001 and the cluster in the 15 minutes before it."},
			check: func(t *testing.T, a *api.Answer) {
				want(t, "anchor", a.Anchor.Seq, uint64(19))
				want(t, "causes", seqs(a.Causes), "18")
				// The context: agent-001's and the cluster's events of the 15 minutes
				// before, oldest first; agent-003's are not in it.
				want(t, "context", seqs(a.Events), "18")
			},
		},
		{
			question: "why did agent-003 go offline", intent: ask.IntentCause, kind: api.AnswerChain, queries: 4,
			summary: []string{"Caused by: Agent agent-003 is degraded"},
			check: func(t *testing.T, a *api.Answer) {
				want(t, "anchor", a.Anchor.Seq, uint64(14))
				want(t, "causes", seqs(a.Causes), "13")
				want(t, "context", seqs(a.Events), "13")
			},
		},
		{
			question: "what happened in the 40 minutes before node-2 crashed", intent: ask.IntentBefore, kind: api.AnswerChain, queries: 4,
			check: func(t *testing.T, a *api.Answer) {
				want(t, "anchor", a.Anchor.Seq, uint64(18))
				want(t, "context", seqs(a.Events), "16,17")
			},
		},
		{
			question: "what happened right after agent-003 went offline", intent: ask.IntentAfter, kind: api.AnswerChain, queries: 4,
			check: func(t *testing.T, a *api.Answer) { want(t, "context", seqs(a.Events), "15") },
		},
		{
			question: "trace the event chain of the last node crash", intent: ask.IntentChain, kind: api.AnswerChain, queries: 3,
			summary: []string{"It has no recorded cause.", "It led to 1 event."},
			check:   func(t *testing.T, a *api.Answer) { want(t, "effects", seqs(a.Effects), "19") },
		},
		{
			question: "why did db-1 crash", intent: ask.IntentCause, kind: api.AnswerNone, queries: 1,
			summary: []string{"No crash of db-1 in the retained history."},
		},
		{
			question: "when was the last spawn failure?", intent: ask.IntentLast, kind: api.AnswerEvent, queries: 1,
			summary: []string{"The last spawn failure was Thu 5 Mar 08:30:01 UTC (44 minutes ago): Node db-1 (n-7) failed to start on agent-001"},
		},
		{
			question: "which agents are offline", intent: ask.IntentState, kind: api.AnswerState, queries: 1,
			summary: []string{"1 of 3 agents is offline: agent-003."},
			check:   func(t *testing.T, a *api.Answer) { want(t, "agents", len(a.Agents), 1) },
		},
		{
			question: "which agents are degraded", intent: ask.IntentState, kind: api.AnswerState, queries: 1,
			summary: []string{"No agent is degraded (3 agents: 2 healthy, 1 offline)."},
			check:   func(t *testing.T, a *api.Answer) { want(t, "agents", a.Agents, []api.Agent{}) },
		},
		{
			question: "list all agents", intent: ask.IntentState, kind: api.AnswerState, queries: 1,
			summary: []string{"3 agents: 2 healthy, 1 offline."},
		},
		{
			question: "which nodes are running on agent-001 right now?", intent: ask.IntentState, kind: api.AnswerState, queries: 1,
			summary: []string{"1 of 2 nodes on agent-001 is running: node-2."},
		},
		{
			question: "is the cluster healthy", intent: ask.IntentState, kind: api.AnswerState, queries: 1,
			summary: []string{"No. The cluster is degraded: 2 of 3 agents healthy, 1 of 3 nodes running; 3 servers, led by server-1."},
		},
		{
			question: "what happened on agent-042?", intent: ask.IntentUnknownEntity, kind: api.AnswerNone,
			summary: []string{"No such agent agent-042"},
		},
		{
			question: "what is the CPU usage of node-2", intent: ask.IntentUnanswerable, kind: api.AnswerNone,
		},
		{
			question: "stop node-2", intent: ask.IntentAction, kind: api.AnswerNone, summary: []string{"grid node stop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.question, func(t *testing.T) {
			h, now := fleet()
			resp, err := Run(context.Background(), h, tt.question, now, h.names)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Interpretation.Intent != tt.intent || resp.Answer.Kind != tt.kind {
				t.Fatalf("intent %s, answer %s; want %s, %s\n%s", resp.Interpretation.Intent, resp.Answer.Kind, tt.intent, tt.kind, dump(resp))
			}
			rest := resp.Summary
			for _, frag := range tt.summary {
				i := strings.Index(rest, frag)
				if i < 0 {
					t.Fatalf("summary %q lacks %q (or has it out of order)", resp.Summary, frag)
				}
				rest = rest[i+len(frag):]
			}
			if len(resp.Queries) != tt.queries {
				t.Errorf("ran %d queries, want %d: %q", len(resp.Queries), tt.queries, resp.Queries)
			}
			for _, q := range resp.Queries {
				if !strings.HasPrefix(q, "GET /v1/") {
					t.Errorf("query %q is not a GET of the API", q)
				}
			}
			if tt.check != nil {
				tt.check(t, &resp.Answer)
			}
		})
	}
}

// TestRunIsDeterministic: the same question, now and history give the same answer.
func TestRunIsDeterministic(t *testing.T) {
	for _, q := range []string{"what happened on agent-001 and the cluster today", "how many events of each type this week", "trace the event chain of the last node crash"} {
		h, now := fleet()
		a, err := Run(context.Background(), h, q, now, h.names)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b, err := Run(context.Background(), h, q, now, h.names)
			if err != nil {
				t.Fatal(err)
			}
			if dump(a) != dump(b) {
				t.Fatalf("%q answered differently:\n%s\n%s", q, dump(a), dump(b))
			}
		}
	}
}

// TestQueriesReadLikeTheDocs: the queries are the requests run, with times and
// lists unescaped so a user can read and rerun them.
func TestQueriesReadLikeTheDocs(t *testing.T) {
	h, now := fleet()
	resp, err := Run(context.Background(), h, "show crashes on agent-001 today", now, h.names)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "queries", resp.Queries, []string{
		"GET /v1/events?entity=agent-001&limit=50&since=2026-03-05T00:00:00Z&type=node_crashed&until=2026-03-05T09:15:00Z",
		"GET /v1/events/aggregate?entity=agent-001&group_by=type&since=2026-03-05T00:00:00Z&type=node_crashed&until=2026-03-05T09:15:00Z",
	})
}

func want[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
