package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// serversEndpoint serves agents: registration, heartbeats and node reports. Any
// server takes the calls; leaderInterceptor (forward.go) has a follower send each to
// the leader, which alone keeps the heartbeat timers, so these methods run there.
type serversEndpoint struct {
	gridpb.UnimplementedServersServer
	s *Server
}

func (e *serversEndpoint) Register(ctx context.Context, req *gridpb.RegisterRequest) (*gridpb.RegisterResponse, error) {
	cmd := &fsm.RegisterAgent{
		Name: req.GetName(), Address: req.GetAddress(), Hostname: req.GetHostname(),
		Platform: req.GetPlatform(), Version: req.GetVersion(), MaxNodes: int(req.GetMaxNodes()),
		StorageRoot: req.GetStorageRoot(), ReservedPaths: req.GetReservedPaths(), Isolation: fsm.CleanIsolation(req.GetIsolation()),
	}
	for _, p := range req.GetReservedPorts() {
		cmd.ReservedPorts = append(cmd.ReservedPorts, int(p))
	}
	if _, err := e.s.Apply(ctx, cmd); err != nil {
		return nil, toStatus(err)
	}
	e.s.heartbeats.heardFrom(cmd.Name, time.Now())
	if r := e.s.nodeOrders.Load(); r != nil {
		r.forget(cmd.Name)
	}
	e.s.logs.agents.Info("agent registered", "agent", cmd.Name, "address", cmd.Address, "nodes", len(req.GetNodes()))
	// Nodes the agent re-adopted after a restart are running, whatever the state
	// recorded while it was away.
	for _, r := range req.GetNodes() {
		if r.GetEvent() != gridpb.NodeEvent_NODE_EVENT_RUNNING {
			continue
		}
		n, err := e.s.fsm.State().Node(r.GetNodeId())
		if err != nil || n == nil || n.Agent != cmd.Name || !n.Status.Active() {
			continue
		}
		if n.Status == fsm.NodeStatusRunning && n.PID == int(r.GetPid()) {
			continue
		}
		if _, err := e.s.Apply(ctx, &fsm.NodeStarted{ID: n.ID, PID: int(r.GetPid())}); err != nil {
			return nil, toStatus(err)
		}
	}
	return &gridpb.RegisterResponse{HeartbeatIntervalMs: e.s.Thresholds().HeartbeatInterval.Milliseconds(), Leader: e.s.config.NodeName}, nil
}

func (e *serversEndpoint) Heartbeat(ctx context.Context, req *gridpb.HeartbeatRequest) (*gridpb.HeartbeatResponse, error) {
	e.s.metrics.heartbeats.Inc()
	a, err := e.s.fsm.State().Agent(req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if a == nil {
		return nil, status.Errorf(codes.NotFound, "agent %q is not registered", req.GetName())
	}
	now := time.Now()
	e.s.heartbeats.heardFrom(a.Name, now)
	if r := e.s.nodeOrders.Load(); r != nil {
		r.observe(a.Name, req)
	}
	if e.s.heartbeats.sample(a.Name, now, e.s.config.HeartbeatEventInterval) {
		if _, err := e.s.Apply(ctx, &fsm.SampleHeartbeat{Name: a.Name, LastSeen: now}); err != nil {
			return nil, toStatus(err)
		}
	}
	if a.Status != fsm.AgentHealthy {
		e.s.logs.heartbeat.Info("agent is back", "agent", a.Name, "was", a.Status)
		if _, err := e.s.Apply(ctx, &fsm.SetAgentStatus{Name: a.Name, Status: fsm.AgentHealthy}); err != nil {
			return nil, toStatus(err)
		}
	}
	return &gridpb.HeartbeatResponse{Leader: e.s.config.NodeName}, nil
}

func (e *serversEndpoint) ReportNode(ctx context.Context, r *gridpb.NodeReport) (*gridpb.ReportNodeResponse, error) {
	var cmd fsm.Command
	id, pid, code := r.GetNodeId(), int(r.GetPid()), int(r.GetExitCode())
	switch r.GetEvent() {
	case gridpb.NodeEvent_NODE_EVENT_CRASHED:
		cmd = &fsm.NodeCrashed{ID: id, PID: pid, ExitCode: code, Signal: r.GetSignal(), Restarting: r.GetRestarting(), OOMKilled: r.GetOomKilled()}
	case gridpb.NodeEvent_NODE_EVENT_RESTARTED:
		cmd = &fsm.NodeRestarted{ID: id, PID: pid, Restarts: int(r.GetRestarts())}
	case gridpb.NodeEvent_NODE_EVENT_FAILED:
		cmd = &fsm.NodeFailed{ID: id, Error: r.GetError(), ExitCode: &code, Signal: r.GetSignal()}
	case gridpb.NodeEvent_NODE_EVENT_STOPPED:
		cmd = &fsm.NodeStopped{ID: id, ExitCode: code, Signal: r.GetSignal()}
	case gridpb.NodeEvent_NODE_EVENT_RUNNING:
		cmd = &fsm.NodeStarted{ID: id, PID: pid}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "event %v is not a node event", r.GetEvent())
	}
	if n, err := e.s.fsm.State().Node(id); err == nil && n != nil && n.Agent != r.GetAgent() {
		return nil, status.Errorf(codes.PermissionDenied, "node %s belongs to agent %s, not %s", id, n.Agent, r.GetAgent())
	}
	if _, err := e.s.Apply(ctx, cmd); err != nil {
		return nil, toStatus(err)
	}
	return &gridpb.ReportNodeResponse{}, nil
}

func (e *serversEndpoint) Unregister(ctx context.Context, req *gridpb.UnregisterRequest) (*gridpb.UnregisterResponse, error) {
	if _, err := e.s.Apply(ctx, &fsm.DeregisterAgent{Name: req.GetName()}); err != nil {
		return nil, toStatus(err)
	}
	e.s.heartbeats.forget(req.GetName())
	if r := e.s.nodeOrders.Load(); r != nil {
		r.forget(req.GetName())
	}
	e.s.logs.agents.Info("agent unregistered", "agent", req.GetName())
	return &gridpb.UnregisterResponse{}, nil
}

func (s *Server) agentClient(name string) (gridpb.AgentClient, error) {
	a, err := s.fsm.State().Agent(name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, status.Errorf(codes.NotFound, "agent %q is not registered", name)
	}
	conn, err := s.agentConns.Get(a.Address)
	if err != nil {
		return nil, err
	}
	return gridpb.NewAgentClient(conn), nil
}
