package fsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sutragrid/grid/restart"
)

// NodeStatus is a storage node's lifecycle status.
type NodeStatus string

const (
	NodeStatusPending    NodeStatus = "pending"    // recorded; its agent is starting it
	NodeStatusRunning    NodeStatus = "running"    // passed its health check
	NodeStatusRestarting NodeStatus = "restarting" // crashed; its agent will restart it
	NodeStatusStopping   NodeStatus = "stopping"   // a stop was requested
	NodeStatusStopped    NodeStatus = "stopped"    // stopped on request
	NodeStatusFailed     NodeStatus = "failed"     // did not start, or its restarts ran out
)

// Active reports whether a node in status s holds its port and counts towards its
// agent's max nodes.
func (s NodeStatus) Active() bool { return s != NodeStatusStopped && s != NodeStatusFailed }

// Node is a row of the nodes table.
type Node struct {
	ID string `json:"id"`
	// Name is the name the node was spawned with, unique among the grid's nodes; its
	// ID when it was given none (and in rows recorded before names existed).
	Name string `json:"name,omitempty"`
	// Role is what the grid uses the node for: "" (a storage node for users) or
	// RoleEventStore.
	Role          string `json:"role,omitempty"`
	Agent         string `json:"agent"`
	Port          int    `json:"port"`
	StoragePath   string `json:"storage_path"`
	MemoryLimitMB int    `json:"memory_limit_mb"`
	// CPULimit is the CPU time the node may use, in cores; 0 means no limit (and is
	// what rows recorded before CPU limits existed hold).
	CPULimit float64        `json:"cpu_limit,omitempty"`
	Restart  restart.Policy `json:"restart_policy"`
	Status   NodeStatus     `json:"status"`
	PID      int            `json:"pid"`
	Restarts int            `json:"restarts"`
	// Endpoint is the node's gRPC address, host:port.
	Endpoint string `json:"endpoint"`
	// ExitCode is the last exit code (-1: by a signal or unknown); nil if it never exited.
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Error    string `json:"error,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`

	// KillTimeout is how long the node has to exit after SIGTERM when it is stopped
	// (set by the stop request; 0 means DefaultKillTimeout).
	KillTimeout time.Duration `json:"kill_timeout,omitempty"`

	// RequestSeq is the seq of the last spawn_requested or stop_requested event, and
	// CrashSeq of the last node_crashed: the causes of the events that follow them.
	RequestSeq uint64 `json:"request_seq,omitempty"`
	CrashSeq   uint64 `json:"crash_seq,omitempty"`
	// RequestedBy names the token of the last spawn or stop request ("" without ACLs).
	RequestedBy string `json:"requested_by,omitempty"`
}

// RoleEventStore is the role of a node the grid runs as one of its event stores:
// the leader ships every event to it too (see eventstores.go).
const RoleEventStore = "event-store"

// ValidRole accepts a node's role: none, or RoleEventStore.
func ValidRole(role string) error {
	if role != "" && role != RoleEventStore {
		return fmt.Errorf("role %q: the only role is %q (or none)", role, RoleEventStore)
	}
	return nil
}

// MaxNodeNameLen bounds a node's name.
const MaxNodeNameLen = 63

// ValidNodeName accepts a node name: 1 to 63 letters, digits, '-', '_' and '.'.
func ValidNodeName(name string) error {
	if len(name) > MaxNodeNameLen {
		return fmt.Errorf("name %q is longer than %d characters", name, MaxNodeNameLen)
	}
	return validName("name", name)
}

// DisplayName is the node's name, or its ID if it has none.
func (n *Node) DisplayName() string {
	if n.Name != "" {
		return n.Name
	}
	return n.ID
}

// Storage-node limits the servers enforce.
const (
	DefaultMemoryLimitMB = 512
	MaxMemoryLimitMB     = 1 << 20
	// MaxCPULimit bounds a node's CPU limit, in cores: far above any machine an agent
	// runs on, so it only catches typos and garbage.
	MaxCPULimit = 1024
)

// SpawnNode records a new storage node on an agent, status pending. The FSM checks it
// against the state: the agent exists and is healthy, the port is free on that agent,
// the agent has room, and the storage path lies inside the agent's storage root.
type SpawnNode struct {
	ID string `json:"id"`
	// Name, if set, names the node; see ValidNodeName.
	Name string `json:"name,omitempty"`
	// Role, if set, is RoleEventStore: the node becomes one of the event stores.
	Role          string `json:"role,omitempty"`
	Agent         string `json:"agent"`
	Port          int    `json:"port"`
	StoragePath   string `json:"storage_path"`
	MemoryLimitMB int    `json:"memory_limit_mb"`
	// CPULimit is the CPU time the node may use, in cores; 0 means no limit.
	CPULimit float64        `json:"cpu_limit,omitempty"`
	Restart  restart.Policy `json:"restart_policy"`
	// RequestedBy names the token of the request ("" without ACLs).
	RequestedBy string `json:"requested_by,omitempty"`
}

func (*SpawnNode) Type() CommandType { return CmdSpawnNode }

func (c *SpawnNode) Validate() error {
	if err := validName("id", c.ID); err != nil {
		return err
	}
	if c.Name != "" {
		if err := ValidNodeName(c.Name); err != nil {
			return err
		}
	}
	if err := validName("agent", c.Agent); err != nil {
		return err
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port %d is out of range 1-65535", c.Port)
	}
	if c.MemoryLimitMB < 0 || c.MemoryLimitMB > MaxMemoryLimitMB {
		return fmt.Errorf("memory_limit_mb %d is out of range 0-%d", c.MemoryLimitMB, MaxMemoryLimitMB)
	}
	// The negated comparison also turns away NaN, which compares false to everything.
	if !(c.CPULimit >= 0 && c.CPULimit <= MaxCPULimit) {
		return fmt.Errorf("cpu_limit %v is out of range 0-%d cores", c.CPULimit, MaxCPULimit)
	}
	if err := validPath("storage_path", c.StoragePath); err != nil {
		return err
	}
	if err := validRequester(c.RequestedBy); err != nil {
		return err
	}
	if err := ValidRole(c.Role); err != nil {
		return err
	}
	return c.Restart.Validate()
}

// NodeStarted records that a pending node passed its health check.
type NodeStarted struct {
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	Endpoint string `json:"endpoint"`
}

func (*NodeStarted) Type() CommandType { return CmdNodeStarted }
func (c *NodeStarted) Validate() error { return validPID(c.ID, c.PID) }

// NodeFailed records that a node did not start, or that its agent gave up
// restarting it.
type NodeFailed struct {
	ID       string `json:"id"`
	Error    string `json:"error"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
}

func (*NodeFailed) Type() CommandType { return CmdNodeFailed }
func (c *NodeFailed) Validate() error { return validName("id", c.ID) }

// NodeCrashed records an unexpected exit of a running node.
type NodeCrashed struct {
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	// Restarting is true when the node will be restarted.
	Restarting bool `json:"restarting"`
	// Reason, if set, says how the crash was found when it is not the agent's own
	// report (the leader found the node missing from its agent).
	Reason string `json:"reason,omitempty"`
	// OOMKilled is true when the kernel killed the node for going past the memory
	// limit of its cgroup.
	OOMKilled bool `json:"oom_killed,omitempty"`
}

func (*NodeCrashed) Type() CommandType { return CmdNodeCrashed }
func (c *NodeCrashed) Validate() error { return validName("id", c.ID) }

// NodeRestarted records a restart after a crash.
type NodeRestarted struct {
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

func (*NodeRestarted) Type() CommandType { return CmdNodeRestarted }
func (c *NodeRestarted) Validate() error {
	if c.Restarts < 0 {
		return fmt.Errorf("restarts must not be negative")
	}
	return validPID(c.ID, c.PID)
}

// Bounds of StopNode.KillTimeout.
const (
	DefaultKillTimeout = 5 * time.Second
	MaxKillTimeout     = 10 * time.Minute
)

// StopNode records an operator's request to stop a node. It carries everything the
// stop order needs, so a new leader sends the same order as the old one.
type StopNode struct {
	ID string `json:"id"`
	// KillTimeout is how long the node has after SIGTERM before SIGKILL; 0 means
	// DefaultKillTimeout.
	KillTimeout time.Duration `json:"kill_timeout,omitempty"`
	// RequestedBy names the token of the request ("" without ACLs).
	RequestedBy string `json:"requested_by,omitempty"`
}

func (*StopNode) Type() CommandType { return CmdStopNode }
func (c *StopNode) Validate() error {
	if c.KillTimeout < 0 || c.KillTimeout > MaxKillTimeout {
		return fmt.Errorf("kill timeout %s is out of range 0-%s", c.KillTimeout, MaxKillTimeout)
	}
	if err := validRequester(c.RequestedBy); err != nil {
		return err
	}
	return validName("id", c.ID)
}

// NodeStopped records that a node stopped on request.
type NodeStopped struct {
	ID       string `json:"id"`
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
}

func (*NodeStopped) Type() CommandType { return CmdNodeStopped }
func (c *NodeStopped) Validate() error { return validName("id", c.ID) }

// NodeStopFailed records that an agent could not stop a node.
type NodeStopFailed struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

func (*NodeStopFailed) Type() CommandType { return CmdNodeStopFailed }
func (c *NodeStopFailed) Validate() error { return validName("id", c.ID) }

// StrayStopped records that the leader stopped a process that its agent ran and the
// state did not expect to run: a node the state has stopped or failed, or does not
// know at all (after a snapshot restore, say). It changes no node; it records the stop.
type StrayStopped struct {
	Agent    string `json:"agent"`
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
}

func (*StrayStopped) Type() CommandType { return CmdStrayStopped }
func (c *StrayStopped) Validate() error {
	if err := validName("agent", c.Agent); err != nil {
		return err
	}
	return validName("id", c.ID)
}

// EffectiveKillTimeout is the kill timeout of the node's stop order.
func (n *Node) EffectiveKillTimeout() time.Duration {
	if n.KillTimeout > 0 {
		return n.KillTimeout
	}
	return DefaultKillTimeout
}

func validPID(id string, pid int) error {
	if err := validName("id", id); err != nil {
		return err
	}
	if pid <= 0 {
		return fmt.Errorf("pid must be positive, got %d", pid)
	}
	return nil
}

// ErrRejected wraps the reason a well-formed command does not fit the current state:
// an unknown or unhealthy agent, a taken port, a full agent, a path outside the root.
var ErrRejected = errors.New("rejected")

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// ResolveStoragePath returns the absolute storage path of a node: path as given, or
// relative to root, or root/ID when path is empty. It fails when the result is not
// inside root, so no `..` can escape it.
func ResolveStoragePath(root, id, path string) (string, error) {
	if root == "" {
		return "", errors.New("the agent has no storage root")
	}
	root = filepath.Clean(root)
	if path == "" {
		path = id
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	path = filepath.Clean(path)
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("storage path %s is not inside the agent's storage root %s", path, root)
	}
	return path, nil
}
