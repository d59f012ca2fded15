package fsm

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sutragrid/grid/events"
)

// spawnNode checks a spawn against the state and records the node as pending.
// The checks live here, not in the server, so that two spawns racing for one port are
// ordered by the log and the second is rejected on every server alike.
func (x *applyCtx) spawnNode(c *SpawnNode) error {
	txn, index, env := x.txn, x.index, x.env
	if raw, err := txn.First(tableNodes, "id", c.ID); err != nil {
		return err
	} else if raw != nil {
		return rejected("node %s already exists", c.ID)
	}
	raw, err := txn.First(tableAgents, "id", c.Agent)
	if err != nil {
		return err
	}
	agent, ok := raw.(*Agent)
	if !ok {
		return rejected("unknown agent %q", c.Agent)
	}
	if agent.Status != AgentHealthy {
		return rejected("agent %s is %s; nodes are spawned only on healthy agents", c.Agent, agent.Status)
	}
	path, err := ResolveStoragePath(agent.StorageRoot, c.ID, c.StoragePath)
	if err != nil {
		return rejected("%v", err)
	}
	for _, own := range agent.ReservedPaths {
		if overlaps(path, own) {
			return rejected("storage path %s overlaps the agent's own %s", path, own)
		}
	}
	if slices.Contains(agent.ReservedPorts, c.Port) {
		return rejected("port %d is the agent %s's own", c.Port, c.Agent)
	}
	siblings, err := nodes(txn, c.Agent)
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	// Names are checked against every node, not through an index: spawns are rare,
	// and a name must not be taken by any node, nor be another node's ID, so that a
	// name or an ID names one node in the whole history.
	all, err := nodes(txn, "")
	if err != nil {
		return err
	}
	for _, n := range all {
		if n.DisplayName() == name || n.ID == name {
			return rejected("name %s is already used by node %s", name, n.ID)
		}
	}
	active := 0
	for _, n := range siblings {
		if !n.Status.Active() {
			continue
		}
		active++
		if n.Port == c.Port {
			return rejected("port %d is already taken on agent %s by node %s", c.Port, c.Agent, n.ID)
		}
		if overlaps(n.StoragePath, path) {
			return rejected("storage path %s overlaps node %s's %s", path, n.ID, n.StoragePath)
		}
	}
	if agent.MaxNodes > 0 && active >= agent.MaxNodes {
		return rejected("agent %s already runs its maximum of %d nodes", c.Agent, agent.MaxNodes)
	}
	mem := c.MemoryLimitMB
	if mem == 0 {
		mem = DefaultMemoryLimitMB
	}
	host, _, err := net.SplitHostPort(agent.Address)
	if err != nil {
		host = agent.Address
	}
	seq := x.emit(&events.Event{Type: events.SpawnRequested, AgentID: c.Agent, NodeID: c.ID, NodeName: name, Port: c.Port,
		StoragePath: path, MemoryLimitMB: mem, CPULimit: c.CPULimit, Hostname: agent.Hostname, RequestedBy: c.RequestedBy})
	if c.Role == RoleEventStore {
		if err := x.addNodeStore(c.ID); err != nil {
			return err
		}
	}
	return txn.Insert(tableNodes, &Node{
		ID: c.ID, Name: name, Role: c.Role, Agent: c.Agent, Port: c.Port, StoragePath: path, MemoryLimitMB: mem,
		CPULimit: c.CPULimit, Restart: c.Restart.WithDefaults(), Status: NodeStatusPending,
		Endpoint:  net.JoinHostPort(host, strconv.Itoa(c.Port)),
		CreatedAt: env.Time, UpdatedAt: env.Time, CreateIndex: index, ModifyIndex: index,
		RequestSeq: seq, RequestedBy: c.RequestedBy,
	})
}

// overlaps reports whether one of two clean absolute paths is, or lies inside, the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+string(filepath.Separator)) || strings.HasPrefix(b, a+string(filepath.Separator))
}

// strayStopped records the stop of a process the state did not expect to run.
func (x *applyCtx) strayStopped(c *StrayStopped) error {
	code := c.ExitCode
	e := &events.Event{Type: events.StopSucceeded, AgentID: c.Agent, NodeID: c.ID, PID: c.PID,
		ExitCode: &code, Signal: c.Signal,
		Reason: "the servers did not expect this process to run; the leader stopped it"}
	raw, err := x.txn.First(tableNodes, "id", c.ID)
	if err != nil {
		return err
	}
	if n, ok := raw.(*Node); ok {
		if n.Agent != c.Agent || n.Status.Active() {
			return rejected("node %s is %s on agent %s: not a stray process of agent %s", n.ID, n.Status, n.Agent, c.Agent)
		}
		e.Port, e.NodeName = n.Port, n.DisplayName()
	}
	x.emit(e)
	return nil
}

// nodeID returns the node a node command concerns.
func nodeID(cmd Command) string {
	switch c := cmd.(type) {
	case *NodeStarted:
		return c.ID
	case *NodeFailed:
		return c.ID
	case *NodeCrashed:
		return c.ID
	case *NodeRestarted:
		return c.ID
	case *StopNode:
		return c.ID
	case *NodeStopped:
		return c.ID
	case *NodeStopFailed:
		return c.ID
	}
	return ""
}

// nodeChange applies a report about an existing node. Reports can arrive late or
// twice (an agent retries, a new leader re-sends a start): each transition applies only
// from the statuses where it makes sense and is otherwise a no-op, never an error.
func (x *applyCtx) nodeChange() error {
	txn, index, env := x.txn, x.index, x.env
	id := nodeID(env.Command)
	if id == "" {
		return fmt.Errorf("no handler for %s", env.Command.Type())
	}
	raw, err := txn.First(tableNodes, "id", id)
	if err != nil {
		return err
	}
	old, ok := raw.(*Node)
	if !ok {
		return fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	n := *old
	changed, err := x.transition(&n, env.Command)
	if err != nil || !changed {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = env.Time, index
	if n.Role == RoleEventStore && (n.Status == NodeStatusStopping || n.Status == NodeStatusStopped) {
		// An event-store node asked to stop stops being an event store at once: it
		// must not hold the outbox back while it goes.
		if err := x.removeNodeStore(n.ID); err != nil {
			return err
		}
	}
	return txn.Insert(tableNodes, &n)
}

// transition mutates n for cmd, emits the events it makes, and reports whether
// anything changed.
func (x *applyCtx) transition(n *Node, cmd Command) (bool, error) {
	ev := func(t events.Type) *events.Event {
		return &events.Event{Type: t, AgentID: n.Agent, NodeID: n.ID, NodeName: n.DisplayName(), Port: n.Port}
	}
	switch c := cmd.(type) {
	case *NodeStarted:
		switch n.Status {
		case NodeStatusPending:
			e := ev(events.SpawnSucceeded)
			e.PID, e.CausedBy = c.PID, n.RequestSeq
			x.emit(e)
			n.Status, n.Error = NodeStatusRunning, ""
		case NodeStatusRestarting, NodeStatusRunning:
			// The agent re-registered with the node running (it re-adopted it): the
			// crash and restart, if any, were reported on their own.
			n.Status, n.Error = NodeStatusRunning, ""
		case NodeStatusStopping:
			// A start that completes after a stop request: keep stopping, but learn the
			// pid so that the stop reaches the process.
		default:
			return false, nil
		}
		n.PID = c.PID
		if c.Endpoint != "" {
			n.Endpoint = c.Endpoint
		}
	case *NodeFailed:
		if n.Status == NodeStatusStopped || (n.Status == NodeStatusFailed && (c.Error == "" || c.Error == n.Error)) {
			return false, nil
		}
		if n.Status == NodeStatusPending {
			e := ev(events.SpawnFailed)
			e.Error, e.ExitCode, e.Signal, e.CausedBy = c.Error, c.ExitCode, c.Signal, n.RequestSeq
			x.emit(e)
		}
		// Otherwise the agent gave up after a crash, which node_crashed reported; this
		// only refines the reason.
		n.Status, n.Error, n.PID = NodeStatusFailed, c.Error, 0
		n.ExitCode, n.Signal = c.ExitCode, c.Signal
	case *NodeCrashed:
		if n.Status != NodeStatusRunning && n.Status != NodeStatusPending && n.Status != NodeStatusRestarting {
			return false, nil // an exit while stopping is the stop, not a crash
		}
		code := c.ExitCode
		e := ev(events.NodeCrashed)
		e.PID, e.ExitCode, e.Signal, e.RestartCount = c.PID, &code, c.Signal, n.Restarts
		e.Reason = "the agent will restart it"
		if c.Reason != "" {
			e.Reason = c.Reason + "; it will be restarted"
		}
		n.ExitCode, n.Signal, n.PID = &code, c.Signal, 0
		n.Status = NodeStatusRestarting
		if !c.Restarting {
			n.Status = NodeStatusFailed
			n.Error = "crashed; restart policy exhausted"
			e.Reason = "restart policy exhausted; the node is failed"
			if c.Reason != "" {
				e.Reason = c.Reason + "; its restart policy allows no restart, so the node is failed"
				n.Error = c.Reason
			}
		}
		if c.OOMKilled {
			// The reason is a word a program can match, and the limit says what the
			// node outgrew; what becomes of the node goes to the error.
			if !c.Restarting {
				e.Error = "restart policy exhausted; the node is failed"
				n.Error = "killed for running out of memory; restart policy exhausted"
			}
			e.Reason, e.MemoryLimitMB = events.ReasonOOMKilled, n.MemoryLimitMB
		}
		n.CrashSeq = x.emit(e)
	case *NodeRestarted:
		if n.Status != NodeStatusRestarting && n.Status != NodeStatusRunning && n.Status != NodeStatusPending {
			return false, nil
		}
		e := ev(events.NodeRestarted)
		e.NewPID, e.PID, e.RestartCount, e.CausedBy = c.PID, c.PID, c.Restarts, n.CrashSeq
		x.emit(e)
		n.Status, n.PID, n.Restarts, n.Error = NodeStatusRunning, c.PID, c.Restarts, ""
	case *StopNode:
		switch n.Status {
		case NodeStatusStopped:
			return false, rejected("node %s is already stopped", n.ID)
		case NodeStatusStopping:
			return false, nil
		}
		wasFailed := n.Status == NodeStatusFailed
		if n.Status == NodeStatusPending {
			// The spawn ends here, without a start: say so, so that every spawn
			// request has its outcome.
			e := ev(events.SpawnFailed)
			e.Error, e.CausedBy = "a stop was requested before the node started", n.RequestSeq
			x.emit(e)
		}
		req := ev(events.StopRequested)
		req.RequestedBy = c.RequestedBy
		n.RequestSeq, n.RequestedBy = x.emit(req), c.RequestedBy
		n.Status, n.KillTimeout = NodeStatusStopping, c.KillTimeout
		if wasFailed {
			// Nothing runs: the stop is done at once. The exit of the failed process
			// is not this stop's result.
			e := ev(events.StopSucceeded)
			e.CausedBy, e.Reason = n.RequestSeq, "the node was not running"
			x.emit(e)
			n.Status, n.ExitCode, n.Signal = NodeStatusStopped, nil, ""
		}
	case *NodeStopped:
		if n.Status == NodeStatusStopped {
			return false, nil
		}
		code := c.ExitCode
		e := ev(events.StopSucceeded)
		e.ExitCode, e.Signal, e.PID = &code, c.Signal, n.PID
		if n.Status == NodeStatusStopping {
			e.CausedBy = n.RequestSeq
		} else {
			e.Reason = "stopped by its agent"
		}
		x.emit(e)
		n.Status, n.PID, n.ExitCode, n.Signal, n.Error = NodeStatusStopped, 0, &code, c.Signal, ""
	case *NodeStopFailed:
		if n.Status != NodeStatusStopping {
			return false, nil
		}
		e := ev(events.StopFailed)
		e.Error, e.CausedBy = c.Error, n.RequestSeq
		x.emit(e)
		n.Status, n.Error = NodeStatusRunning, "stop failed: "+c.Error
	default:
		return false, fmt.Errorf("no handler for %s", cmd.Type())
	}
	return true, nil
}
