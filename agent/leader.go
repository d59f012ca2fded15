package agent

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// Only the leader orders nodes. With TLS, StartNode and StopNode are obeyed from the
// certificate of the server the agent knows to lead: the one that answered its last
// registration or heartbeat (servers forward both to the leader, which answers with
// its name; a server's certificate names its server, mtls/identity.go). A call from
// another server's certificate makes the agent ask at once, with a heartbeat, since
// leadership may have moved before the news reached it; it obeys if the answer names
// the caller, and otherwise answers Aborted, as a server that is not the leader does.
// A deposed leader that has not noticed yet is refused so, and so is a follower.
// Without TLS callers have no identity, and any is obeyed.

// orderMethods are the methods of the Agent service only the leader may call.
var orderMethods = map[string]bool{
	gridpb.Agent_StartNode_FullMethodName: true,
	gridpb.Agent_StopNode_FullMethodName:  true,
}

// leaderCheckTimeout bounds the heartbeat that asks who leads now.
const leaderCheckTimeout = 3 * time.Second

// leaderOnly is the gRPC interceptor that lets orderMethods through from the leader
// alone. It runs after the TLS check of the caller's role.
func (a *Agent) leaderOnly(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !orderMethods[info.FullMethod] || a.config.TLS == nil {
		return h(ctx, req)
	}
	cert := mtls.PeerCertificate(ctx)
	if cert == nil {
		return nil, status.Errorf(codes.Unauthenticated, "%s is obeyed from the leader's certificate only, and the caller presented none", info.FullMethod)
	}
	if err := a.client.checkLeader(ctx, info.FullMethod, a.config.TLS.PeerServer(cert), mtls.Describe(cert)); err != nil {
		a.logger.Warn("refused an order not from the leader", "method", info.FullMethod, "error", status.Convert(err).Message())
		return nil, err
	}
	return h(ctx, req)
}

// setLeader notes the leader's name from a server's answer.
func (c *client) setLeader(name string) {
	if name == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != name {
		c.logger.Debug("the leader is", "server", name, "was", c.leader)
		c.leader = name
	}
}

// knownLeader is the name of the server that last answered as leader.
func (c *client) knownLeader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// checkLeader returns nil if caller, the name of the server whose certificate made
// the call, leads; it asks the servers when it is not the leader the agent knows.
func (c *client) checkLeader(ctx context.Context, method, caller, cert string) error {
	if caller == "" {
		return status.Errorf(codes.PermissionDenied, "%s is obeyed from the leader's certificate only, and the caller's (%s) names no server", method, cert)
	}
	if caller == c.knownLeader() {
		return nil
	}
	// One question at a time: the calls that wait for it find the answer it gets.
	c.askMu.Lock()
	defer c.askMu.Unlock()
	if caller == c.knownLeader() {
		return nil
	}
	leader, err := c.askLeader(ctx)
	switch {
	case err != nil:
		return status.Errorf(codes.Unavailable, "%s from server %q: cannot confirm that it leads: %v", method, caller, err)
	case leader != caller:
		return status.Errorf(codes.Aborted, "%s is obeyed from the leader only: the caller is server %q, and the leader is %q", method, caller, leader)
	}
	return nil
}

// askLeader sends a heartbeat now and returns the name of the leader that answered.
func (c *client) askLeader(ctx context.Context) (string, error) {
	_, err := c.call(ctx, leaderCheckTimeout, c.sendHeartbeat)
	if err != nil {
		return "", err
	}
	return c.knownLeader(), nil
}

// sendHeartbeat is one heartbeat, on a connection to a server; the answer names the
// leader.
func (c *client) sendHeartbeat(ctx context.Context, s gridpb.ServersClient) error {
	resp, err := s.Heartbeat(ctx, c.heartbeatRequest())
	if err == nil {
		c.setLeader(resp.GetLeader())
	}
	return err
}
