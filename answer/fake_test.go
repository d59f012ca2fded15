package answer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
)

// history is a Source over events held in memory, filtering as the HTTP API
// documents it. The server's own filtering is tested in server/ and e2e/; this
// fake lets the answer package's tests pin down every intent's output.
type history struct {
	evs    []api.Event
	agents []api.Agent
	nodes  []api.Node
	status api.Status
	names  ask.Names
}

func (h *history) entityMatch(e *api.Event, entities []string) bool {
	if len(entities) == 0 {
		return true
	}
	for _, n := range entities {
		switch {
		case n == "cluster" && strings.HasPrefix(string(e.Type), "cluster_"),
			n == e.AgentID, e.NodeID != "" && (n == e.NodeID || n == e.NodeName):
			return true
		}
	}
	return false
}

func (h *history) match(e *api.Event, entities []string, types []events.Type, since, until string) bool {
	t0, _ := time.Parse(time.RFC3339Nano, since)
	t1, _ := time.Parse(time.RFC3339Nano, until)
	return h.entityMatch(e, entities) &&
		(len(types) == 0 || slices.Contains(types, e.Type)) &&
		(since == "" || !e.Timestamp.Before(t0)) &&
		(until == "" || e.Timestamp.Before(t1))
}

func (h *history) Events(_ context.Context, q api.EventQuery) (*api.EventList, error) {
	out := []api.Event{}
	for _, e := range h.evs {
		if h.match(&e, q.Entities, q.Types, q.Since, q.Until) {
			out = append(out, e)
		}
	}
	if !q.Ascending {
		slices.Reverse(out)
	}
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	return &api.EventList{Events: first(out, limit)}, nil
}

func (h *history) Event(_ context.Context, seq uint64) (*api.EventDetail, error) {
	bySeq := map[uint64]api.Event{}
	for _, e := range h.evs {
		bySeq[e.Seq] = e
	}
	e, ok := bySeq[seq]
	if !ok {
		return nil, &api.StatusError{Code: 404, Message: "no such event"}
	}
	d := &api.EventDetail{Event: e, Causes: []api.Event{}, Effects: []api.Event{}}
	for c := e.CausedBy; c != 0; c = bySeq[c].CausedBy {
		d.Causes = append(d.Causes, bySeq[c])
	}
	for _, x := range h.evs {
		if x.CausedBy == seq {
			d.Effects = append(d.Effects, x)
		}
	}
	return d, nil
}

func (h *history) EventCounts(_ context.Context, q api.EventCountQuery) (*api.EventCounts, error) {
	out := &api.EventCounts{Groups: []api.EventGroup{}}
	index := map[string]int{}
	for _, e := range h.evs {
		if !h.match(&e, q.Entities, q.Types, q.Since, q.Until) {
			continue
		}
		out.Total++
		g := api.EventGroup{Values: map[string]string{}, Count: 1}
		for _, by := range q.GroupBy {
			g.Values[by] = map[string]string{"type": string(e.Type), "agent": e.AgentID, "node": e.NodeID}[by]
		}
		if q.Bucket != "" {
			b := e.Timestamp.Truncate(map[string]time.Duration{"1m": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}[q.Bucket])
			g.Bucket = &b
		}
		k := groupKey(g)
		if i, ok := index[k]; ok {
			out.Groups[i].Count++
			continue
		}
		index[k] = len(out.Groups)
		out.Groups = append(out.Groups, g)
	}
	if q.Bucket == "" {
		sortGroups(out.Groups)
	}
	if q.Top > 0 {
		out.Groups = first(out.Groups, q.Top)
	}
	return out, nil
}

func (h *history) Agents(context.Context) ([]api.Agent, error) { return h.agents, nil }

func (h *history) Nodes(_ context.Context, agent string) ([]api.Node, error) {
	return slices.DeleteFunc(slices.Clone(h.nodes), func(n api.Node) bool { return agent != "" && n.Agent != agent }), nil
}

func (h *history) Status(context.Context) (*api.Status, error) { return &h.status, nil }

// fleet is the history the tests ask about, with now at Thursday 2026-03-05
// 09:15 UTC: three agents, agent-003 offline since 08:00; node-2 on agent-001
// crashed at 09:00 and was restarted; node-4 on agent-002 was stopped yesterday;
// db-1 on agent-001 failed to spawn at 08:30. agent-009 left last week.
func fleet() (*history, time.Time) {
	now := time.Date(2026, 3, 5, 9, 15, 0, 0, time.UTC)
	h := &history{}
	at := func(day, hour, min int) time.Time { return time.Date(2026, 3, day, hour, min, 0, 0, time.UTC) }
	add := func(t time.Time, typ events.Type, agent, node string, cause uint64) uint64 {
		e := api.Event{Seq: uint64(len(h.evs) + 1), Type: typ, Timestamp: t, AgentID: agent, NodeID: node, CausedBy: cause}
		if node != "" {
			e.NodeName = map[string]string{"n-2": "node-2", "n-4": "node-4", "n-7": "db-1"}[node]
		}
		e.Description = events.Describe(&e)
		h.evs = append(h.evs, e)
		return e.Seq
	}
	add(at(1, 10, 0), events.AgentRegistered, "agent-009", "", 0)
	add(at(2, 9, 0), events.AgentUnregistered, "agent-009", "", 0)
	for i, a := range []string{"agent-001", "agent-002", "agent-003"} {
		add(at(4, 8, i), events.AgentRegistered, a, "", 0)
	}
	add(at(4, 8, 5), events.ClusterHealthy, "", "", 0)
	r := add(at(4, 9, 0), events.SpawnRequested, "agent-001", "n-2", 0)
	add(at(4, 9, 0).Add(time.Second), events.SpawnSucceeded, "agent-001", "n-2", r)
	r = add(at(4, 9, 1), events.SpawnRequested, "agent-002", "n-4", 0)
	add(at(4, 9, 1).Add(time.Second), events.SpawnSucceeded, "agent-002", "n-4", r)
	r = add(at(4, 17, 0), events.StopRequested, "agent-002", "n-4", 0)
	add(at(4, 17, 0).Add(time.Second), events.StopSucceeded, "agent-002", "n-4", r)
	d := add(at(5, 7, 50), events.AgentDegraded, "agent-003", "", 0)
	add(at(5, 8, 0), events.AgentOffline, "agent-003", "", d)
	add(at(5, 8, 0), events.ClusterDegraded, "", "", 0)
	r = add(at(5, 8, 30), events.SpawnRequested, "agent-001", "n-7", 0)
	add(at(5, 8, 30).Add(time.Second), events.SpawnFailed, "agent-001", "n-7", r)
	c := add(at(5, 9, 0), events.NodeCrashed, "agent-001", "n-2", 0)
	add(at(5, 9, 0).Add(2*time.Second), events.NodeRestarted, "agent-001", "n-2", c)

	h.agents = []api.Agent{
		{Name: "agent-001", Status: "healthy"}, {Name: "agent-002", Status: "healthy"}, {Name: "agent-003", Status: "offline"},
	}
	h.nodes = []api.Node{
		{ID: "n-2", Name: "node-2", Agent: "agent-001", Status: "running", Restarts: 1},
		{ID: "n-7", Name: "db-1", Agent: "agent-001", Status: "failed"},
		{ID: "n-4", Name: "node-4", Agent: "agent-002", Status: "stopped"},
	}
	h.status = api.Status{
		Leader: api.StatusLeader{Name: "server-1"}, Servers: 3, ClusterHealth: "cluster_degraded",
		Agents: api.StatusAgents{Total: 3, Healthy: 2, Offline: 1},
		Nodes:  api.StatusNodes{Total: 3, Running: 1, Stopped: 1, Failed: 1},
	}
	h.names = ask.Names{Agents: []string{"agent-001", "agent-002", "agent-003", "agent-009"}}
	for _, n := range h.nodes {
		h.names.Nodes = append(h.names.Nodes, ask.Node{ID: n.ID, Name: n.Name, Agent: n.Agent})
	}
	return h, now
}

// seqs lists the events' seqs, for comparing answers.
func seqs(evs []api.Event) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = fmt.Sprint(e.Seq)
	}
	return strings.Join(s, ",")
}
