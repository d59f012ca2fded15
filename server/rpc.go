package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// ErrNoLeader is returned when a write finds no leader before its deadline.
var ErrNoLeader = errors.New("no cluster leader")

// startRPC serves the gRPC endpoint on the RPC listener.
func (s *Server) startRPC() {
	// Timing comes first, to count refused calls too; then TLS, and its check of the
	// caller's role (tls.go).
	opts := append(append(s.metrics.rpc.ServerOptions(), s.rpcTLSOptions()...), grpc.ChainUnaryInterceptor(auth.UnaryInterceptor(s.config.Authorizer), s.leaderInterceptor),
		grpc.ChainStreamInterceptor(auth.StreamInterceptor(s.config.Authorizer)))
	s.grpc = grpc.NewServer(opts...)
	gridpb.RegisterInternalServer(s.grpc, &internalEndpoint{s: s})
	gridpb.RegisterServersServer(s.grpc, &serversEndpoint{s: s})
	ln := s.rpcLn
	s.goRun(func() {
		if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.logger.Error("gRPC server stopped", "error", err)
		}
	})
}

// Apply proposes cmd to the cluster and waits until it is applied, forwarding it to
// the leader when this server is not the leader. It returns the command's Raft index.
func (s *Server) Apply(ctx context.Context, cmd fsm.Command) (uint64, error) {
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.config.ApplyTimeout)
		defer cancel()
	}
	for {
		idx, err := s.applyOnce(ctx, buf)
		if !retryable(err) {
			return idx, err
		}
		// Leadership is moving: wait a little for the election, then try again.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) applyOnce(ctx context.Context, buf []byte) (uint64, error) {
	if s.IsLeader() {
		return s.applyLocal(ctx, buf)
	}
	resp := new(gridpb.ApplyResponse)
	if err := s.forwardRPC(ctx, gridpb.Internal_Apply_FullMethodName, &gridpb.ApplyRequest{Command: buf}, resp); err != nil {
		return 0, err
	}
	return resp.GetIndex(), nil
}

// retryable reports whether a write failed before any leader took it, so sending
// it again cannot apply it twice.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrNoLeader) || errors.Is(err, raft.ErrNotLeader) || status.Code(err) == codes.Aborted
}

// applyLocal stamps and proposes an encoded command on this server, the leader.
func (s *Server) applyLocal(ctx context.Context, buf []byte) (uint64, error) {
	if err := fsm.Stamp(buf, time.Now()); err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	timeout := s.config.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	// A snapshot restore under way holds this until Raft has swapped the state, which
	// it does in a bounded time or never (shutdown): commands proposed meanwhile
	// would derive events with seqs the restore is assigning (snapshot.go).
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	f := s.raft.Apply(buf, timeout)
	if err := waitFuture(ctx, s.ctx, f); err != nil {
		return 0, err
	}
	if err, ok := f.Response().(error); ok {
		return f.Index(), err
	}
	return f.Index(), nil
}

// waitFuture waits for a Raft future, or until ctx or the server's own context ends.
// Raft's apply queue is buffered, and a future still queued when Raft shuts down is
// never answered: waiting on it without a bound would hang shutdown forever. (The
// goroutine left behind in that case ends with the process.)
func waitFuture(ctx, server context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-server.Done():
		return raft.ErrRaftShutdown
	}
}

// internalEndpoint serves the servers' internal gRPC service.
type internalEndpoint struct {
	gridpb.UnimplementedInternalServer
	s *Server
}

var _ gridpb.InternalServer = (*internalEndpoint)(nil)

// Apply runs on the leader: leaderInterceptor forwards it there.
func (e *internalEndpoint) Apply(ctx context.Context, req *gridpb.ApplyRequest) (*gridpb.ApplyResponse, error) {
	if !e.s.IsLeader() {
		return nil, status.Error(codes.Aborted, "not the leader")
	}
	buf, err := e.s.authorizeApply(ctx, req.GetCommand()) // acl.go
	if err != nil {
		return nil, err
	}
	idx, err := e.s.applyLocal(ctx, buf)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gridpb.ApplyResponse{Index: idx}, nil
}

func (e *internalEndpoint) RaftState(ctx context.Context, _ *gridpb.RaftStateRequest) (*gridpb.RaftStateResponse, error) {
	resp := &gridpb.RaftStateResponse{ServerId: e.s.id, HasState: e.s.hadState}
	// The caller's deadline bounds the wait: autopilot asks every couple of seconds.
	f := e.s.raft.GetConfiguration()
	if err := waitFuture(ctx, e.s.ctx, f); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	for _, srv := range f.Configuration().Servers {
		resp.Peers = append(resp.Peers, string(srv.Address))
	}
	contact, term, index := e.s.raftStats() // autopilot.go
	resp.LastContactNs, resp.LastTerm, resp.LastIndex = int64(contact), term, index
	return resp, nil
}
