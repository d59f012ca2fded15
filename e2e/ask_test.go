//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// askAgents are the agents of TestAskAnswersFromRealHistory. The third address is
// its own: the other tests run at most two agents, on .21 and .22.
var askAgents = []struct{ name, ip string }{
	{"agent-001", "127.0.0.21"},
	{"agent-002", "127.0.0.22"},
	{"agent-003", "127.0.0.23"},
}

// askEvent is one event of `grid event list -json`, with the fields the test reads.
type askEvent struct {
	Seq       uint64    `json:"seq"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	AgentID   string    `json:"agent_id"`
	NodeID    string    `json:"node_id"`
	NodeName  string    `json:"node_name"`
	CausedBy  uint64    `json:"caused_by"`
}

// TestAskAnswersFromRealHistory makes a history with the built binary (three
// servers, three agents, named nodes, a crash and its restart by policy, a stop, an
// agent frozen until it is offline) and checks that `grid ask`, asked of a follower,
// answers the contract's questions about it from that history and the present
// state; and that it exits 0 for a question it cannot answer, an order or a name the
// grid has never known, and non-zero only when it cannot reach a server.
func TestAskAnswersFromRealHistory(t *testing.T) {
	dir := t.TempDir()
	begun := time.Now().UTC()
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}, extra: []string{
		"-heartbeat-interval=300ms", "-agent-degraded-after=2s", "-agent-offline-after=4s",
	}}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	// Storage nodes outlive a killed agent: kill whatever this test started.
	t.Cleanup(func() { killProcessesMentioning(dir) })
	leader := leaderOf(c.stablePeers("127.0.0.11", "", 30*time.Second))
	var follower string
	for _, ip := range serverIPs {
		if leader.Address != ip+":7002" {
			follower = ip
			break
		}
	}
	via := address(follower)

	agents := map[string]*proc{}
	for _, a := range askAgents {
		agents[a.name] = start(t, a.name, "agent", "-bind="+a.ip, "-name="+a.name,
			"-data-dir="+filepath.Join(dir, a.name), "-join=127.0.0.11", "-retry-interval=200ms", "-max-nodes=4")
	}
	waitAgents := func(what string, want map[string]string) {
		t.Helper()
		cliPoll.WaitFor(t, 30*time.Second, what, func() error {
			var as []agentView
			if err := gridJSON(&as, "agent", "status", via); err != nil {
				return err
			}
			got := map[string]string{}
			for _, a := range as {
				got[a.Name] = a.Status
			}
			for name, status := range want {
				if got[name] != status {
					return fmt.Errorf("agents %v", got)
				}
			}
			return nil
		})
	}
	waitAgents("three healthy agents", map[string]string{"agent-001": "healthy", "agent-002": "healthy", "agent-003": "healthy"})

	// Named nodes: two on agent-001, one on each of the others.
	spawn := func(agent, name string, port int) nodeView {
		t.Helper()
		var n nodeView
		if err := gridJSON(&n, "node", "spawn", via, "-agent="+agent, fmt.Sprintf("-port=%d", port), "-name="+name,
			"-restart-delay=100ms", "-restart-max-delay=200ms"); err != nil {
			t.Fatalf("spawn %s: %v", name, err)
		}
		if n.Status != "running" || n.PID <= 0 {
			t.Fatalf("spawned %s: %+v, want running with a pid", name, n)
		}
		return n
	}
	web1 := spawn("agent-001", "node-web-1", 50601)
	web2 := spawn("agent-001", "node-web-2", 50602)
	db := spawn("agent-002", "node-db-1", 50603)
	cache := spawn("agent-003", "node-cache-1", 50604)
	nodeAgent := map[string]string{web1.ID: "agent-001", web2.ID: "agent-001", db.ID: "agent-002", cache.ID: "agent-003"}

	// kill -9 node-web-1: node_crashed, then node_restarted caused by it.
	if err := syscall.Kill(web1.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var crash, restart askEvent
	cliPoll.WaitFor(t, 60*time.Second, "node-web-1's crash and its restart", func() error {
		var evs []askEvent
		if err := gridJSON(&evs, "event", "list", via, "-node=node-web-1", "-type=node_crashed,node_restarted", "-asc"); err != nil {
			return err
		}
		if len(evs) != 2 || evs[0].Type != "node_crashed" || evs[1].Type != "node_restarted" || evs[1].CausedBy != evs[0].Seq {
			return fmt.Errorf("events %+v", evs)
		}
		crash, restart = evs[0], evs[1]
		return nil
	})

	// grid node stop node-db-1.
	if _, stderr, code := grid("node", "stop", via, db.ID); code != 0 {
		t.Fatalf("node stop %s: exit %d: %s", db.ID, code, stderr)
	}

	// Freeze agent-003 until it is offline; thaw it when the test ends, before it is
	// killed.
	frozen := agents["agent-003"]
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) })
	waitAgents("agent-003 offline, the others healthy", map[string]string{"agent-001": "healthy", "agent-002": "healthy", "agent-003": "offline"})

	// The history as `grid event list` tells it, which `grid ask` must agree with.
	var history []askEvent
	cliPoll.WaitFor(t, 30*time.Second, "the stop and agent-003's going offline in the history", func() error {
		history = nil
		if err := gridJSON(&history, "event", "list", via, "-asc", "-limit=10000"); err != nil {
			return err
		}
		var stopped, offline bool
		for _, e := range history {
			stopped = stopped || (e.Type == "stop_succeeded" && e.NodeID == db.ID)
			offline = offline || (e.Type == "agent_offline" && e.AgentID == "agent-003")
		}
		if !stopped || !offline {
			return fmt.Errorf("stop_succeeded of node-db-1: %v, agent_offline of agent-003: %v, among %d events", stopped, offline, len(history))
		}
		return nil
	})
	crashes := 0
	for _, e := range history {
		if e.Type == "node_crashed" {
			crashes++
		}
	}
	if crashes != 1 {
		t.Fatalf("the history holds %d node_crashed events, want the one of node-web-1", crashes)
	}

	// Questions are asked at a pinned time just after the history, so that the
	// -json and the human answers to one question agree word for word.
	at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	if begun.Before(at.Truncate(24 * time.Hour)) {
		t.Skipf("the history began before midnight UTC (%s) and \"today\" starts at it: run again", begun)
	}
	now := "-now=" + at.Format(time.RFC3339)
	askAt := func(now, question string) api.AskResponse {
		t.Helper()
		args := []string{"ask", via, "-json"}
		if now != "" {
			args = append(args, now)
		}
		stdout, stderr, code := grid(append(args, question)...)
		if code != 0 {
			t.Fatalf("grid ask -json %q: exit %d: %s%s", question, code, stdout, stderr)
		}
		var r api.AskResponse
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("grid ask -json %q: decode %q: %v", question, stdout, err)
		}
		checkQueries(t, question, r)
		return r
	}
	ask := func(question string) api.AskResponse {
		t.Helper()
		return askAt(now, question)
	}
	mentions := func(question string, r api.AskResponse, names ...string) {
		t.Helper()
		for _, n := range names {
			if !strings.Contains(r.Summary, n) {
				t.Errorf("%q: summary %q does not mention %s", question, r.Summary, n)
			}
		}
	}
	show := func(r api.AskResponse) string {
		b, _ := json.MarshalIndent(r, "", "  ")
		return string(b)
	}

	t.Run("what happened on an agent", func(t *testing.T) {
		cases := []struct {
			agent string
			// want are events the agent's history must hold, by type and node (""
			// for the agent's own events).
			want [][2]string
		}{
			{"agent-001", [][2]string{
				{"agent_registered", ""},
				{"spawn_succeeded", web1.ID}, {"spawn_succeeded", web2.ID},
				{"node_crashed", web1.ID}, {"node_restarted", web1.ID},
			}},
			{"agent-002", [][2]string{
				{"agent_registered", ""}, {"spawn_succeeded", db.ID},
				{"stop_requested", db.ID}, {"stop_succeeded", db.ID},
			}},
			{"agent-003", [][2]string{
				{"agent_registered", ""}, {"spawn_succeeded", cache.ID}, {"agent_offline", ""},
			}},
		}
		for _, tc := range cases {
			q := "what happened on " + tc.agent + " today"
			r := ask(q)
			in := r.Interpretation
			if in.Intent != "history" || !slices.Equal(in.Entities, []string{tc.agent}) || in.Types != nil || r.Answer.Kind != api.AnswerEvents {
				t.Errorf("%q: intent %q, entities %v, types %v, answer kind %q; want history of [%s], all types, events\n%s",
					q, in.Intent, in.Entities, in.Types, r.Answer.Kind, tc.agent, show(r))
				continue
			}
			if in.Since == nil || !in.Since.Equal(at.Truncate(24*time.Hour)) || in.Until == nil || !in.Until.Equal(at) || in.DefaultWindow {
				t.Errorf("%q: range [%v, %v) default %v, want today [%s, %s)", q, in.Since, in.Until, in.DefaultWindow,
					at.Truncate(24*time.Hour).Format(time.RFC3339), at.Format(time.RFC3339))
			}
			// Exactly the agent's events and its nodes' of the history, no other.
			var want []uint64
			for _, e := range history {
				if e.AgentID == tc.agent || (e.NodeID != "" && nodeAgent[e.NodeID] == tc.agent) {
					want = append(want, e.Seq)
				}
			}
			var got []uint64
			for _, e := range r.Answer.Events {
				got = append(got, e.Seq)
				if e.AgentID != tc.agent && nodeAgent[e.NodeID] != tc.agent {
					t.Errorf("%q: event %d (%s, agent %q, node %q) is none of %s's", q, e.Seq, e.Type, e.AgentID, e.NodeID, tc.agent)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%q: events %v, want %v (%s's and its nodes' in `grid event list`)", q, got, want, tc.agent)
			}
			if r.Answer.Total == nil || *r.Answer.Total != uint64(len(want)) {
				t.Errorf("%q: total %v, want %d", q, r.Answer.Total, len(want))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(r.Answer.Events, func(e api.Event) bool {
					return string(e.Type) == w[0] && e.NodeID == w[1] && (w[1] != "" || e.AgentID == tc.agent)
				}) {
					of := tc.agent
					if w[1] != "" {
						of = "node " + w[1]
					}
					t.Errorf("%q: no %s event of %s", q, w[0], of)
				}
			}
			if tc.agent == "agent-001" && !slices.ContainsFunc(r.Answer.Events, func(e api.Event) bool { return e.Seq == crash.Seq }) {
				t.Errorf("%q: the crash (event %d) is missing", q, crash.Seq)
			}
			mentions(q, r, tc.agent)
		}
	})

	t.Run("why did a node restart", func(t *testing.T) {
		// By name and by ID: either way the entity is the node's name.
		for _, q := range []string{"why did node-web-1 restart", "why did " + web1.ID + " restart"} {
			r := ask(q)
			in := r.Interpretation
			if in.Intent != "cause" || !slices.Equal(in.Entities, []string{"node-web-1"}) ||
				!slices.Equal(in.Types, []events.Type{events.NodeRestarted}) || r.Answer.Kind != api.AnswerChain {
				t.Errorf("%q: intent %q, entities %v, types %v, answer kind %q; want cause of node-web-1's node_restarted, chain\n%s",
					q, in.Intent, in.Entities, in.Types, r.Answer.Kind, show(r))
				continue
			}
			a := r.Answer.Anchor
			if a == nil || a.Seq != restart.Seq || a.Type != events.NodeRestarted || a.NodeID != web1.ID {
				t.Errorf("%q: anchor %+v, want node-web-1's node_restarted %d\n%s", q, a, restart.Seq, show(r))
				continue
			}
			if len(r.Answer.Causes) == 0 || r.Answer.Causes[0].Seq != crash.Seq || r.Answer.Causes[0].Type != events.NodeCrashed {
				t.Errorf("%q: causes %+v, want node-web-1's node_crashed %d first", q, r.Answer.Causes, crash.Seq)
			}
			if !slices.ContainsFunc(r.Answer.Events, func(e api.Event) bool { return e.Seq == crash.Seq }) {
				t.Errorf("%q: the crash (event %d) is not in the %s before the restart: %+v", q, crash.Seq, r.Answer.Window, r.Answer.Events)
			}
			mentions(q, r, "node-web-1")
		}
	})

	const perAgent = "how many crashes per agent today"
	var counted api.AskResponse
	t.Run("how many crashes per agent", func(t *testing.T) {
		r := ask(perAgent)
		counted = r
		in := r.Interpretation
		if in.Intent != "count" || len(in.Entities) != 0 || !slices.Equal(in.Types, []events.Type{events.NodeCrashed}) ||
			!slices.Equal(in.GroupBy, []string{"agent_id"}) || r.Answer.Kind != api.AnswerGroups {
			t.Fatalf("%q: intent %q, entities %v, types %v, group_by %v, answer kind %q; want a count of node_crashed by agent_id, groups\n%s",
				perAgent, in.Intent, in.Entities, in.Types, in.GroupBy, r.Answer.Kind, show(r))
		}
		if r.Answer.Total == nil || *r.Answer.Total != 1 {
			t.Errorf("%q: total %v, want 1", perAgent, r.Answer.Total)
		}
		byAgent := map[string]uint64{}
		for _, g := range r.Answer.Groups {
			byAgent[g.Values["agent"]] += g.Count
		}
		for _, a := range askAgents {
			if want := map[bool]uint64{true: 1}[a.name == "agent-001"]; byAgent[a.name] != want {
				t.Errorf("%q: %s has %d crashes, want %d; groups %+v", perAgent, a.name, byAgent[a.name], want, r.Answer.Groups)
			}
		}
		if len(byAgent) > 3 || byAgent[""] != 0 {
			t.Errorf("%q: groups %+v, want agent-001's alone (others absent or 0)", perAgent, r.Answer.Groups)
		}
		mentions(perAgent, r, "agent-001")
	})

	t.Run("which agents are offline", func(t *testing.T) {
		// The present needs no pinned time: this one is asked on the server's clock.
		const q = "which agents are offline"
		r := askAt("", q)
		in := r.Interpretation
		if in.Intent != "state" || in.EntitiesKind != "agent" || in.State != "offline" || r.Answer.Kind != api.AnswerState {
			t.Fatalf("%q: intent %q, entities_kind %q, state %q, answer kind %q; want the state of offline agents\n%s",
				q, in.Intent, in.EntitiesKind, in.State, r.Answer.Kind, show(r))
		}
		if len(r.Answer.Agents) != 1 || r.Answer.Agents[0].Name != "agent-003" || r.Answer.Agents[0].Status != "offline" {
			t.Errorf("%q: agents %+v, want agent-003 alone, offline", q, r.Answer.Agents)
		}
		mentions(q, r, "agent-003")
		for _, n := range []string{"agent-001", "agent-002"} {
			if strings.Contains(r.Summary, n) {
				t.Errorf("%q: summary %q mentions %s, which is healthy", q, r.Summary, n)
			}
		}
	})

	t.Run("the human answer shows the summary and the queries", func(t *testing.T) {
		// Unquoted, as one would type it: the words are the question.
		stdout, stderr, code := grid(append([]string{"ask", via, now}, strings.Fields(perAgent)...)...)
		if code != 0 {
			t.Fatalf("grid ask %q: exit %d: %s%s", perAgent, code, stdout, stderr)
		}
		if counted.Summary == "" || !strings.Contains(stdout, counted.Summary) {
			t.Errorf("grid ask %q: output does not hold the summary %q:\n%s", perAgent, counted.Summary, stdout)
		}
		i := strings.Index(stdout, "Interpreted as:")
		if i < 0 {
			t.Fatalf("grid ask %q: no \"Interpreted as:\" in the output:\n%s", perAgent, stdout)
		}
		rest := stdout[i:]
		for _, query := range counted.Queries {
			if !strings.Contains(rest, query) {
				t.Errorf("grid ask %q: query %q is not shown after \"Interpreted as:\":\n%s", perAgent, query, stdout)
			}
		}
	})

	t.Run("questions it refuses exit 0", func(t *testing.T) {
		for _, tc := range []struct {
			q, intent string
			says      string // in the summary
		}{
			{"what is the CPU usage of node-x", "unanswerable", "CPU"},
			{"stop node-web-1", "action", "grid node stop"},
		} {
			r := ask(tc.q)
			in := r.Interpretation
			if string(in.Intent) != tc.intent || in.Reason == "" || r.Answer.Kind != api.AnswerNone || !strings.Contains(r.Summary, tc.says) {
				t.Errorf("%q: intent %q, reason %q, answer kind %q, summary %q; want %s, with a reason, none, a summary saying %q\n%s",
					tc.q, in.Intent, in.Reason, r.Answer.Kind, r.Summary, tc.intent, tc.says, show(r))
			}
			if stdout, stderr, code := grid("ask", via, tc.q); code != 0 || !strings.Contains(stdout, tc.says) {
				t.Errorf("grid ask %q: exit %d, output %q, stderr %q; want exit 0 with the reason", tc.q, code, stdout, stderr)
			}
		}
		// The order was refused, not run.
		if v, err := nodeStatus(via, web1.ID); err != nil || v.Status != "running" {
			t.Errorf("node-web-1 after \"stop node-web-1\" was asked: %+v, %v; want running", v, err)
		}
	})

	t.Run("an agent the grid never knew", func(t *testing.T) {
		const q = "what happened on agent-042"
		r := ask(q)
		in := r.Interpretation
		if in.Intent != "unknown_entity" || !slices.Equal(in.Entities, []string{"agent-042"}) || r.Answer.Kind != api.AnswerNone {
			t.Errorf("%q: intent %q, entities %v, answer kind %q; want unknown_entity agent-042, none\n%s",
				q, in.Intent, in.Entities, r.Answer.Kind, show(r))
		}
		mentions(q, r, "agent-042")
	})

	t.Run("no server to ask exits non-zero", func(t *testing.T) {
		for _, args := range [][]string{
			{"ask", "-address=http://127.0.0.1:1", "which agents are offline"},
			{"ask", "-address=http://127.0.0.1:1", "-json", "which agents are offline"},
		} {
			stdout, stderr, code := grid(args...)
			if code == 0 || strings.TrimSpace(stderr) == "" {
				t.Errorf("grid %s: exit %d, stdout %q, stderr %q; want a failure that says why", strings.Join(args, " "), code, stdout, stderr)
			}
		}
	})
}

// nodeStatus returns one node as `grid node status -json` shows it.
func nodeStatus(via, id string) (nodeView, error) {
	var ns []nodeView
	if err := gridJSON(&ns, "node", "status", via, id); err != nil {
		return nodeView{}, err
	}
	if len(ns) != 1 {
		return nodeView{}, fmt.Errorf("node status %s: %+v", id, ns)
	}
	return ns[0], nil
}

// checkQueries checks that an answer lists the API requests it ran, as a user could
// run them; a refusal may have run none.
func checkQueries(t *testing.T, question string, r api.AskResponse) {
	t.Helper()
	if len(r.Queries) == 0 && r.Answer.Kind != api.AnswerNone {
		t.Errorf("%q: a %s answer without queries", question, r.Answer.Kind)
	}
	for _, q := range r.Queries {
		if !strings.HasPrefix(q, "GET /v1/") {
			t.Errorf("%q: query %q does not start with \"GET /v1/\"", question, q)
		}
	}
}
