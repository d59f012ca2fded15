package answer

import (
	"slices"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
)

// clusterTypes are the events of the entity "cluster".
var clusterTypes = []events.Type{events.ClusterHealthy, events.ClusterDegraded, events.ClusterCritical, events.ClusterRestored}

// directory tells what each name the grid has known is.
type directory struct {
	agents map[string]bool
	// nodes maps a node's name and its ID to the node.
	nodes map[string]ask.Node
}

func newDirectory(n ask.Names) directory {
	d := directory{agents: map[string]bool{}, nodes: map[string]ask.Node{}}
	for _, a := range n.Agents {
		d.agents[a] = true
	}
	for _, nd := range n.Nodes {
		if nd.Name == "" {
			nd.Name = nd.ID
		}
		d.nodes[nd.Name] = nd
		d.nodes[nd.ID] = nd
	}
	return d
}

// nodeName returns the name of the node with id, or id when the node is unknown.
func (d directory) nodeName(id string) string {
	if n, ok := d.nodes[id]; ok {
		return n.Name
	}
	return id
}

// scopes splits the interpretation's entities into the groups one API request
// can filter on. The API combines its filters with AND, so agents, nodes of other
// agents, and the cluster each need a request of their own; a node of an agent
// also named is already in the agent's events. No entity is one scope: the fleet.
func (r *run) scopes() [][]string {
	if len(r.in.Entities) == 0 {
		return [][]string{nil}
	}
	var agents, nodes, cluster []string
	for _, e := range r.in.Entities {
		switch {
		case e == "cluster":
			cluster = []string{e}
		case r.names.agents[e]:
			agents = append(agents, e)
		default:
			nodes = append(nodes, e)
		}
	}
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return slices.Contains(agents, r.names.nodes[n].Agent) })
	var out [][]string
	for _, s := range [][]string{agents, nodes, cluster} {
		if len(s) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// types is the interpretation's type filter with its minimum severity applied:
// nil for all types. The event list takes no severity, so a severity becomes the
// types that have it, as `grid event list -severity` does.
func (r *run) types() []events.Type {
	ts := r.in.Types
	if r.in.Severity == "" {
		return ts
	}
	atLeast := events.TypesAtLeast(events.Severity(r.in.Severity))
	if ts == nil {
		return atLeast
	}
	return slices.DeleteFunc(slices.Clone(ts), func(t events.Type) bool { return !slices.Contains(atLeast, t) })
}

// emptyFilter reports a type filter that nothing can match: "errors" of a kind
// that has none. The API reads an empty list as "all", so it must not be sent.
func (r *run) emptyFilter() bool {
	return r.in.Severity != "" && r.in.Types != nil && len(r.types()) == 0
}

// eventQuery is the list request for one scope over the interpretation's range.
func (r *run) eventQuery(scope []string) api.EventQuery {
	return api.EventQuery{
		Entities:  scope,
		Types:     r.types(),
		Since:     timeParam(r.in.Since),
		Until:     timeParam(r.in.Until),
		Ascending: r.in.Order == "asc",
	}
}

// countQuery is the aggregate request for one scope over the interpretation's range.
func (r *run) countQuery(scope []string) api.EventCountQuery {
	return api.EventCountQuery{
		Entities: scope,
		Types:    r.types(),
		Since:    timeParam(r.in.Since),
		Until:    timeParam(r.in.Until),
	}
}

// timeParam writes t as the API takes it; nil is unbounded.
func timeParam(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// groupParam maps the contract's group_by keys to the aggregate API's.
func groupParam(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		switch k {
		case "agent_id":
			out[i] = "agent"
		case "node_id":
			out[i] = "node"
		default:
			out[i] = k
		}
	}
	return out
}

// eventKey orders events as the API does: by time, then seq.
func eventLess(a, b *api.Event) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	return a.Seq < b.Seq
}

// mergeEvents merges lists from several scopes in the asked order, without
// repeats, keeping the first max.
func mergeEvents(lists [][]api.Event, asc bool, max int) []api.Event {
	var all []api.Event
	seen := map[uint64]bool{}
	for _, l := range lists {
		for _, e := range l {
			if !seen[e.Seq] {
				seen[e.Seq] = true
				all = append(all, e)
			}
		}
	}
	slices.SortFunc(all, func(a, b api.Event) int {
		c := 1
		if eventLess(&a, &b) {
			c = -1
		}
		if !asc {
			c = -c
		}
		return c
	})
	if len(all) > max {
		all = all[:max]
	}
	return all
}
