package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
)

// TestNamesIn: the names are those of the agents registered and unregistered, and
// of every node, stopped ones too, by name or by ID when they have none.
func TestNamesIn(t *testing.T) {
	f, err := fsm.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cmds := []fsm.Command{
		&fsm.RegisterAgent{Name: "b", StorageRoot: root},
		&fsm.RegisterAgent{Name: "a", StorageRoot: root},
		&fsm.SpawnNode{ID: "n2", Agent: "b", Port: 5002},
		&fsm.SpawnNode{ID: "n1", Name: "web", Agent: "a", Port: 5001},
		&fsm.NodeStarted{ID: "n2", PID: 42},
		&fsm.StopNode{ID: "n2"},
		&fsm.NodeStopped{ID: "n2"},
		&fsm.DeregisterAgent{Name: "b"},
	}
	for i, cmd := range cmds {
		buf, err := fsm.Encode(cmd)
		if err == nil {
			err = fsm.Stamp(buf, time.Now())
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: buf}); resp != nil {
			t.Fatalf("%s: %v", cmd.Type(), resp)
		}
	}
	got, err := namesIn(f.State())
	if err != nil {
		t.Fatal(err)
	}
	want := ask.Names{
		Agents: []string{"a", "b"},
		Nodes:  []ask.Node{{ID: "n1", Name: "web", Agent: "a"}, {ID: "n2", Name: "n2", Agent: "b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names %+v, want %+v", got, want)
	}
}

// testGrid is a grid's names: agent a1 with node web (n1) and a nameless node n3,
// agent a2 with node db (n2), and a node named like an agent.
var testGrid = ask.Names{
	Agents: []string{"a1", "a2", "twin"},
	Nodes: []ask.Node{
		{ID: "n1", Name: "web", Agent: "a1"},
		{ID: "n2", Name: "db", Agent: "a2"},
		{ID: "n3", Name: "n3", Agent: "a1"},
		{ID: "n4", Name: "twin", Agent: "a2"},
	},
}

func TestResolveNames(t *testing.T) {
	cases := []struct {
		name, q string
		want    string // the parameters resolved, encoded
		status  int    // of the error, when there is one
		err     string
	}{
		{name: "nothing to resolve", q: "agent=a1&type=node_crashed", want: "agent=a1&type=node_crashed"},
		{name: "node names become IDs", q: "node=web,+n3,nobody", want: "node=n1%2Cn3%2Cnobody"},
		{name: "an empty entity names nothing", q: "entity=&agent=a1", want: "agent=a1"},
		{name: "an agent", q: "entity=a1&since=1h", want: "agent=a1&since=1h"},
		{name: "agents, repeated", q: "entity=a2,a1,a2", want: "agent=a2%2Ca1"},
		{name: "a node by name", q: "entity=web", want: "node=n1"},
		{name: "a node by ID", q: "entity=n2", want: "node=n2"},
		{name: "nodes of two agents", q: "entity=web,db,n1", want: "node=n1%2Cn2"},
		{name: "a node of a listed agent is the agent's", q: "entity=web,a1,n3", want: "agent=a1"},
		{name: "the cluster", q: "entity=cluster&limit=5", want: "limit=5&type=cluster_healthy%2Ccluster_degraded%2Ccluster_critical%2Ccluster_restored"},
		{name: "the cluster, within type", q: "entity=cluster&type=cluster_critical,node_crashed,cluster_healthy",
			want: "type=cluster_healthy%2Ccluster_critical"},

		{name: "never known", q: "entity=a1,ghost,ghost2", status: http.StatusNotFound,
			err: "entity: no agent or node named ghost or ghost2"},
		{name: "an agent and another agent's node", q: "entity=a1,web,db", status: http.StatusBadRequest,
			err: "entity: agent a1 and node db (of agent a2) cannot be asked for in one query, since a query's filters combine with AND: ask for each in a query of its own"},
		{name: "the cluster and an agent", q: "entity=cluster,a1", status: http.StatusBadRequest,
			err: "entity: the cluster and agent a1 cannot be asked for in one query, since cluster events concern no agent or node: ask for each in a query of its own"},
		{name: "the cluster and a node", q: "entity=db,cluster", status: http.StatusBadRequest, err: "the cluster and node db cannot"},
		{name: "the cluster, outside type", q: "entity=cluster&type=node_crashed", status: http.StatusBadRequest,
			err: "type=node_crashed selects none of them"},
		{name: "the cluster, a bad type", q: "entity=cluster&type=boom", status: http.StatusBadRequest, err: `type: unknown event type "boom"`},
		{name: "with agent", q: "entity=a1&agent=a1", status: http.StatusBadRequest, err: "entity cannot be combined with agent or node"},
		{name: "with node", q: "entity=a1&node=web", status: http.StatusBadRequest, err: "entity cannot be combined with agent or node"},
		{name: "an agent and a node of one name", q: "entity=twin", status: http.StatusBadRequest,
			err: "entity: twin is both an agent and a node: ask with agent=twin or node=n4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := resolveNames(q, testGrid)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if got.Encode() != tc.want {
					t.Errorf("resolved %s, want %s", got.Encode(), tc.want)
				}
				return
			}
			var unknown *unknownEntityError
			status := http.StatusBadRequest
			if errors.As(err, &unknown) {
				status = http.StatusNotFound
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || status != tc.status {
				t.Errorf("error %v (status %d), want %d with %q", err, status, tc.status, tc.err)
			}
		})
	}
}

// entitySeed derives twelve events: agent a1 with node web (n1), agent a2 with node
// db (n2), which stops before a2 unregisters, and then a1's degradation.
//
//	1 agent_registered a1    2 cluster_healthy     3 agent_registered a2
//	4 spawn_requested web    5 spawn_succeeded web
//	6 spawn_requested db     7 spawn_succeeded db  8 stop_requested db   9 stop_succeeded db
//	10 agent_unregistered a2 11 agent_degraded a1  12 cluster_critical
func entitySeed(t *testing.T, s *Server) {
	t.Helper()
	root := t.TempDir()
	for _, cmd := range []fsm.Command{
		&fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: root},
		&fsm.RegisterAgent{Name: "a2", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: root},
		&fsm.SpawnNode{ID: "n1", Name: "web", Agent: "a1", Port: 5001},
		&fsm.NodeStarted{ID: "n1", PID: 41},
		&fsm.SpawnNode{ID: "n2", Name: "db", Agent: "a2", Port: 5002},
		&fsm.NodeStarted{ID: "n2", PID: 42},
		&fsm.StopNode{ID: "n2"},
		&fsm.NodeStopped{ID: "n2"},
		&fsm.DeregisterAgent{Name: "a2"},
		&fsm.SetAgentStatus{Name: "a1", Status: fsm.AgentDegraded, LastSeen: time.Now()},
	} {
		evApply(t, s, cmd)
	}
	want := []events.Type{events.AgentRegistered, events.ClusterHealthy, events.AgentRegistered,
		events.SpawnRequested, events.SpawnSucceeded, events.SpawnRequested, events.SpawnSucceeded,
		events.StopRequested, events.StopSucceeded, events.AgentUnregistered, events.AgentDegraded, events.ClusterCritical}
	if m := evMeta(t, s); m.LastSeq != uint64(len(want)) {
		t.Fatalf("last seq %d, want %d", m.LastSeq, len(want))
	}
	for i, typ := range want {
		if e := s.feed.get(uint64(i + 1)); e == nil || e.Type != typ {
			t.Fatalf("event %d is %+v, want %s", i+1, e, typ)
		}
	}
}

// TestEventsByEntity lists and counts events by entity on a real server: an agent
// with its nodes' events, nodes by name and ID, the cluster, an agent that
// unregistered; names never known are 404s, and mixes no filter expresses 400s.
func TestEventsByEntity(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	entitySeed(t, s)
	evWaitShipped(t, s)
	cl := apiClient(t, s)
	byEntity := func(names ...string) api.EventQuery { return api.EventQuery{Entities: names, Ascending: true} }
	evCheckLists(t, cl, []evListCase{
		{"an agent and its nodes", byEntity("a1"), "[1 4 5 11]"},
		{"an agent that unregistered", byEntity("a2"), "[3 6 7 8 9 10]"},
		{"two agents", byEntity("a1", "a2"), "[1 3 4 5 6 7 8 9 10 11]"},
		{"a node by name", byEntity("web"), "[4 5]"},
		{"a node by ID", byEntity("n1"), "[4 5]"},
		{"a stopped node", byEntity("db"), "[6 7 8 9]"},
		{"nodes of two agents", byEntity("web", "db"), "[4 5 6 7 8 9]"},
		{"a node of a listed agent", byEntity("db", "a2"), "[3 6 7 8 9 10]"},
		{"the cluster", byEntity("cluster"), "[2 12]"},
		{"the cluster, newest first", api.EventQuery{Entities: []string{"cluster"}}, "[12 2]"},
		{"the cluster within type", api.EventQuery{Entities: []string{"cluster"}, Types: []events.Type{events.ClusterCritical}}, "[12]"},
		{"an agent within type", api.EventQuery{Entities: []string{"a1"}, Types: []events.Type{events.SpawnSucceeded}}, "[5]"},
		{"node names still resolve", api.EventQuery{Nodes: []string{"db"}, Ascending: true}, "[6 7 8 9]"},
	})
	if got := strings.Join(evListAll(t, cl, api.EventQuery{Entities: []string{"a1"}, Limit: 3}), " "); got != "[11 5 4] [1]" {
		t.Errorf("pages of entity=a1: %s, want [11 5 4] [1]", got)
	}

	counts, err := cl.EventCounts(context.Background(), api.EventCountQuery{Entities: []string{"a2"}, GroupBy: []string{"node"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := evGroups(counts, "node"); got != "node=n2:4 node=:2 /6" {
		t.Errorf("counts of entity=a2 by node: %s", got)
	}

	for _, tc := range []struct {
		q      string
		status int
		msg    string
	}{
		{"entity=ghost", http.StatusNotFound, "entity: no agent or node named ghost"},
		{"entity=a1,db", http.StatusBadRequest, "agent a1 and node db (of agent a2) cannot be asked for in one query"},
		{"entity=cluster,web", http.StatusBadRequest, "the cluster and node web cannot be asked for in one query"},
		{"entity=a1&agent=a1", http.StatusBadRequest, "entity cannot be combined with agent or node"},
		{"entity=cluster&type=node_crashed", http.StatusBadRequest, "selects none of them"},
	} {
		for _, path := range []string{"/v1/events", "/v1/events/aggregate"} {
			entityExpect(t, s, path+"?"+tc.q, tc.status, tc.msg)
		}
	}
}

// entityExpect checks that GET uri is refused with status and an error naming msg.
func entityExpect(t *testing.T, s *Server, uri string, status int, msg string) {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + uri)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", uri, err)
	}
	if resp.StatusCode != status || !strings.Contains(body.Error, msg) {
		t.Errorf("GET %s: %d %q, want %d with %q", uri, resp.StatusCode, body.Error, status, msg)
	}
}
