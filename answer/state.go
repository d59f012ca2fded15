package answer

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/sutragrid/grid/api"
)

// state answers state questions from the present state, not the history.
func (r *run) state() error {
	switch r.in.EntitiesKind {
	case "agent":
		return r.agentsNow()
	case "node":
		return r.nodesNow()
	}
	return r.clusterNow()
}

// agentsNow lists the agents asked about, in the state asked about.
func (r *run) agentsNow() error {
	r.record("/v1/agents", nil)
	all, err := r.src.Agents(r.ctx)
	if err != nil {
		return err
	}
	scope := slices.DeleteFunc(slices.Clone(all), func(a api.Agent) bool {
		return len(r.in.Entities) > 0 && !slices.Contains(r.in.Entities, a.Name)
	})
	want := r.in.State
	if want == "running" {
		want = "healthy" // an agent that runs is a healthy one
	}
	match := slices.DeleteFunc(slices.Clone(scope), func(a api.Agent) bool { return want != "" && a.Status != want })
	if match == nil {
		match = []api.Agent{}
	}
	r.answer = api.Answer{Kind: api.AnswerState, Agents: match}
	statuses := make([]string, len(scope))
	names := make([]string, len(match))
	for i, a := range scope {
		statuses[i] = a.Status
	}
	for i, a := range match {
		names[i] = a.Name
	}
	r.summary = stateSummary("agent", "agents", len(scope), want, names, statuses, "")
	return nil
}

// nodesNow lists the nodes asked about (of the agents named, or the nodes named),
// in the state asked about.
func (r *run) nodesNow() error {
	var agents, nodes []string
	for _, e := range r.in.Entities {
		if r.names.agents[e] {
			agents = append(agents, e)
		} else {
			nodes = append(nodes, e)
		}
	}
	var all []api.Node
	if len(agents) == 0 {
		agents = []string{""}
	}
	for _, a := range agents {
		v := url.Values{}
		if a != "" {
			v.Set("agent", a)
		}
		r.record("/v1/nodes", v)
		ns, err := r.src.Nodes(r.ctx, a)
		if err != nil {
			return err
		}
		all = append(all, ns...)
	}
	scope := slices.DeleteFunc(all, func(n api.Node) bool {
		return len(nodes) > 0 && !slices.Contains(nodes, n.Name) && !slices.Contains(nodes, n.ID)
	})
	match := slices.DeleteFunc(slices.Clone(scope), func(n api.Node) bool { return !nodeIs(n.Status, r.in.State) })
	if match == nil {
		match = []api.Node{}
	}
	r.answer = api.Answer{Kind: api.AnswerState, Nodes: match}
	statuses := make([]string, len(scope))
	names := make([]string, len(match))
	for i, n := range scope {
		statuses[i] = n.Status
	}
	for i, n := range match {
		names[i] = n.Name
	}
	where := ""
	if agents[0] != "" {
		where = " on " + joinAnd(agents)
	}
	r.summary = stateSummary("node", "nodes", len(scope), r.in.State, names, statuses, where)
	return nil
}

// nodeIs reports whether a node of status is in state. A node whose agent is
// offline (lost) is down as surely as a failed one.
func nodeIs(status, state string) bool {
	switch state {
	case "":
		return true
	case "failed":
		return status == api.NodeFailed || status == api.NodeLost
	}
	return status == state
}

// stateSummary writes "2 of 5 agents are offline: agent-003, agent-004.", or
// without a state "5 agents: 4 healthy, 1 offline."
func stateSummary(one, many string, total int, state string, names, statuses []string, where string) string {
	if state == "" {
		if total == 0 {
			return fmt.Sprintf("There are no %s%s.", many, where)
		}
		return fmt.Sprintf("%d %s%s: %s.", total, plural(total, one, many), where, tally(statuses))
	}
	n := len(names)
	switch {
	case total == 0:
		return fmt.Sprintf("There are no %s%s.", many, where)
	case n == 0:
		return fmt.Sprintf("No %s%s is %s (%d %s: %s).", one, where, state, total, plural(total, one, many), tally(statuses))
	case n == 1 && total == 1:
		return fmt.Sprintf("The only %s%s, %s, is %s.", one, where, names[0], state)
	case n == total:
		return fmt.Sprintf("All %d %s%s are %s: %s.", total, many, where, state, joinAnd(first(names, 10)))
	}
	verb := plural(n, "is", "are")
	return fmt.Sprintf("%d of %d %s%s %s %s: %s.", n, total, plural(total, one, many), where, verb, state, listed(names))
}

// listed names up to 10 items, then says how many more.
func listed(names []string) string {
	if len(names) <= 10 {
		return joinAnd(names)
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:10], ", "), len(names)-10)
}

// tally counts statuses, most common first: "4 healthy, 1 offline".
func tally(statuses []string) string {
	counts := map[string]int{}
	var order []string
	for _, s := range statuses {
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	slices.SortStableFunc(order, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[s], s)
	}
	return strings.Join(parts, ", ")
}

// clusterNow answers the cluster's health from GET /v1/status.
func (r *run) clusterNow() error {
	r.record("/v1/status", nil)
	st, err := r.src.Status(r.ctx)
	if err != nil {
		return err
	}
	c := &api.ClusterSummary{
		Health:  strings.TrimPrefix(st.ClusterHealth, "cluster_"),
		Servers: st.Servers,
		Leader:  st.Leader.Name,
		Agents:  st.Agents,
		Nodes:   st.Nodes,
	}
	r.answer = api.Answer{Kind: api.AnswerState, Cluster: c}
	r.summary = clusterSummary(c, r.in.State)
	return nil
}

func clusterSummary(c *api.ClusterSummary, state string) string {
	health := c.Health
	if health == "" {
		health = "unknown: no agent has registered"
	}
	leader := "with no leader"
	if c.Leader != "" {
		leader = "led by " + c.Leader
	}
	s := fmt.Sprintf("The cluster is %s: %d of %d %s healthy, %d of %d %s running; %d %s, %s.",
		health, c.Agents.Healthy, c.Agents.Total, plural(c.Agents.Total, "agent", "agents"),
		c.Nodes.Running, c.Nodes.Total, plural(c.Nodes.Total, "node", "nodes"),
		c.Servers, plural(c.Servers, "server", "servers"), leader)
	switch {
	case state == "":
		return s
	case state == c.Health:
		return "Yes. " + s
	}
	return "No. " + s
}
