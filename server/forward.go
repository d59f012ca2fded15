package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// One way to reach the leader. Whatever a follower cannot answer itself, an agent's
// call, a write, an HTTP request for the leader, it sends to the leader over the
// internal gRPC service: connections come from the shared dial pool (and so carry the
// server's TLS), the call's deadline is the caller's, and the caller's metadata (its
// token) travels with it. The leader answers a forwarded call itself or, if it lost
// the leadership meanwhile, with Aborted; it never forwards again, so a call makes at
// most one hop. A caller that gets Aborted, or finds no leader, waits for the election
// and tries again until its deadline.
//
// Errors are mapped to gRPC codes in one place, codeOf, and from there to HTTP
// statuses, httpStatus, so a client reads the same answer from every server.

// forwardedKey marks a forwarded gRPC call or HTTP request: its receiver answers it
// itself or not at all.
const forwardedKey = "grid-forwarded"

// leaderMethods are the gRPC methods that only the leader serves, each with the
// constructor of its response message.
var leaderMethods = map[string]func() any{
	gridpb.Internal_Apply_FullMethodName:     func() any { return new(gridpb.ApplyResponse) },
	gridpb.Servers_Register_FullMethodName:   func() any { return new(gridpb.RegisterResponse) },
	gridpb.Servers_Heartbeat_FullMethodName:  func() any { return new(gridpb.HeartbeatResponse) },
	gridpb.Servers_ReportNode_FullMethodName: func() any { return new(gridpb.ReportNodeResponse) },
	gridpb.Servers_Unregister_FullMethodName: func() any { return new(gridpb.UnregisterResponse) },
}

// leaderInterceptor forwards the calls of leaderMethods to the leader when this
// server is not it.
func (s *Server) leaderInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	newResponse, ok := leaderMethods[info.FullMethod]
	if !ok || s.IsLeader() {
		return handler(ctx, req)
	}
	if forwarded(ctx) {
		return nil, status.Error(codes.Aborted, "not the leader")
	}
	resp := newResponse()
	err := s.forwardRPC(ctx, info.FullMethod, req, resp)
	if errors.Is(err, errBecameLeader) {
		return handler(ctx, req)
	}
	return resp, err
}

func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// forwardRPC sends a unary call to the leader and waits for its answer, retrying
// while leadership moves (an answer of Aborted, or no leader known) until ctx ends.
// It returns errBecameLeader when this server is the leader now: the caller serves
// the call itself.
func (s *Server) forwardRPC(ctx context.Context, method string, req, resp any) error {
	ctx = outgoing(ctx)
	for {
		conn, err := s.leaderConn(ctx)
		if errors.Is(err, errBecameLeader) {
			return err
		}
		if err == nil {
			err = conn.Invoke(ctx, method, req, resp)
			if status.Code(err) != codes.Aborted {
				return err
			}
		}
		if werr := s.electionPause(ctx); werr != nil {
			return fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
	}
}

// outgoing carries the caller's metadata (its token) on to the leader, marked as
// forwarded.
func outgoing(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	md.Set(forwardedKey, "1")
	if t := callerToken(ctx); t != "" && len(md.Get(auth.TokenMetadata)) == 0 {
		md.Set(auth.TokenMetadata, t) // an HTTP caller's, from its handler (acl.go)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// electionPause waits a moment while leadership moves; an error if ctx ends first.
func (s *Server) electionPause(ctx context.Context) error {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return raft.ErrRaftShutdown
	case <-t.C:
		return nil
	}
}

// leaderConn returns a connection to the leader's gRPC endpoint, waiting up to
// leaderWait (or until ctx ends) for a leader that gossip knows.
func (s *Server) leaderConn(ctx context.Context) (*grpc.ClientConn, error) {
	m, err := s.waitForLeader(ctx, leaderWait)
	if err != nil {
		return nil, err
	}
	if m.Tags.ID == s.id {
		return nil, errBecameLeader
	}
	return s.conns.Get(m.HostPort(m.Tags.RPCPort))
}

// errBecameLeader tells a forwarder that this server leads now.
var errBecameLeader = status.Error(codes.Aborted, "this server is the leader now")

// codeOf gives an error from Raft, the FSM, the query engine or another server the
// gRPC code a caller should see.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	switch {
	case errors.Is(err, fsm.ErrInvalidCommand), errors.Is(err, errBadRequest):
		return codes.InvalidArgument
	case errors.Is(err, fsm.ErrRejected):
		return codes.FailedPrecondition
	case errors.Is(err, fsm.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, raft.ErrNotLeader):
		return codes.Aborted
	case errors.Is(err, ErrNoLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Internal
}

// errBadRequest marks an error in what the caller sent.
var errBadRequest = errors.New("bad request")

// toStatus gives an error its gRPC status.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// statusOf is the HTTP status of an error.
func statusOf(err error) int { return httpStatus(codeOf(err)) }

// httpStatus maps a gRPC code to the HTTP status that means the same.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied, codes.Unauthenticated:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // the client went away; nobody reads this
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// writeUnavailable answers 503 with Retry-After: the caller may try again soon.
func writeUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, err)
}

// forwardHTTP sends an HTTP request to the leader over the internal gRPC service
// and writes its answer. While leadership moves it tries again: after an Aborted
// (the server reached was not the leader and did nothing), or for a read after any
// failure to reach the leader. A body up to maxRequestBody is kept to send again; a
// larger one (a snapshot) is streamed once.
func (s *Server) forwardHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, replayable, err := bufferBody(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	for attempt := 0; ; attempt++ {
		conn, err := s.leaderConn(ctx)
		if errors.Is(err, errBecameLeader) {
			r.Body = io.NopCloser(body())
			s.http.Handler.ServeHTTP(w, r) // this server won the election meanwhile
			return
		}
		if err != nil {
			writeUnavailable(w, err)
			return
		}
		answered, err := s.tunnel(ctx, conn, w, r, body())
		if answered {
			return
		}
		again := replayable && (status.Code(err) == codes.Aborted || (read && status.Code(err) == codes.Unavailable))
		if !again || s.electionPause(ctx) != nil {
			writeUnavailable(w, fmt.Errorf("forward to the leader: %s", errorMessage(err)))
			return
		}
	}
}

// bufferBody reads a body of up to maxRequestBody bytes into memory, so that it can
// be sent again; body returns a reader of the whole body each time it is called.
func bufferBody(rc io.ReadCloser) (body func() io.Reader, replayable bool, err error) {
	if rc == nil || rc == http.NoBody {
		return func() io.Reader { return bytes.NewReader(nil) }, true, nil
	}
	buf, err := io.ReadAll(io.LimitReader(rc, maxRequestBody+1))
	if err != nil {
		return nil, false, err
	}
	if len(buf) <= maxRequestBody {
		return func() io.Reader { return bytes.NewReader(buf) }, true, nil
	}
	once := io.MultiReader(bytes.NewReader(buf), rc)
	return func() io.Reader { return once }, false, nil
}

// tunnel runs one forwarding attempt; answered is true once the leader's answer is
// being written.
func (s *Server) tunnel(ctx context.Context, conn *grpc.ClientConn, w http.ResponseWriter, r *http.Request, body io.Reader) (answered bool, err error) {
	ctx, cancel := context.WithCancel(outgoing(ctx))
	defer cancel()
	stream, err := gridpb.NewInternalClient(conn).ForwardHTTP(ctx)
	if err != nil {
		return false, err
	}
	head := &gridpb.HTTPRequestFrame{Method: r.Method, Target: r.URL.RequestURI(), RemoteAddr: r.RemoteAddr}
	for name, values := range r.Header {
		head.Headers = append(head.Headers, &gridpb.HTTPHeader{Name: name, Values: values})
	}
	if err := stream.Send(head); err != nil {
		return false, recvErr(stream, err)
	}
	// The body goes as the leader reads it; the first answer frame says whether the
	// leader took the request at all.
	go func() { _ = sendBody(stream, body) }()
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	for _, h := range first.GetHeaders() {
		w.Header()[h.GetName()] = h.GetValues()
	}
	w.WriteHeader(int(first.GetStatus()))
	flusher, _ := w.(http.Flusher)
	for frame := first; ; {
		if len(frame.GetBody()) > 0 {
			if _, err := w.Write(frame.GetBody()); err != nil {
				return true, err
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if frame, err = stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return true, err
		}
	}
}

// recvErr is the leader's own answer when a send fails because the leader ended
// the call (as it does with Aborted).
func recvErr(stream gridpb.Internal_ForwardHTTPClient, sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return sendErr
}

// bodyChunk is the most body bytes one frame carries.
const bodyChunk = 64 << 10

func sendBody(stream gridpb.Internal_ForwardHTTPClient, body io.Reader) error {
	if body == nil {
		return stream.CloseSend()
	}
	buf := make([]byte, bodyChunk)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if serr := stream.Send(&gridpb.HTTPRequestFrame{Body: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return stream.CloseSend()
		}
		if err != nil {
			return err
		}
	}
}

// ForwardHTTP serves, on the leader, an HTTP request a follower forwarded: the same
// handlers answer it as if it had come to this server.
func (e *internalEndpoint) ForwardHTTP(stream gridpb.Internal_ForwardHTTPServer) error {
	s := e.s
	head, err := stream.Recv()
	if err != nil {
		return err
	}
	if !s.IsLeader() {
		return status.Error(codes.Aborted, "not the leader")
	}
	body, bodyW := io.Pipe()
	go func() {
		for {
			frame, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				bodyW.CloseWithError(err)
				return
			}
			if _, err := bodyW.Write(frame.GetBody()); err != nil {
				return // the handler stopped reading
			}
		}
	}()
	defer body.Close()
	r, err := http.NewRequestWithContext(stream.Context(), head.GetMethod(), head.GetTarget(), body)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "forwarded request: %v", err)
	}
	for _, h := range head.GetHeaders() {
		r.Header[h.GetName()] = h.GetValues()
	}
	r.Header.Set(forwardedHeader, "1")
	r.RemoteAddr, r.RequestURI = head.GetRemoteAddr(), head.GetTarget()
	if cl := r.Header.Get("Content-Length"); cl != "" {
		r.ContentLength, _ = strconv.ParseInt(cl, 10, 64)
	}
	rw := &streamWriter{stream: stream, header: http.Header{}}
	s.http.Handler.ServeHTTP(rw, r)
	return rw.finish()
}

// forwardedHeader marks a forwarded HTTP request: the leader answers it itself.
const forwardedHeader = "X-Grid-Forwarded"

// streamWriter is the http.ResponseWriter of a forwarded request: it sends the
// status, headers and body back to the follower in frames.
type streamWriter struct {
	stream     gridpb.Internal_ForwardHTTPServer
	header     http.Header
	headerSent bool
	status     int
	pending    []byte
	err        error
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.err != nil {
		return 0, w.err
	}
	w.pending = append(w.pending, p...)
	if len(w.pending) >= bodyChunk {
		w.Flush()
	}
	return len(p), w.err
}

// Flush sends what is written so far (the first frame carries the status and headers).
func (w *streamWriter) Flush() {
	w.WriteHeader(http.StatusOK)
	if w.err != nil {
		return
	}
	frame := &gridpb.HTTPResponseFrame{Body: w.pending}
	if !w.headerSent {
		// Later header changes are too late, as with net/http.
		w.headerSent = true
		frame.Status = int32(w.status)
		for name, values := range w.header {
			frame.Headers = append(frame.Headers, &gridpb.HTTPHeader{Name: name, Values: values})
		}
	}
	w.err = w.stream.Send(frame)
	w.pending = nil
}

func (w *streamWriter) finish() error {
	if !w.headerSent || len(w.pending) > 0 {
		w.Flush()
	}
	return w.err
}
