package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/dial"
	gridpb "github.com/sutragrid/grid/proto"
)

// callTimeout bounds one call to a server. Register and reports go through Raft on
// the leader, which can take a moment during an election.
const callTimeout = 10 * time.Second

// maxNotFoundRetries is how often a report the servers answer NotFound is sent again
// after registering anew (which tells them the agent's nodes), before it is dropped as
// concerning a node they no longer know.
const maxNotFoundRetries = 3

var errNoServers = errors.New("no server known yet: waiting for gossip")

// client talks to the servers for the agent: it registers, heartbeats, and delivers
// node reports in order, choosing an alive server from gossip and failing over to
// another when one does not answer. The servers forward to the leader.
type client struct {
	name    string
	logger  hclog.Logger
	servers *serverTable
	conns   *dial.Pool
	queue   *reportQueue
	// registration builds the agent's registration, with the nodes it runs now.
	registration func() *gridpb.RegisterRequest
	// token is the agent's ACL token, sent with every call.
	token string
	// supervised lists the nodes the agent supervises now, for each heartbeat.
	supervised func() []*gridpb.NodeReport
	heartbeat  time.Duration // the configured interval
	metrics    *agentMetrics // nil in unit tests

	mu         sync.Mutex
	current    string        // the server in use
	registered chan struct{} // closed while registered; replaced when registration is lost
	isReg      bool
	interval   time.Duration // the interval in use
	kick       chan struct{} // asks the heartbeat loop to register again now
	leader     string        // the name of the server that last answered as leader (leader.go)

	askMu sync.Mutex // one question at a time about who leads (leader.go)
}

func newClient(cfg *Config, servers *serverTable, queue *reportQueue, registration func() *gridpb.RegisterRequest) *client {
	return &client{
		name:         cfg.Name,
		logger:       cfg.Logger.Named("client"),
		servers:      servers,
		conns:        dial.NewPool(cfg.TLS.ClientConfig(serverPeers...)),
		queue:        queue,
		registration: registration,
		token:        cfg.Token,
		heartbeat:    cfg.HeartbeatInterval,
		registered:   make(chan struct{}),
		interval:     cfg.HeartbeatInterval,
		kick:         make(chan struct{}, 1),
	}
}

// call runs fn against a server, and moves on to another server next time if this
// one failed for a reason another might not have.
func (c *client) call(ctx context.Context, timeout time.Duration, fn func(context.Context, gridpb.ServersClient) error) (string, error) {
	addr := c.pick()
	if addr == "" {
		return "", errNoServers
	}
	conn, err := c.conns.Get(addr)
	if err != nil {
		c.rotate(addr)
		return addr, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.token != "" {
		cctx = metadata.AppendToOutgoingContext(cctx, auth.TokenMetadata, c.token)
	}
	err = fn(cctx, gridpb.NewServersClient(conn))
	switch status.Code(err) {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated:
		// An answer about the request itself: another server would say the same.
	default:
		c.rotate(addr)
	}
	return addr, err
}

// pick returns the server in use if gossip still has it alive, or else a random
// alive one, so that agents spread over the servers.
func (c *client) pick() string {
	list := c.servers.list()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(list) == 0 {
		return ""
	}
	if !slices.Contains(list, c.current) {
		c.current = list[rand.IntN(len(list))]
	}
	return c.current
}

// rotate moves on from a server that failed to the next alive one.
func (c *client) rotate(failed string) {
	list := c.servers.list()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current != failed || len(list) == 0 {
		return
	}
	i, _ := slices.BinarySearch(list, failed)
	c.current = list[(i+1)%len(list)]
}

// register announces the agent to the servers.
func (c *client) register(ctx context.Context) error {
	req := c.registration()
	var resp *gridpb.RegisterResponse
	addr, err := c.call(ctx, callTimeout, func(ctx context.Context, s gridpb.ServersClient) (err error) {
		resp, err = s.Register(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	c.setLeader(resp.GetLeader())
	interval := c.heartbeat
	if ms := resp.GetHeartbeatIntervalMs(); ms > 0 {
		// Never heartbeat less often than the servers want.
		interval = min(interval, time.Duration(ms)*time.Millisecond)
	}
	c.mu.Lock()
	c.interval = interval
	if !c.isReg {
		c.isReg = true
		close(c.registered)
	}
	c.mu.Unlock()
	c.logger.Info("registered with the servers", "server", addr, "nodes", len(req.GetNodes()), "heartbeat_interval", interval)
	return nil
}

// lose records that the servers no longer know the agent, and has the heartbeat loop
// register again at once.
func (c *client) lose(why string) {
	c.mu.Lock()
	if c.isReg {
		c.isReg = false
		c.registered = make(chan struct{})
		c.logger.Warn("the servers do not know this agent; registering again", "reason", why)
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *client) state() (registered bool, wait <-chan struct{}, interval time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isReg, c.registered, c.interval
}

// heartbeatLoop registers, then heartbeats every interval, and registers again
// whenever the servers answer that they do not know the agent.
func (c *client) heartbeatLoop(ctx context.Context) {
	retry := backoff{min: 200 * time.Millisecond, max: 5 * time.Second}
	failed := false
	for {
		registered, _, interval := c.state()
		if !registered {
			if err := c.register(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.logRetry("register", err)
				if !c.sleep(ctx, retry.next()) {
					return
				}
				continue
			}
			retry.reset()
			continue
		}
		wait := interval
		if failed {
			wait = min(interval, retry.next()) // the last heartbeat failed: try again sooner
		}
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			continue
		case <-time.After(wait):
		}
		// A heartbeat that takes longer than the interval is as good as lost: try
		// another server rather than let the servers see the agent go quiet.
		_, err := c.call(ctx, min(max(interval, time.Second), callTimeout), c.sendHeartbeat)
		failed = err != nil
		c.metrics.heartbeat(err)
		switch {
		case err == nil:
			retry.reset()
		case status.Code(err) == codes.NotFound:
			c.lose(status.Convert(err).Message())
		case ctx.Err() != nil:
			return
		default:
			c.logRetry("heartbeat", err)
		}
	}
}

// heartbeatRequest says the agent is alive and what it runs.
func (c *client) heartbeatRequest() *gridpb.HeartbeatRequest {
	req := &gridpb.HeartbeatRequest{Name: c.name, PendingReports: int32(c.queue.len())}
	if c.supervised != nil {
		req.Nodes = c.supervised()
	}
	return req
}

// sleep waits d, or less if gossip finds a server while none was known; false if ctx
// ended.
func (c *client) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-c.servers.changed:
	}
	return true
}

func (c *client) logRetry(what string, err error) {
	if errors.Is(err, errNoServers) {
		c.logger.Debug(what+" waits for a server", "error", err)
		return
	}
	c.logger.Warn(what+" failed; will retry", "error", err)
}

// reportLoop delivers queued reports one at a time, in order, once registered. A
// report is retried with backoff until a server accepts it; the servers' NotFound has
// the agent register again first.
func (c *client) reportLoop(ctx context.Context) {
	retry := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	notFound := 0
	for {
		r, ok := c.queue.peek()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-c.queue.pushed:
			}
			continue
		}
		_, wait, _ := c.state()
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
		_, err := c.call(ctx, callTimeout, func(ctx context.Context, s gridpb.ServersClient) error {
			_, err := s.ReportNode(ctx, r)
			return err
		})
		switch code := status.Code(err); {
		case err == nil:
			c.queue.pop()
			retry.reset()
			notFound = 0
			continue
		case ctx.Err() != nil:
			return
		case refusedForGood(code):
			c.logger.Error("the servers refused a node report; dropping it", "node_id", r.GetNodeId(), "event", r.GetEvent(), "error", err)
			c.queue.pop()
			continue
		case code == codes.NotFound && notFound < maxNotFoundRetries:
			notFound++
			c.lose(status.Convert(err).Message())
			continue
		case code == codes.NotFound:
			c.logger.Warn("the servers do not know this node; dropping its report", "node_id", r.GetNodeId(), "event", r.GetEvent(), "error", err)
			c.queue.pop()
			notFound = 0
			continue
		}
		c.logRetry("node report", err)
		if !c.sleep(ctx, retry.next()) {
			return
		}
	}
}

// refusedForGood reports whether the servers refused a report in a way that sending
// it again cannot change; retrying it would hold up every report behind it.
func refusedForGood(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.AlreadyExists, codes.OutOfRange, codes.Unimplemented:
		return true
	}
	return false
}

// unregister removes the agent from the servers, retrying until ctx ends.
func (c *client) unregister(ctx context.Context) error {
	retry := backoff{min: 100 * time.Millisecond, max: time.Second}
	for {
		_, err := c.call(ctx, callTimeout, func(ctx context.Context, s gridpb.ServersClient) error {
			_, err := s.Unregister(ctx, &gridpb.UnregisterRequest{Name: c.name})
			return err
		})
		if err == nil || status.Code(err) == codes.NotFound {
			return nil
		}
		c.logRetry("unregister", err)
		if !c.sleep(ctx, retry.next()) {
			return fmt.Errorf("unregister: %w", err)
		}
	}
}

func (c *client) close() { c.conns.Close() }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// backoff yields exponentially growing waits with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur + rand.N(b.cur/4+1)
}

func (b *backoff) reset() { b.cur = 0 }
