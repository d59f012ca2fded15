package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Agent is an agent as the leader sees it. GET /v1/agents, GET /v1/agent/NAME
type Agent struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Hostname string `json:"hostname"`
	Platform string `json:"platform"`
	Version  string `json:"version"`
	// Status is "healthy", "degraded" or "offline".
	Status string `json:"status"`
	// Nodes counts the agent's nodes that are running; MaxNodes bounds all of them.
	Nodes    int `json:"nodes"`
	MaxNodes int `json:"max_nodes"`
	// StorageRoot is the directory inside which the agent's nodes keep their data.
	StorageRoot string `json:"storage_root"`
	// LastHeartbeat is when the leader last heard from the agent (zero if it has not
	// since it became leader).
	LastHeartbeat time.Time `json:"last_heartbeat"`
	RegisteredAt  time.Time `json:"registered_at"`
	// StatusChangedAt is when Status last changed.
	StatusChangedAt time.Time `json:"status_changed_at"`
	// Isolation says how the agent isolates its nodes, as it reported when it
	// registered: e.g. "cgroup v2 under /grid.slice", or "none: " and why. Default:
	// "" (left out), from agents that do not report it.
	Isolation string `json:"isolation,omitempty"`
}

// Agents lists every agent. GET /v1/agents
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var out []Agent
	err := c.get(ctx, "/v1/agents", nil, &out)
	return out, err
}

// Agent returns one agent; a 404 StatusError when there is none. GET /v1/agent/NAME
func (c *Client) Agent(ctx context.Context, name string) (*Agent, error) {
	var out Agent
	if err := c.get(ctx, "/v1/agent/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Node statuses.
const (
	NodePending    = "pending"    // recorded; the agent is starting it
	NodeRunning    = "running"    // passed its health check
	NodeRestarting = "restarting" // crashed; the agent will restart it
	NodeStopping   = "stopping"   // a stop was requested
	NodeStopped    = "stopped"    // stopped on request
	NodeFailed     = "failed"     // did not start, or the restart policy gave up
	NodeLost       = "lost"       // its agent is offline
)

// Duration is a time.Duration that travels in JSON as a Go duration string ("5s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// RestartPolicy says how an agent restarts a crashed node: at most Attempts restarts
// within Interval, the first after Delay, each next one after twice the last, up to
// MaxDelay, with jitter. Omitted or zero fields take the defaults: 3 attempts in 30m,
// 5s doubling up to 5m; but Attempts given as 0 means the node is never restarted.
type RestartPolicy struct {
	Attempts *int     `json:"attempts,omitempty"`
	Interval Duration `json:"interval"`
	Delay    Duration `json:"delay"`
	MaxDelay Duration `json:"max_delay"`
}

// Attempts returns a pointer to n, for RestartPolicy.Attempts.
func Attempts(n int) *int { return &n }

// NodeRoleEventStore is the role of a node the grid runs as one of its event stores.
const NodeRoleEventStore = "event-store"

// Node is a storage node. GET /v1/nodes, GET /v1/node/ID
type Node struct {
	ID string `json:"id"`
	// Name is the node's name; its ID when it was spawned without one.
	Name string `json:"name"`
	// Role is NodeRoleEventStore for a node the grid runs as one of its event
	// stores; "" for others.
	Role          string `json:"role,omitempty"`
	Agent         string `json:"agent"`
	Port          int    `json:"port"`
	StoragePath   string `json:"storage_path"`
	MemoryLimitMB int    `json:"memory_limit_mb"`
	// CPULimit is the CPU time the node may use, in cores (1.5: one and a half).
	// Default: 0 (left out), no limit.
	CPULimit float64       `json:"cpu_limit,omitempty"`
	Restart  RestartPolicy `json:"restart_policy"`
	// Status is one of the Node* constants.
	Status string `json:"status"`
	PID    int    `json:"pid"`
	// Restarts counts the restarts after crashes.
	Restarts int `json:"restarts"`
	// Endpoint is the node's gRPC address, host:port.
	Endpoint string `json:"endpoint"`
	// ExitCode is the last exit code (-1: killed by a signal or unknown), if it exited.
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	// Error says why the node failed, if it did.
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// RequestedBy names the ACL token of the last spawn or stop request ("" without
	// ACLs).
	RequestedBy string `json:"requested_by,omitempty"`
}

// Nodes lists the storage nodes, of one agent if agent is not "". GET /v1/nodes?agent=NAME
func (c *Client) Nodes(ctx context.Context, agent string) ([]Node, error) {
	q := url.Values{}
	if agent != "" {
		q.Set("agent", agent)
	}
	var out []Node
	err := c.get(ctx, "/v1/nodes", q, &out)
	return out, err
}

// Node returns one node, named by its ID or its name; a 404 StatusError when there
// is none. GET /v1/node/ID
func (c *Client) Node(ctx context.Context, id string) (*Node, error) {
	var out Node
	if err := c.get(ctx, "/v1/node/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SpawnRequest asks for a storage node on an agent. StoragePath "" means a directory
// named after the node inside the agent's storage root; MemoryLimitMB 0 means 512.
type SpawnRequest struct {
	// Name, if set, names the node: 1 to 63 letters, digits, '-', '_' and '.',
	// unique among the grid's nodes. Default: the node's ID.
	Name string `json:"name,omitempty"`
	// Role, if NodeRoleEventStore, makes the node one of the grid's event stores:
	// the leader ships every event to it, and backfills it with the history.
	Role          string `json:"role,omitempty"`
	Agent         string `json:"agent"`
	Port          int    `json:"port"`
	StoragePath   string `json:"storage_path,omitempty"`
	MemoryLimitMB int    `json:"memory_limit_mb,omitempty"`
	// CPULimit is the CPU time the node may use, in cores (0.5: half a core), at
	// most 1024; its agent enforces it with a cgroup where it can. Default: 0, no
	// limit.
	CPULimit float64       `json:"cpu_limit,omitempty"`
	Restart  RestartPolicy `json:"restart_policy"`
}

// SpawnNode records a node and has its agent start it. It returns as soon as the node
// is recorded (status pending); poll Node for the outcome. POST /v1/nodes
func (c *Client) SpawnNode(ctx context.Context, req *SpawnRequest) (*Node, error) {
	var out Node
	if err := c.call(ctx, http.MethodPost, "/v1/nodes", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StopNode asks for a node, named by its ID or its name, to stop: SIGTERM, then
// SIGKILL after killTimeout (0: 5s).
// It returns once the stop is recorded (status stopping); poll Node for the outcome.
// DELETE /v1/node/ID?kill_timeout=5s
func (c *Client) StopNode(ctx context.Context, id string, killTimeout time.Duration) (*Node, error) {
	q := url.Values{}
	if killTimeout > 0 {
		q.Set("kill_timeout", killTimeout.String())
	}
	var out Node
	if err := c.call(ctx, http.MethodDelete, "/v1/node/"+url.PathEscape(id), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// NodeLogs is the tail of a node's log files.
type NodeLogs struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// NodeLogs returns the last lines (0: 100) of a node's logs, read by its agent.
// GET /v1/node/ID/logs?lines=N
func (c *Client) NodeLogs(ctx context.Context, id string, lines int) (*NodeLogs, error) {
	q := url.Values{}
	if lines > 0 {
		q.Set("lines", strconv.Itoa(lines))
	}
	var out NodeLogs
	if err := c.get(ctx, "/v1/node/"+url.PathEscape(id)+"/logs", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
