package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gridpb "github.com/sutragrid/grid/proto"
)

// endpoint serves the Agent gRPC service, for the leader.
type endpoint struct {
	gridpb.UnimplementedAgentServer
	sup *supervisor
}

// StartNode starts a node and answers with its pid once it passes its health check.
func (e *endpoint) StartNode(ctx context.Context, req *gridpb.StartNodeRequest) (*gridpb.StartNodeResponse, error) {
	pid, err := e.sup.start(ctx, req)
	if err != nil {
		return nil, err
	}
	return &gridpb.StartNodeResponse{Pid: int32(pid), Endpoint: e.sup.endpoint(int(req.GetPort()))}, nil
}

// StopNode stops a node and answers once its process is gone.
func (e *endpoint) StopNode(ctx context.Context, req *gridpb.StopNodeRequest) (*gridpb.StopNodeResponse, error) {
	if req.GetKillTimeoutMs() < 0 {
		return nil, status.Error(codes.InvalidArgument, "kill_timeout_ms must not be negative")
	}
	exit, err := e.sup.stop(ctx, req.GetNodeId(), time.Duration(req.GetKillTimeoutMs())*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return &gridpb.StopNodeResponse{ExitCode: int32(exit.Code), Signal: exit.Signal}, nil
}

// NodeLogs returns the tail of a node's stdout and stderr logs.
func (e *endpoint) NodeLogs(ctx context.Context, req *gridpb.NodeLogsRequest) (*gridpb.NodeLogsResponse, error) {
	if req.GetLines() < 0 {
		return nil, status.Error(codes.InvalidArgument, "lines must not be negative")
	}
	stdout, stderr, err := e.sup.logs(req.GetNodeId(), int(req.GetLines()))
	if err != nil {
		return nil, err
	}
	return &gridpb.NodeLogsResponse{Stdout: stdout, Stderr: stderr}, nil
}

var _ gridpb.AgentServer = (*endpoint)(nil)
