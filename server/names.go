package server

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
)

// The names the grid has known, and how the names in an event query become the
// values the event store filters by. Events name agents by name and nodes by ID. A
// name stays known after its agent unregisters or its node stops, so that a retired
// agent's or node's history can still be asked for by name.

// knownNames returns every agent name the grid has known (registered agents, former
// agents, and the agents of the nodes, should an agent have left before its
// unregistration was remembered) and every storage node, stopped ones too, read from
// one view of the state.
func (s *Server) knownNames() (ask.Names, error) {
	return namesIn(s.fsm.State())
}

func namesIn(state *fsm.State) (ask.Names, error) {
	agents, err := state.Agents()
	if err != nil {
		return ask.Names{}, err
	}
	former, err := state.FormerAgents()
	if err != nil {
		return ask.Names{}, err
	}
	nodes, err := state.Nodes("")
	if err != nil {
		return ask.Names{}, err
	}
	var names ask.Names
	for _, a := range agents {
		names.Agents = append(names.Agents, a.Name)
	}
	for _, a := range former {
		names.Agents = append(names.Agents, a.Name)
	}
	for _, n := range nodes {
		names.Agents = append(names.Agents, n.Agent)
		names.Nodes = append(names.Nodes, ask.Node{ID: n.ID, Name: n.DisplayName(), Agent: n.Agent})
	}
	slices.Sort(names.Agents)
	names.Agents = slices.Compact(names.Agents)
	return names, nil
}

// unknownEntityError names entities the grid has never known: a 404, where the
// other mistakes of a query are 400s.
type unknownEntityError struct {
	names []string
}

func (e *unknownEntityError) Error() string {
	return "entity: no agent or node named " + strings.Join(e.names, " or ")
}

// clusterTypes are the events of the entity cluster.
var clusterTypes = []events.Type{events.ClusterHealthy, events.ClusterDegraded, events.ClusterCritical, events.ClusterRestored}

// resolveNames returns the query parameters q of GET /v1/events or
// GET /v1/events/aggregate with their names resolved against names: node names
// become node IDs, and entity becomes the agent, node or type filter that selects
// the same events. Names in node that are no node's are left as they are, and match
// nothing. The error is an *unknownEntityError for an entity never known.
func resolveNames(q url.Values, names ask.Names) (url.Values, error) {
	ix := newNameIndex(names)
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	out.Del("entity")
	if v := q.Get("node"); v != "" {
		out.Set("node", ix.nodeIDs(v))
	}
	entities := splitNames(q.Get("entity"))
	if len(entities) == 0 {
		return out, nil
	}
	if q.Get("agent") != "" || q.Get("node") != "" {
		return nil, fmt.Errorf("entity cannot be combined with agent or node: name every agent and node in entity")
	}
	sel, err := ix.selection(entities)
	if err != nil {
		return nil, err
	}
	if err := sel.setFilter(out); err != nil {
		return nil, err
	}
	return out, nil
}

// nameIndex looks names up: agents by name, nodes by name and by ID.
type nameIndex struct {
	agents map[string]bool
	nodes  map[string]ask.Node
}

func newNameIndex(names ask.Names) nameIndex {
	ix := nameIndex{agents: make(map[string]bool, len(names.Agents)), nodes: make(map[string]ask.Node, 2*len(names.Nodes))}
	for _, a := range names.Agents {
		ix.agents[a] = true
	}
	for _, n := range names.Nodes {
		ix.nodes[n.ID] = n
		if n.Name != "" {
			ix.nodes[n.Name] = n
		}
	}
	return ix
}

// nodeIDs turns the names in a comma-separated list of nodes into IDs.
func (ix nameIndex) nodeIDs(list string) string {
	items := strings.Split(list, ",")
	for i, item := range items {
		if n, ok := ix.nodes[strings.TrimSpace(item)]; ok {
			items[i] = n.ID
		}
	}
	return strings.Join(items, ",")
}

// entitySelection is what the names of entity select.
type entitySelection struct {
	agents  []string
	nodes   []ask.Node
	cluster bool
}

// selection resolves entity names. The word cluster is always the cluster: an agent
// or node of that name is asked for with agent or node.
func (ix nameIndex) selection(entities []string) (entitySelection, error) {
	var (
		sel     entitySelection
		unknown []string
	)
	for _, name := range entities {
		n, isNode := ix.nodes[name]
		switch {
		case name == events.ClusterEntity:
			sel.cluster = true
		case ix.agents[name] && isNode:
			return sel, fmt.Errorf("entity: %s is both an agent and a node: ask with agent=%s or node=%s", name, name, n.ID)
		case ix.agents[name]:
			if !slices.Contains(sel.agents, name) {
				sel.agents = append(sel.agents, name)
			}
		case isNode:
			if !slices.Contains(sel.nodes, n) {
				sel.nodes = append(sel.nodes, n)
			}
		default:
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return sel, &unknownEntityError{names: unknown}
	}
	return sel, nil
}

// setFilter sets the one filter of q that selects the events of sel. The filters of
// a query combine with AND, so a selection that no single filter expresses is refused
// rather than answered wrong: a cluster event concerns no agent or node, and an
// agent's filter cannot also take in another agent's node.
func (sel entitySelection) setFilter(q url.Values) error {
	// A node whose agent is selected is in the agent's events already: node events
	// carry their agent.
	nodes := slices.DeleteFunc(slices.Clone(sel.nodes), func(n ask.Node) bool {
		return slices.Contains(sel.agents, n.Agent)
	})
	switch {
	case sel.cluster && (len(sel.agents) > 0 || len(nodes) > 0):
		return fmt.Errorf("entity: the cluster and %s cannot be asked for in one query, since cluster events concern no agent or node: ask for each in a query of its own", sel.describe(nodes))
	case len(sel.agents) > 0 && len(nodes) > 0:
		n := nodes[0]
		return fmt.Errorf("entity: agent %s and node %s (of agent %s) cannot be asked for in one query, since a query's filters combine with AND: ask for each in a query of its own",
			strings.Join(sel.agents, ", "), n.Name, n.Agent)
	case sel.cluster:
		return setClusterTypes(q)
	case len(sel.agents) > 0:
		q.Set("agent", strings.Join(sel.agents, ","))
	default:
		ids := make([]string, len(nodes))
		for i, n := range nodes {
			ids[i] = n.ID
		}
		q.Set("node", strings.Join(ids, ","))
	}
	return nil
}

// describe names the agents and nodes selected, for an error.
func (sel entitySelection) describe(nodes []ask.Node) string {
	var parts []string
	for _, a := range sel.agents {
		parts = append(parts, "agent "+a)
	}
	for _, n := range nodes {
		parts = append(parts, "node "+n.Name)
	}
	return strings.Join(parts, ", ")
}

// setClusterTypes narrows the type filter of q to the cluster's events.
func setClusterTypes(q url.Values) error {
	asked, err := events.ParseTypes(q.Get("type"))
	if err != nil {
		return fmt.Errorf("type: %w", err)
	}
	types := clusterTypes
	if len(asked) > 0 {
		types = slices.DeleteFunc(slices.Clone(clusterTypes), func(t events.Type) bool { return !slices.Contains(asked, t) })
	}
	if len(types) == 0 {
		return fmt.Errorf("entity: the cluster's events are of the types cluster_healthy, cluster_degraded, cluster_critical and cluster_restored, and type=%s selects none of them", q.Get("type"))
	}
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	q.Set("type", strings.Join(s, ","))
	return nil
}

// splitNames splits a comma-separated list of names, dropping empty items.
func splitNames(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
