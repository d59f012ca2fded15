package ask

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The registry and clocks of the broad table. thursday is the examples' now;
// the others are the edge days a calendar gets wrong.
var (
	testNames = Names{
		Agents: []string{"agent-001", "agent-002", "agent-003", "agent-004", "agent-005"},
		Nodes: []Node{
			{ID: "0b6a6e0c-1111-4222-8333-444455556666", Name: "node-2", Agent: "agent-001"},
			{ID: "7d1e2f3a-aaaa-4bbb-8ccc-ddddeeeeffff", Name: "node-4", Agent: "agent-002"},
			{Name: "node-8", Agent: "agent-003"},
		},
	}
	thursday    = time.Date(2026, 3, 5, 9, 15, 0, 0, time.UTC)
	monday      = time.Date(2026, 3, 2, 0, 0, 30, 0, time.UTC)  // just after midnight
	sunday      = time.Date(2026, 3, 8, 23, 59, 0, 0, time.UTC) // just before midnight
	firstOfApr  = time.Date(2026, 4, 1, 0, 5, 0, 0, time.UTC)
	newYear     = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // on the stroke of midnight
	newYearLate = time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)
)

// failuresJSON is the contract's "failures", in its order.
const failuresJSON = `["agent_degraded","agent_offline","spawn_failed","stop_failed","node_crashed","cluster_degraded","cluster_critical"]`

// TestInterpret is the broad table: many phrasings of every intent and time
// phrase, on edge days, and bad input. want is a JSON object holding only the
// fields a case checks, compared as in TestExamples.
func TestInterpret(t *testing.T) {
	cases := []struct {
		q    string
		now  time.Time // zero: thursday
		want string
	}{
		// history
		{q: "what happened to agent-004 today", want: `{"intent":"history","entities":["agent-004"],"types":null,"since":"2026-03-05T00:00:00Z","until":"2026-03-05T09:15:00Z","default_window":false,"order":"desc"}`},
		{q: "WHAT HAPPENED TO AGENT-004 TODAY???", want: `{"intent":"history","entities":["agent-004"],"since":"2026-03-05T00:00:00Z"}`},
		{q: "  what   happened on node-4 ", want: `{"intent":"history","entities":["node-4"],"since":"2026-03-04T09:15:00Z","until":"2026-03-05T09:15:00Z","default_window":true}`},
		{q: "history of node-8", want: `{"intent":"history","entities":["node-8"],"order":"desc","default_window":true}`},
		{q: "node-8 history", want: `{"intent":"history","entities":["node-8"]}`},
		{q: "timeline of agent-002 yesterday", want: `{"intent":"history","entities":["agent-002"],"order":"asc","since":"2026-03-04T00:00:00Z","until":"2026-03-05T00:00:00Z"}`},
		{q: "trace agent-003", want: `{"intent":"history","entities":["agent-003"]}`},
		{q: "Trace node-2 in order", want: `{"intent":"history","entities":["node-2"],"order":"asc"}`},
		{q: "what happened to 0b6a6e0c-1111-4222-8333-444455556666?", want: `{"intent":"history","entities":["node-2"]}`},
		{q: "Replay agent-001's events this week chronologically", want: `{"intent":"history","entities":["agent-001"],"order":"asc","since":"2026-03-02T00:00:00Z"}`},
		{q: "what happened to agent-001 and node-4 last night", want: `{"intent":"history","entities":["agent-001","node-4"],"since":"2026-03-04T18:00:00Z","until":"2026-03-05T06:00:00Z"}`},
		{q: "what happened to the cluster today", want: `{"intent":"history","entities":["cluster"],"types":null}`},
		{q: "agent-005 events ever", want: `{"intent":"history","entities":["agent-005"],"since":null,"until":null,"default_window":false}`},
		{q: "show agent-002 activity over the past 3 days, oldest first", want: `{"intent":"history","entities":["agent-002"],"order":"asc","since":"2026-03-02T09:15:00Z"}`},
		{q: "what happened to node-2 on Tuesday", want: `{"intent":"history","since":"2026-03-03T00:00:00Z","until":"2026-03-04T00:00:00Z"}`},

		// list
		{q: "show failures today", want: `{"intent":"list","types":` + failuresJSON + `,"since":"2026-03-05T00:00:00Z"}`},
		{q: "any problems in the last hour?", want: `{"intent":"list","types":` + failuresJSON + `,"since":"2026-03-05T08:15:00Z"}`},
		{q: "Did anything go wrong overnight? last night", want: `{"intent":"list","types":` + failuresJSON + `}`},
		{q: "did any spawns fail yesterday", want: `{"intent":"list","types":["spawn_failed"],"since":"2026-03-04T00:00:00Z","until":"2026-03-05T00:00:00Z"}`},
		{q: "stop failures this week", want: `{"intent":"list","types":["stop_failed"],"since":"2026-03-02T00:00:00Z"}`},
		{q: "stop events today", want: `{"intent":"list","types":["stop_requested","stop_succeeded","stop_failed"]}`},
		{q: "spawn requests in the past 2 hours", want: `{"intent":"list","types":["spawn_requested"],"since":"2026-03-05T07:15:00Z"}`},
		{q: "which nodes were started today", want: `{"intent":"list","types":["spawn_succeeded"]}`},
		{q: "what was launched this morning", want: `{"intent":"list","types":["spawn_succeeded"],"since":"2026-03-05T00:00:00Z","until":"2026-03-05T12:00:00Z"}`},
		{q: "show crashes", want: `{"intent":"list","types":["node_crashed"],"default_window":true}`},
		{q: "which nodes crashed this week", want: `{"intent":"list","types":["node_crashed"],"since":"2026-03-02T00:00:00Z"}`},
		{q: "did node-2 crash yesterday", want: `{"intent":"list","entities":["node-2"],"types":["node_crashed"]}`},
		{q: "restarts on agent-001 this week", want: `{"intent":"list","entities":["agent-001"],"types":["node_restarted"]}`},
		{q: "which nodes went down today", want: `{"intent":"list","types":["node_crashed"]}`},
		{q: "which agents died this week", want: `{"intent":"list","types":["agent_offline"]}`},
		{q: "agents that went offline yesterday", want: `{"intent":"list","types":["agent_offline"]}`},
		{q: "degraded events today", want: `{"intent":"list","types":["agent_degraded","cluster_degraded"]}`},
		{q: "did the cluster degrade this week", want: `{"intent":"list","types":["cluster_degraded"],"entities":["cluster"]}`},
		{q: "critical events this week", want: `{"intent":"list","types":null,"severity":"critical"}`},
		{q: "warnings since yesterday", want: `{"intent":"list","types":null,"severity":"warning","since":"2026-03-04T00:00:00Z","until":"2026-03-05T09:15:00Z"}`},
		{q: "errors in the past 24 hours", want: `{"intent":"list","severity":"error","since":"2026-03-04T09:15:00Z"}`},
		{q: "agents that recovered today", want: `{"intent":"list","types":["agent_recovered"]}`},
		{q: "which agents came back online this week", want: `{"intent":"list","types":["agent_recovered"]}`},
		{q: "new agent registrations this month", want: `{"intent":"list","types":["agent_registered"],"since":"2026-03-01T00:00:00Z"}`},
		{q: "which agents joined this week", want: `{"intent":"list","types":["agent_registered"]}`},
		{q: "which agents left last week", want: `{"intent":"list","types":["agent_unregistered"],"since":"2026-02-23T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "unregistered agents last month", want: `{"intent":"list","types":["agent_unregistered"],"since":"2026-02-01T00:00:00Z","until":"2026-03-01T00:00:00Z"}`},
		{q: "heartbeats from agent-002 in the last 10 minutes", want: `{"intent":"list","types":["agent_heartbeat"],"entities":["agent-002"],"since":"2026-03-05T09:05:00Z"}`},
		{q: "agent failures today", want: `{"intent":"list","types":["agent_degraded","agent_offline"]}`},
		{q: "cluster problems this week", want: `{"intent":"list","types":["cluster_degraded","cluster_critical"]}`},
		{q: "node failures yesterday", want: `{"intent":"list","types":["node_crashed"]}`},
		{q: "what happened between 2pm and 3pm yesterday", want: `{"intent":"list","types":null,"since":"2026-03-04T14:00:00Z","until":"2026-03-04T15:00:00Z"}`},
		{q: "what happened between 2 pm and 3:30 pm", want: `{"intent":"list","since":"2026-03-05T14:00:00Z","until":"2026-03-05T15:30:00Z"}`},
		{q: "events from 10am to noon", want: `{"intent":"list","since":"2026-03-05T10:00:00Z","until":"2026-03-05T12:00:00Z"}`},
		{q: "events between 11pm and 1am yesterday", want: `{"intent":"list","since":"2026-03-04T23:00:00Z","until":"2026-03-05T01:00:00Z"}`},
		{q: "events between 10pm and midnight yesterday", want: `{"intent":"list","since":"2026-03-04T22:00:00Z","until":"2026-03-05T00:00:00Z"}`},
		{q: "events from 14:00 to 15:00 on March 3", want: `{"intent":"list","since":"2026-03-03T14:00:00Z","until":"2026-03-03T15:00:00Z"}`},
		{q: "what happened yesterday afternoon", want: `{"intent":"list","since":"2026-03-04T12:00:00Z","until":"2026-03-04T18:00:00Z"}`},
		{q: "what happened this afternoon", want: `{"intent":"list","since":"2026-03-05T12:00:00Z","until":"2026-03-05T18:00:00Z"}`},
		{q: "anything tonight?", want: `{"intent":"list","since":"2026-03-05T18:00:00Z","until":"2026-03-06T00:00:00Z"}`},
		{q: "events this evening", want: `{"intent":"list","since":"2026-03-05T18:00:00Z","until":"2026-03-06T00:00:00Z"}`},
		{q: "events on 2026-03-01", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events from 2026-03-01", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events on 1 March", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events on the 1st of March", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "crashes on June 3rd", want: `{"intent":"list","types":["node_crashed"],"since":"2025-06-03T00:00:00Z","until":"2025-06-04T00:00:00Z"}`},
		{q: "crashes on March 10", want: `{"intent":"list","since":"2025-03-10T00:00:00Z","until":"2025-03-11T00:00:00Z"}`},
		{q: "crashes on Feb 28 2026", want: `{"intent":"list","since":"2026-02-28T00:00:00Z","until":"2026-03-01T00:00:00Z"}`},
		{q: "events since March 1", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-05T09:15:00Z"}`},
		{q: "events since 2026-02-15", want: `{"intent":"list","since":"2026-02-15T00:00:00Z"}`},
		{q: "events since monday", want: `{"intent":"list","since":"2026-03-02T00:00:00Z"}`},
		{q: "events since thursday", want: `{"intent":"list","since":"2026-03-05T00:00:00Z"}`},
		{q: "events since Friday", want: `{"intent":"list","since":"2026-02-27T00:00:00Z"}`},
		{q: "events since 8am", want: `{"intent":"list","since":"2026-03-05T08:00:00Z","until":"2026-03-05T09:15:00Z"}`},
		{q: "events since 10pm", want: `{"intent":"list","since":"2026-03-04T22:00:00Z"}`},
		{q: "events from March 1 to March 3", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-04T00:00:00Z"}`},
		{q: "crashes between March 1 and March 3", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-03-04T00:00:00Z"}`},
		{q: "events from Dec 30 to Jan 2", want: `{"intent":"list","since":"2025-12-30T00:00:00Z","until":"2026-01-03T00:00:00Z"}`},
		{q: "events from 2026-03-04 23:30 to 2026-03-05 01:00", want: `{"intent":"list","since":"2026-03-04T23:30:00Z","until":"2026-03-05T01:00:00Z"}`},
		{q: "events from 2026-03-04 22:00 to 23:00", want: `{"intent":"list","since":"2026-03-04T22:00:00Z","until":"2026-03-04T23:00:00Z"}`},
		{q: "what happened over the weekend", want: `{"intent":"list","since":"2026-02-28T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "what happened on the weekend", want: `{"intent":"list","since":"2026-02-28T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events on Tuesday", want: `{"intent":"list","since":"2026-03-03T00:00:00Z","until":"2026-03-04T00:00:00Z"}`},
		{q: "events last Tuesday", want: `{"intent":"list","since":"2026-03-03T00:00:00Z","until":"2026-03-04T00:00:00Z"}`},
		{q: "events last thursday", want: `{"intent":"list","since":"2026-02-26T00:00:00Z","until":"2026-02-27T00:00:00Z"}`},
		{q: "events on thursday", want: `{"intent":"list","since":"2026-03-05T00:00:00Z","until":"2026-03-05T09:15:00Z"}`},
		{q: "events last 3 days", want: `{"intent":"list","since":"2026-03-02T09:15:00Z"}`},
		{q: "events in the last 2 weeks", want: `{"intent":"list","since":"2026-02-19T09:15:00Z"}`},
		{q: "events during the past week", want: `{"intent":"list","since":"2026-02-26T09:15:00Z"}`},
		{q: "events over the last month", want: `{"intent":"list","since":"2026-02-05T09:15:00Z"}`},
		{q: "events in the last 90 seconds", want: `{"intent":"list","since":"2026-03-05T09:13:30Z"}`},
		{q: "events in the last a couple of hours", want: `{"intent":"list","since":"2026-03-05T07:15:00Z"}`},
		{q: "events within the last thirty minutes", want: `{"intent":"list","since":"2026-03-05T08:45:00Z"}`},
		{q: "events this year", want: `{"intent":"list","since":"2026-01-01T00:00:00Z"}`},
		{q: "crashes in march", want: `{"intent":"list","since":"2026-03-01T00:00:00Z","until":"2026-04-01T00:00:00Z"}`},
		{q: "crashes in April", want: `{"intent":"list","since":"2025-04-01T00:00:00Z","until":"2025-05-01T00:00:00Z"}`},
		{q: "crashes during february 2025", want: `{"intent":"list","since":"2025-02-01T00:00:00Z","until":"2025-03-01T00:00:00Z"}`},
		{q: "were there any crashes in the last 24h", want: `{"intent":"list","types":["node_crashed"],"since":"2026-03-04T09:15:00Z"}`},
		{q: "crashes past 30m", want: `{"intent":"list","since":"2026-03-05T08:45:00Z"}`},
		{q: "events before 2pm", want: `{"intent":"list","since":"2026-03-05T00:00:00Z","until":"2026-03-05T14:00:00Z"}`},
		{q: "crashes after 14:30 yesterday", want: `{"intent":"list","since":"2026-03-04T14:30:00Z","until":"2026-03-05T00:00:00Z"}`},
		{q: "events on monday morning", want: `{"intent":"list","since":"2026-03-02T00:00:00Z","until":"2026-03-02T12:00:00Z"}`},
		{q: "what happened friday", want: `{"intent":"list","since":"2026-02-27T00:00:00Z","until":"2026-02-28T00:00:00Z"}`},
		{q: "show the last 5 crashes", want: `{"intent":"list","types":["node_crashed"]}`},
		{q: "which agents have gone offline", want: `{"intent":"list","types":["agent_offline"]}`},
		{q: "when did node-2 first crash", want: `{"intent":"list","types":["node_crashed"],"order":"asc"}`},
		{q: "Show events in order", want: `{"intent":"list","order":"asc","default_window":true}`},

		// count
		{q: "how many crashes today", want: `{"intent":"count","types":["node_crashed"],"group_by":[],"bucket":""}`},
		{q: "count restarts per node this week", want: `{"intent":"count","types":["node_restarted"],"group_by":["node_id"]}`},
		{q: "number of failures by agent yesterday", want: `{"intent":"count","types":` + failuresJSON + `,"group_by":["agent_id"]}`},
		{q: "how many events per type today", want: `{"intent":"count","types":null,"group_by":["type"]}`},
		{q: "how many events by type", want: `{"intent":"count","group_by":["type"],"default_window":true}`},
		{q: "crashes per hour today", want: `{"intent":"list","types":["node_crashed"]}`},
		{q: "count crashes per hour today", want: `{"intent":"count","bucket":"1h","group_by":[]}`},
		{q: "how many spawns failed each day this week", want: `{"intent":"count","types":["spawn_failed"],"bucket":"1d"}`},
		{q: "count heartbeats per minute in the last hour", want: `{"intent":"count","types":["agent_heartbeat"],"bucket":"1m"}`},
		{q: "daily count of errors this month", want: `{"intent":"count","severity":"error","bucket":"1d"}`},
		{q: "total stop failures last week", want: `{"intent":"count","types":["stop_failed"]}`},
		{q: "how many times did node-4 restart", want: `{"intent":"count","entities":["node-4"],"types":["node_restarted"],"default_window":true}`},
		{q: "how often did agent-003 go offline this month", want: `{"intent":"count","entities":["agent-003"],"types":["agent_offline"]}`},
		{q: "how many nodes crashed on agent-001 per type", want: `{"intent":"count","group_by":["type"]}`},

		// rate
		{q: "spawn failure rate today", want: `{"intent":"rate","types":["spawn_failed","spawn_requested"]}`},
		{q: "what is the stop success rate this week", want: `{"intent":"rate","types":["stop_succeeded","stop_requested"],"since":"2026-03-02T00:00:00Z"}`},
		{q: "failure rate", want: `{"intent":"rate","types":["spawn_failed","spawn_requested"],"default_window":true}`},
		{q: "stop failure ratio on agent-002", want: `{"intent":"rate","types":["stop_failed","stop_requested"],"entities":["agent-002"]}`},
		{q: "success percentage of spawns yesterday", want: `{"intent":"rate","types":["spawn_succeeded","spawn_requested"]}`},
		{q: "crash rate this week", want: `{"intent":"unanswerable"}`},

		// top
		{q: "which agent had the most crashes this week", want: `{"intent":"top","types":["node_crashed"],"group_by":["agent_id"],"limit":1}`},
		{q: "top 5 nodes by restarts", want: `{"intent":"top","types":["node_restarted"],"group_by":["node_id"],"limit":5}`},
		{q: "most common event type today", want: `{"intent":"top","group_by":["type"],"limit":1,"types":null}`},
		{q: "what's the most common failure", want: `{"intent":"top","group_by":["type"],"types":` + failuresJSON + `}`},
		{q: "which node has the highest number of spawn failures", want: `{"intent":"top","group_by":["node_id"],"types":["spawn_failed"],"limit":1}`},
		{q: "top two agents by errors this month", want: `{"intent":"top","group_by":["agent_id"],"limit":2,"severity":"error"}`},
		{q: "worst node yesterday", want: `{"intent":"top","group_by":["node_id"],"limit":1}`},

		// cause, before, after, chain
		{q: "why did node-4 crash", want: `{"intent":"cause","entities":["node-4"],"types":["node_crashed"],"window":"15m","since":null,"until":null,"default_window":false}`},
		{q: "why did node-4 crash yesterday", want: `{"intent":"cause","since":"2026-03-04T00:00:00Z","until":"2026-03-05T00:00:00Z"}`},
		{q: "what caused agent-002 to degrade", want: `{"intent":"cause","types":["agent_degraded"]}`},
		{q: "what led to the cluster going critical", want: `{"intent":"cause","types":["cluster_critical"],"entities":["cluster"]}`},
		{q: "reason for the last spawn failure on agent-001", want: `{"intent":"cause","types":["spawn_failed"]}`},
		{q: "why did node-2 crash? look at the 5 minutes before", want: `{"intent":"cause","window":"5m"}`},
		{q: "what happened in the 5 minutes before node-2 crashed", want: `{"intent":"before","window":"5m","types":["node_crashed"],"since":null}`},
		{q: "what happened in the hour before agent-003 went offline", want: `{"intent":"before","window":"1h","types":["agent_offline"]}`},
		{q: "events leading up to the cluster degrading", want: `{"intent":"before","types":["cluster_degraded"],"window":"15m"}`},
		{q: "what happened after node-8 restarted", want: `{"intent":"after","types":["node_restarted"],"window":"15m","entities":["node-8"]}`},
		{q: "what happened 10 minutes after agent-004 recovered", want: `{"intent":"after","window":"10m"}`},
		{q: "what happened after", want: `{"intent":"unanswerable"}`},
		{q: "trace the event chain of the last crash", want: `{"intent":"chain","types":["node_crashed"],"window":""}`},
		{q: "trace node-2's crash", want: `{"intent":"chain","entities":["node-2"],"types":["node_crashed"]}`},
		{q: "causal chain for agent-005 going offline", want: `{"intent":"chain","types":["agent_offline"]}`},

		// state
		{q: "which agents are offline", want: `{"intent":"state","entities_kind":"agent","state":"offline","entities":[],"since":null,"until":null}`},
		{q: "is the cluster healthy?", want: `{"intent":"state","entities_kind":"cluster","state":"healthy","entities":[]}`},
		{q: "list all nodes", want: `{"intent":"state","entities_kind":"node","state":""}`},
		{q: "show nodes on agent-002", want: `{"intent":"state","entities_kind":"node","entities":["agent-002"]}`},
		{q: "what's the status of agent-003", want: `{"intent":"state","entities_kind":"agent","entities":["agent-003"]}`},
		{q: "is node-2 running", want: `{"intent":"state","entities_kind":"node","entities":["node-2"],"state":"running"}`},
		{q: "which nodes are stopped", want: `{"intent":"state","entities_kind":"node","state":"stopped"}`},
		{q: "which agents are degraded right now", want: `{"intent":"state","entities_kind":"agent","state":"degraded"}`},
		{q: "how many agents are healthy currently", want: `{"intent":"state","entities_kind":"agent","state":"healthy"}`},
		{q: "how many agents do we have", want: `{"intent":"state","entities_kind":"agent"}`},
		{q: "list the nodes of agent-001", want: `{"intent":"state","entities_kind":"node","entities":["agent-001"]}`},
		{q: "cluster status", want: `{"intent":"state","entities_kind":"cluster"}`},
		{q: "are any nodes down at the moment", want: `{"intent":"state","entities_kind":"node","state":"failed"}`},
		{q: "which agents were offline today", want: `{"intent":"list","types":["agent_offline"]}`},
		{q: "how many nodes crashed", want: `{"intent":"count","types":["node_crashed"]}`},

		// last
		{q: "when did node-2 last crash", want: `{"intent":"last","types":["node_crashed"],"entities":["node-2"],"since":null,"until":null}`},
		{q: "when was the last restart", want: `{"intent":"last","types":["node_restarted"]}`},
		{q: "when was the cluster restored?", want: `{"types":["cluster_restored"],"entities":["cluster"]}`},
		{q: "when was the last snapshot restore", want: `{"intent":"last","types":["cluster_restored"]}`},
		{q: "most recent agent registration", want: `{"intent":"last","types":["agent_registered"]}`},
		{q: "when did the cluster last go critical this week", want: `{"intent":"last","types":["cluster_critical"],"since":"2026-03-02T00:00:00Z"}`},
		{q: "latest error on agent-001", want: `{"intent":"last","severity":"error","entities":["agent-001"]}`},

		// unanswerable: what events do not hold
		{q: "what is the CPU usage of node-2", want: `{"intent":"unanswerable"}`},
		{q: "show disk latency for agent-001", want: `{"intent":"unanswerable"}`},
		{q: "show me the logs of node-4", want: `{"intent":"unanswerable"}`},
		{q: "which node will crash next", want: `{"intent":"unanswerable"}`},
		{q: "what will happen tomorrow", want: `{"intent":"unanswerable"}`},
		{q: "crashes next week", want: `{"intent":"unanswerable"}`},
		{q: "who stopped node-2", want: `{"intent":"unanswerable"}`},
		{q: "what is the meaning of life", want: `{"intent":"unanswerable"}`},
		{q: "hello", want: `{"intent":"unanswerable"}`},
		{q: "show me everything", want: `{"intent":"unanswerable"}`},
		{q: "what happened at 2pm", want: `{"intent":"unanswerable"}`},
		{q: "what happened around 3am", want: `{"intent":"unanswerable"}`},
		{q: "crashes in sometime march", want: `{"intent":"unanswerable"}`},
		{q: "events from March 3 2026 to March 1 2026", want: `{"intent":"unanswerable"}`},
		{q: "events since 2027-01-01", want: `{"intent":"unanswerable"}`},
		{q: "events in the last 100000 years", want: `{"intent":"unanswerable"}`},
		{q: "events on February 30", want: `{"intent":"unanswerable"}`},

		// unknown_entity
		{q: "what happened on agent-042", want: `{"intent":"unknown_entity","entities":["agent-042"]}`},
		{q: "why did node-99 crash", want: `{"intent":"unknown_entity","entities":["node-99"]}`},
		{q: "history of NODE-77 and agent-001", want: `{"intent":"unknown_entity","entities":["node-77"]}`},
		{q: "what happened to 11111111-2222-3333-4444-555555555555", want: `{"intent":"unknown_entity"}`},

		// action
		{q: "stop node-2", want: `{"intent":"action","entities":[]}`},
		{q: "please restart node-4", want: `{"intent":"action"}`},
		{q: "can you spawn 3 nodes on agent-001", want: `{"intent":"action"}`},
		{q: "will you stop node-2", want: `{"intent":"action"}`},
		{q: "scale up to 10 nodes", want: `{"intent":"action"}`},
		{q: "kill node-99", want: `{"intent":"action"}`},
		{q: "drain agent-003", want: `{"intent":"action"}`},
		{q: "Delete agent-003", want: `{"intent":"action"}`},

		// more of each, as an operator might type them
		{q: "What's the failure rate of spawns this week?", want: `{"intent":"rate","types":["spawn_failed","spawn_requested"],"since":"2026-03-02T00:00:00Z"}`},
		{q: "Which agent had the most spawn failures yesterday?", want: `{"intent":"top","types":["spawn_failed"],"group_by":["agent_id"],"limit":1}`},
		{q: "How many restarts per hour today?", want: `{"intent":"count","types":["node_restarted"],"bucket":"1h"}`},
		{q: "Show node-4's timeline since yesterday", want: `{"intent":"history","entities":["node-4"],"order":"asc","since":"2026-03-04T00:00:00Z"}`},
		{q: "Which nodes are on agent-001?", want: `{"intent":"state","entities":["agent-001"],"entities_kind":"node"}`},
		{q: "Why did the cluster become degraded?", want: `{"intent":"cause","types":["cluster_degraded"],"window":"15m"}`},
		{q: "When did agent-002 last go offline?", want: `{"intent":"last","entities":["agent-002"],"types":["agent_offline"]}`},
		{q: "How many spawn events yesterday", want: `{"intent":"count","types":["spawn_requested","spawn_succeeded","spawn_failed"]}`},
		{q: "Count events per agent this week", want: `{"intent":"count","types":null,"group_by":["agent_id"]}`},
		{q: "Which event type is most common this week?", want: `{"intent":"top","group_by":["type"],"limit":1}`},
		{q: "What is the stop failure rate on agent-003 over the last 7 days?", want: `{"intent":"rate","types":["stop_failed","stop_requested"],"since":"2026-02-26T09:15:00Z"}`},
		{q: "Are all agents healthy?", want: `{"intent":"state","entities_kind":"agent","state":"healthy"}`},
		{q: "Trace the chain of events for node-2's last crash", want: `{"intent":"chain","entities":["node-2"],"types":["node_crashed"]}`},
		{q: "What happened right before node-4 crashed?", want: `{"intent":"before","window":"15m"}`},
		{q: "Number of crashes per node per day this week", want: `{"intent":"count","group_by":["node_id"],"bucket":"1d"}`},

		// edge days: a Monday just after midnight
		{q: "events today", now: monday, want: `{"since":"2026-03-02T00:00:00Z","until":"2026-03-02T00:00:30Z"}`},
		{q: "events this week", now: monday, want: `{"since":"2026-03-02T00:00:00Z","until":"2026-03-02T00:00:30Z"}`},
		{q: "events last week", now: monday, want: `{"since":"2026-02-23T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events over the weekend", now: monday, want: `{"since":"2026-02-28T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events since monday", now: monday, want: `{"since":"2026-03-02T00:00:00Z"}`},
		{q: "events last monday", now: monday, want: `{"since":"2026-02-23T00:00:00Z","until":"2026-02-24T00:00:00Z"}`},
		{q: "crashes yesterday", now: monday, want: `{"since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "crashes last night", now: monday, want: `{"since":"2026-03-01T18:00:00Z","until":"2026-03-02T06:00:00Z"}`},
		{q: "crashes in the last 5 minutes", now: monday, want: `{"since":"2026-03-01T23:55:30Z","until":"2026-03-02T00:00:30Z"}`},
		// a Sunday just before midnight
		{q: "events this week", now: sunday, want: `{"since":"2026-03-02T00:00:00Z","until":"2026-03-08T23:59:00Z"}`},
		{q: "events last weekend", now: sunday, want: `{"since":"2026-02-28T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events since saturday", now: sunday, want: `{"since":"2026-03-07T00:00:00Z"}`},
		{q: "events on sunday", now: sunday, want: `{"since":"2026-03-08T00:00:00Z","until":"2026-03-08T23:59:00Z"}`},
		{q: "events last sunday", now: sunday, want: `{"since":"2026-03-01T00:00:00Z","until":"2026-03-02T00:00:00Z"}`},
		{q: "events tonight", now: sunday, want: `{"since":"2026-03-08T18:00:00Z","until":"2026-03-09T00:00:00Z"}`},
		{q: "events in the last 5 minutes", now: sunday, want: `{"since":"2026-03-08T23:54:00Z","until":"2026-03-08T23:59:00Z"}`},
		// the 1st of a month
		{q: "events this month", now: firstOfApr, want: `{"since":"2026-04-01T00:00:00Z","until":"2026-04-01T00:05:00Z"}`},
		{q: "events last month", now: firstOfApr, want: `{"since":"2026-03-01T00:00:00Z","until":"2026-04-01T00:00:00Z"}`},
		{q: "events yesterday", now: firstOfApr, want: `{"since":"2026-03-31T00:00:00Z","until":"2026-04-01T00:00:00Z"}`},
		{q: "events in the last 10 minutes", now: firstOfApr, want: `{"since":"2026-03-31T23:55:00Z"}`},
		{q: "events on March 31st", now: firstOfApr, want: `{"since":"2026-03-31T00:00:00Z","until":"2026-04-01T00:00:00Z"}`},
		{q: "events on April 1", now: firstOfApr, want: `{"since":"2026-04-01T00:00:00Z","until":"2026-04-02T00:00:00Z"}`},
		{q: "events on April 2", now: firstOfApr, want: `{"since":"2025-04-02T00:00:00Z"}`},
		// New Year's Day, on the stroke of midnight and later
		{q: "events today", now: newYear, want: `{"since":"2027-01-01T00:00:00Z","until":"2027-01-01T00:00:00Z"}`},
		{q: "events yesterday", now: newYear, want: `{"since":"2026-12-31T00:00:00Z","until":"2027-01-01T00:00:00Z"}`},
		{q: "events last year", now: newYear, want: `{"since":"2026-01-01T00:00:00Z","until":"2027-01-01T00:00:00Z"}`},
		{q: "events last month", now: newYear, want: `{"since":"2026-12-01T00:00:00Z","until":"2027-01-01T00:00:00Z"}`},
		{q: "events last week", now: newYear, want: `{"since":"2026-12-21T00:00:00Z","until":"2026-12-28T00:00:00Z"}`},
		{q: "events on December 31", now: newYearLate, want: `{"since":"2026-12-31T00:00:00Z","until":"2027-01-01T00:00:00Z"}`},
		{q: "events since Dec 25", now: newYearLate, want: `{"since":"2026-12-25T00:00:00Z","until":"2027-01-01T10:00:00Z"}`},
		{q: "events this morning", now: newYearLate, want: `{"since":"2027-01-01T00:00:00Z","until":"2027-01-01T12:00:00Z"}`},
		{q: "crashes", now: newYear, want: `{"since":"2026-12-31T00:00:00Z","until":"2027-01-01T00:00:00Z","default_window":true}`},

		// bad input
		{q: "", want: `{"intent":"unanswerable"}`},
		{q: "   \t\n ", want: `{"intent":"unanswerable"}`},
		{q: strings.Repeat("what happened to agent-001 today? ", 310), want: `{"intent":"unanswerable"}`},
		{q: "\x00\x01\x02\xff\xfe", want: `{"intent":"unanswerable"}`},
		{q: "\x89PNG\r\n\x1a\n", want: `{"intent":"unanswerable"}`},
		{q: "¿Qué pasó con agent-001 hoy?", want: `{"intent":"unanswerable"}`},
		{q: "Was ist mit agent-001 gestern passiert?", want: `{"intent":"unanswerable"}`},
		{q: "agent-001 发生了什么", want: `{"intent":"unanswerable"}`},
		{q: "что случилось", want: `{"intent":"unanswerable"}`},
		{q: "SELECT * FROM events WHERE type='node_crashed'", want: `{"intent":"unanswerable"}`},
		{q: "'; DROP TABLE events; --", want: `{"intent":"unanswerable"}`},
		{q: "select type from events", want: `{"intent":"unanswerable"}`},
		{q: "$(rm -rf /)", want: `{"intent":"unanswerable"}`},
		{q: "show events | grep crash", want: `{"intent":"unanswerable"}`},
		{q: "`cat /etc/passwd`", want: `{"intent":"unanswerable"}`},
		{q: "<script>alert(1)</script>", want: `{"intent":"unanswerable"}`},
		{q: "crashes && reboot", want: `{"intent":"unanswerable"}`},
		{q: "??? !!! ...", want: `{"intent":"unanswerable"}`},
		{q: "asdf qwer zxcv", want: `{"intent":"unanswerable"}`},
	}
	if len(cases) < 150 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		now := c.now
		if now.IsZero() {
			now = thursday
		}
		name := c.q
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			in := Interpret(c.q, now, testNames)
			if err := in.Validate(); err != nil {
				t.Errorf("invalid interpretation: %v", err)
			}
			var want map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			got := asFields(t, in)
			for field, w := range want {
				if g, ok := got[field]; !ok || !jsonEqual(t, g, w) {
					t.Errorf("%s = %s, want %s (reason %q)", field, g, w, in.Reason)
				}
			}
			if in.Intent == IntentUnanswerable && !strings.Contains(in.Reason, "e.g.") {
				t.Errorf("unanswerable without an example of what to ask: %q", in.Reason)
			}
		})
	}
}
