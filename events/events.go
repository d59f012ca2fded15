// Package events defines Grid's events: the 18 typed records of everything that
// changes in a fleet, their JSON form, one-line descriptions, severities and causal
// links. The package knows nothing of Raft or storage: fsm/ derives events from the
// commands it applies, server/ ships them to the event store, query layers read them.
package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type names what happened.
type Type string

// The event types: the seed's 17, and cluster_restored.
const (
	AgentRegistered   Type = "agent_registered"
	AgentHeartbeat    Type = "agent_heartbeat" // sampled; off by default
	AgentDegraded     Type = "agent_degraded"
	AgentOffline      Type = "agent_offline"
	AgentRecovered    Type = "agent_recovered"
	AgentUnregistered Type = "agent_unregistered"

	SpawnRequested Type = "spawn_requested"
	SpawnSucceeded Type = "spawn_succeeded"
	SpawnFailed    Type = "spawn_failed"
	StopRequested  Type = "stop_requested"
	StopSucceeded  Type = "stop_succeeded"
	StopFailed     Type = "stop_failed"
	NodeCrashed    Type = "node_crashed"
	NodeRestarted  Type = "node_restarted"

	ClusterHealthy  Type = "cluster_healthy"
	ClusterDegraded Type = "cluster_degraded"
	ClusterCritical Type = "cluster_critical"

	// ClusterRestored records an operator's snapshot restore: the state went back to
	// the snapshot's, the history went on (seqs continue after the highest assigned).
	ClusterRestored Type = "cluster_restored"
)

// Types lists every type in a stable order.
var Types = []Type{
	AgentRegistered, AgentHeartbeat, AgentDegraded, AgentOffline, AgentRecovered, AgentUnregistered,
	SpawnRequested, SpawnSucceeded, SpawnFailed, StopRequested, StopSucceeded, StopFailed, NodeCrashed, NodeRestarted,
	ClusterHealthy, ClusterDegraded, ClusterCritical, ClusterRestored,
}

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// ParseTypes parses a comma-separated list of types, rejecting unknown ones.
func ParseTypes(s string) ([]Type, error) {
	var out []Type
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		t := Type(f)
		if !t.Valid() {
			return nil, fmt.Errorf("unknown event type %q", f)
		}
		out = append(out, t)
	}
	return out, nil
}

// Severity ranks events for filtering and display.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

// Severities lists the severities from the least to the most severe.
var Severities = []Severity{SeverityInfo, SeverityWarning, SeverityError, SeverityCritical}

// rank is s's place in Severities; -1 for an unknown severity.
func (s Severity) rank() int {
	for i, v := range Severities {
		if v == s {
			return i
		}
	}
	return -1
}

// ParseSeverity reads a severity name.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.TrimSpace(s))
	if v.rank() < 0 {
		return "", fmt.Errorf("unknown severity %q: want info, warning, error or critical", s)
	}
	return v, nil
}

// TypesAtLeast returns the event types of severity min or more, in the order of Types.
func TypesAtLeast(min Severity) []Type {
	var out []Type
	for _, t := range Types {
		if t.Severity().rank() >= min.rank() {
			out = append(out, t)
		}
	}
	return out
}

// Severity returns the severity of events of type t.
func (t Type) Severity() Severity {
	switch t {
	case AgentDegraded, StopFailed, ClusterDegraded:
		return SeverityWarning
	case AgentOffline, SpawnFailed, NodeCrashed:
		return SeverityError
	case ClusterCritical:
		return SeverityCritical
	}
	return SeverityInfo
}

// Event is one thing that happened. Fields that do not apply to its type are empty
// and left out of its JSON. Timestamp is the time the leader stamped on the command
// the event was derived from, so every server derives the same event.
type Event struct {
	Seq       uint64    `json:"seq"`
	Type      Type      `json:"type"`
	Timestamp time.Time `json:"timestamp"`

	AgentID string `json:"agent_id,omitempty"`
	NodeID  string `json:"node_id,omitempty"`
	// NodeName is the node's name (its ID when it was spawned without one).
	NodeName      string `json:"node_name,omitempty"`
	Hostname      string `json:"hostname,omitempty"`
	Platform      string `json:"platform,omitempty"`
	Address       string `json:"address,omitempty"`
	Port          int    `json:"port,omitempty"`
	StoragePath   string `json:"storage_path,omitempty"`
	MemoryLimitMB int    `json:"memory_limit_mb,omitempty"`
	// CPULimit is a spawned node's CPU limit in cores; 0 (left out) means none.
	CPULimit float64 `json:"cpu_limit,omitempty"`
	PID      int     `json:"pid,omitempty"`
	Error    string  `json:"error,omitempty"`
	// ExitCode is set for exits; -1 means killed by a signal or unknown.
	ExitCode              *int       `json:"exit_code,omitempty"`
	Signal                string     `json:"signal,omitempty"`
	RestartCount          int        `json:"restart_count,omitempty"`
	NewPID                int        `json:"new_pid,omitempty"`
	SecondsSinceHeartbeat float64    `json:"seconds_since_heartbeat,omitempty"`
	DowntimeSeconds       float64    `json:"downtime_seconds,omitempty"`
	LastSeen              *time.Time `json:"last_seen,omitempty"`

	// Cluster events: the agent totals after the change, and why it changed.
	TotalAgents    int    `json:"total_agents,omitempty"`
	HealthyAgents  int    `json:"healthy_agents,omitempty"`
	DegradedAgents int    `json:"degraded_agents,omitempty"`
	OfflineAgents  int    `json:"offline_agents,omitempty"`
	Reason         string `json:"reason,omitempty"`

	// RequestedBy names the ACL token of a spawn, stop or restore request: its name,
	// or its accessor ID when it has none ("" without ACLs).
	RequestedBy string `json:"requested_by,omitempty"`

	// SnapshotIndex and SnapshotTime identify the snapshot a cluster_restored event
	// restored: its Raft index, and when it was saved (nil when the archive does not
	// say).
	SnapshotIndex uint64     `json:"snapshot_index,omitempty"`
	SnapshotTime  *time.Time `json:"snapshot_time,omitempty"`

	// CausedBy is the seq of the event that caused this one, if any.
	CausedBy uint64 `json:"caused_by,omitempty"`
	// Description is one line for people.
	Description string `json:"description"`
}

// ReasonOOMKilled is the reason of a node_crashed event when the kernel killed the
// node for going past the memory limit of its cgroup; MemoryLimitMB is then the limit.
const ReasonOOMKilled = "oom_killed"

// IDPrefix starts the ID of every event concept in the event store.
const IDPrefix = "event-"

// ID is the event's ID in the event store, derived from its seq so that a resent
// event is stored once. Zero-padded, IDs sort in seq order.
func (e *Event) ID() string { return EventID(e.Seq) }

// EventID returns the ID of the event with seq.
func EventID(seq uint64) string { return fmt.Sprintf("%s%020d", IDPrefix, seq) }

// SeqOf parses an event ID back into its seq.
func SeqOf(id string) (uint64, bool) {
	if !strings.HasPrefix(id, IDPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(strings.TrimPrefix(id, IDPrefix), 10, 64)
	return seq, err == nil
}

// Severity returns the event's severity.
func (e *Event) Severity() Severity { return e.Type.Severity() }

// Entities returns the IDs of the entity concepts the event concerns, in the event
// store: "agent:NAME", "node:ID", and "cluster" for cluster events.
func (e *Event) Entities() []string {
	var out []string
	if e.AgentID != "" {
		out = append(out, AgentEntity(e.AgentID))
	}
	if e.NodeID != "" {
		out = append(out, NodeEntity(e.NodeID))
	}
	if strings.HasPrefix(string(e.Type), "cluster_") {
		out = append(out, ClusterEntity)
	}
	return out
}

// Entity concept IDs.
const ClusterEntity = "cluster"

// The "kind" attribute tells event concepts from entity concepts in the event store;
// every event query filters on kind=event.
const (
	KindEvent   = "event"
	KindAgent   = "agent"
	KindNode    = "node"
	KindCluster = "cluster"
)

// EntityKind returns the kind and name of an entity concept ID.
func EntityKind(id string) (kind, name string) {
	if id == ClusterEntity {
		return KindCluster, ""
	}
	kind, name, _ = strings.Cut(id, ":")
	return kind, name
}

func AgentEntity(name string) string { return "agent:" + name }
func NodeEntity(id string) string    { return "node:" + id }

// Association types in the event store.
const (
	// AssocHasEvent links an entity concept to each event that concerns it.
	AssocHasEvent = "has_event"
	// AssocCausedBy links an event to the event that caused it.
	AssocCausedBy = "caused_by"
)

// Attributes returns the indexed attributes of the event's concept in the event store.
func (e *Event) Attributes() map[string]string {
	a := map[string]string{
		"kind":     KindEvent,
		"type":     string(e.Type),
		"severity": string(e.Severity()),
		"seq":      strconv.FormatUint(e.Seq, 10),
	}
	if e.AgentID != "" {
		a["agent_id"] = e.AgentID
	}
	if e.NodeID != "" {
		a["node_id"] = e.NodeID
	}
	return a
}
