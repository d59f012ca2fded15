package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/sutragrid/grid/events"
)

// AgentStatus is an agent's health as the leader last recorded it.
type AgentStatus string

const (
	AgentHealthy  AgentStatus = "healthy"
	AgentDegraded AgentStatus = "degraded"
	AgentOffline  AgentStatus = "offline"
)

// Valid reports whether s is one of the known statuses.
func (s AgentStatus) Valid() bool {
	return s == AgentHealthy || s == AgentDegraded || s == AgentOffline
}

// Agent is a row of the agents table.
type Agent struct {
	Name     string      `json:"name"`
	Address  string      `json:"address"`
	Hostname string      `json:"hostname"`
	Platform string      `json:"platform"`
	Version  string      `json:"version"`
	Status   AgentStatus `json:"status"`
	MaxNodes int         `json:"max_nodes"`
	// StorageRoot is the directory inside which the agent's nodes keep their data.
	StorageRoot string `json:"storage_root"`
	// ReservedPaths and ReservedPorts are the agent's own files and ports, which no
	// node may use.
	ReservedPaths []string `json:"reserved_paths,omitempty"`
	ReservedPorts []int    `json:"reserved_ports,omitempty"`
	// Isolation says how the agent isolates its nodes, as it reported when it last
	// registered ("" from agents that predate it).
	Isolation string `json:"isolation,omitempty"`
	// LastSeen is when the leader last heard from the agent before it stopped being
	// healthy (zero while healthy, or if unknown): its downtime counts from there.
	LastSeen time.Time `json:"last_seen,omitempty"`
	// RegisteredAt is when the agent first registered; a re-registration keeps it.
	RegisteredAt time.Time `json:"registered_at"`
	// StatusChangedAt is when Status last changed.
	StatusChangedAt time.Time `json:"status_changed_at"`
	// CreateIndex and ModifyIndex are the Raft indexes that inserted and last changed the row.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// FormerAgent is a row of the former_agents table: an agent that unregistered. The
// agents table forgets it, but the events name it, so its name stays known and its
// history answerable. The row goes when the name registers again.
type FormerAgent struct {
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
	// RegisteredAt is when the agent first registered; UnregisteredAt when it left.
	RegisteredAt   time.Time `json:"registered_at"`
	UnregisteredAt time.Time `json:"unregistered_at"`
	// ModifyIndex is the Raft index of the unregistration.
	ModifyIndex uint64 `json:"modify_index"`
}

const (
	tableAgents = "agents"
	// tableFormerAgents holds the agents that unregistered.
	tableFormerAgents = "former_agents"
	tableNodes        = "nodes"
	// tableOutbox holds derived events until the event store has them.
	tableOutbox = "outbox"
	// tableMeta holds singleton rows, keyed by name.
	tableMeta  = "meta"
	metaEvents = "events"
)

// EventMeta is the event pipeline's replicated counters.
type EventMeta struct {
	ID string `json:"id"`
	// LastSeq is the seq of the last event derived; the next is LastSeq+1.
	LastSeq uint64 `json:"last_seq"`
	// ShippedSeq is the last seq the event store acknowledged; events after it wait
	// in the outbox.
	ShippedSeq uint64 `json:"shipped_seq"`
	// ClusterHealth is the type of the last cluster event ("" before the first).
	ClusterHealth string `json:"cluster_health"`
	// LastTime is the last event's timestamp. An event's time is its command's, or
	// this if that is earlier, so that times never go back as seqs go up: servers
	// stamp commands before Raft orders them, and clocks differ between leaders.
	LastTime time.Time `json:"last_time,omitempty"`
	// Digest is the running digest of the history up to LastSeq (digest.go); "" in
	// a state whose history began before digests were kept, until its next event.
	Digest string `json:"digest,omitempty"`
	// Stores are the event stores' cursors (eventstores.go). They are part of the
	// event pipeline, so a snapshot restore carries them forward with the counters.
	Stores []StoreCursor `json:"stores,omitempty"`
}

// nextTime returns the timestamp of the next event of a command stamped t: t, or the
// last event's if t is earlier; and records it as the last.
func (m *EventMeta) nextTime(t time.Time) time.Time {
	if t.Before(m.LastTime) {
		t = m.LastTime
	}
	m.LastTime = t
	return t
}

// table describes one memdb table: its schema, and how to decode its rows from a
// snapshot. Adding a table to the state is adding an entry here.
type table struct {
	schema *memdb.TableSchema
	decode func(raw []byte) (any, error)
}

var tables = []table{
	{
		schema: &memdb.TableSchema{
			Name: tableAgents,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				// status tells the cluster's health without reading every agent
				// (applyCtx.healthType).
				"status": {Name: "status", Indexer: &memdb.StringFieldIndex{Field: "Status"}},
			},
		},
		decode: decodeRow[Agent],
	},
	{
		// Snapshots taken before this table existed have no rows of it: they restore
		// with no former agents.
		schema: &memdb.TableSchema{
			Name: tableFormerAgents,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		decode: decodeRow[FormerAgent],
	},
	{
		schema: &memdb.TableSchema{
			Name: tableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id":    {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"agent": {Name: "agent", Indexer: &memdb.StringFieldIndex{Field: "Agent"}},
			},
		},
		decode: decodeRow[Node],
	},
	{
		schema: &memdb.TableSchema{
			Name: tableOutbox,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
			},
		},
		decode: decodeRow[events.Event],
	},
	{
		schema: &memdb.TableSchema{
			Name: tableMeta,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			},
		},
		decode: decodeRow[EventMeta],
	},
	aclPoliciesTable, aclTokensTable, aclMetaTable, // acl.go
	autopilotTable, // autopilot.go
}

func schema() *memdb.DBSchema {
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, t := range tables {
		s.Tables[t.schema.Name] = t.schema
	}
	return s
}

func tableByName(name string) (table, bool) {
	for _, t := range tables {
		if t.schema.Name == name {
			return t, true
		}
	}
	return table{}, false
}

// State is a consistent, read-only view of the replicated state at one moment.
// Rows it returns are shared with the store: callers must not modify them.
type State struct {
	txn *memdb.Txn
}

// Agents returns every agent, ordered by name.
func (s *State) Agents() ([]*Agent, error) {
	it, err := s.txn.Get(tableAgents, "id")
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	var out []*Agent
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Agent))
	}
	return out, nil
}

// Agent returns the agent called name, or nil if there is none.
func (s *State) Agent(name string) (*Agent, error) {
	raw, err := s.txn.First(tableAgents, "id", name)
	if err != nil {
		return nil, fmt.Errorf("get agent %s: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*Agent), nil
}

// FormerAgents returns every agent that unregistered and has not registered again,
// ordered by name.
func (s *State) FormerAgents() ([]*FormerAgent, error) {
	it, err := s.txn.Get(tableFormerAgents, "id")
	if err != nil {
		return nil, fmt.Errorf("list former agents: %w", err)
	}
	var out []*FormerAgent
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*FormerAgent))
	}
	return out, nil
}

// Nodes returns every storage node, ordered by ID; with agent set, only its nodes.
func (s *State) Nodes(agent string) ([]*Node, error) {
	return nodes(s.txn, agent)
}

func nodes(txn *memdb.Txn, agent string) ([]*Node, error) {
	var (
		it  memdb.ResultIterator
		err error
	)
	if agent == "" {
		it, err = txn.Get(tableNodes, "id")
	} else {
		it, err = txn.Get(tableNodes, "agent", agent)
	}
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []*Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Node))
	}
	return out, nil
}

// NodesWatch returns every node, ordered by ID, and a channel that is closed when the
// nodes table changes after this view. A snapshot restore replaces the whole store
// without closing it: watchers should also wake on a timer.
func (s *State) NodesWatch() ([]*Node, <-chan struct{}, error) {
	it, err := s.txn.Get(tableNodes, "id")
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []*Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Node))
	}
	return out, it.WatchCh(), nil
}

// Node returns the node with id, or nil if there is none.
func (s *State) Node(id string) (*Node, error) {
	raw, err := s.txn.First(tableNodes, "id", id)
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", id, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*Node), nil
}

// EventMeta returns the event pipeline's counters.
func (s *State) EventMeta() (EventMeta, error) {
	raw, err := s.txn.First(tableMeta, "id", metaEvents)
	if err != nil {
		return EventMeta{}, err
	}
	if m, ok := raw.(*EventMeta); ok {
		return *m, nil
	}
	return EventMeta{ID: metaEvents}, nil
}

// Outbox returns up to limit events waiting for the event store, with seq > after,
// in seq order. Events are shared with the store: callers must not modify them.
func (s *State) Outbox(after uint64, limit int) ([]*events.Event, error) {
	it, err := s.txn.LowerBound(tableOutbox, "id", after+1)
	if err != nil {
		return nil, err
	}
	var out []*events.Event
	for raw := it.Next(); raw != nil && len(out) < limit; raw = it.Next() {
		out = append(out, raw.(*events.Event))
	}
	return out, nil
}

// OutboxEvent returns the waiting event with seq, or nil.
func (s *State) OutboxEvent(seq uint64) (*events.Event, error) {
	raw, err := s.txn.First(tableOutbox, "id", seq)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*events.Event), nil
}
