package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// The node reconciler: on the leader, and only there, one loop drives every storage
// node towards what the replicated state asks of it. HTTP handlers only record intent
// (a spawn makes a pending node, a stop a stopping one); the reconciler sees the
// change through a memdb watch, orders the node's agent, and records the outcome
// through Raft. Everything an order needs is in the state, so a new leader resumes
// where the old one stopped, and agents start and stop idempotently, so an order sent
// twice is harmless.
//
// It also closes the loop with reality: every heartbeat lists the nodes the agent
// supervises, and the reconciler compares them with the state. A node that should run
// and is missing from two heartbeats in a row is recorded as crashed and restarted by
// its policy; a process that runs and should not, seen in two heartbeats in a row, is
// stopped and the stop recorded. Two, because one heartbeat may have been sent just
// before an order changed what the agent runs.

// Timing of node orders.
const (
	// startOrderDeadline bounds how long the reconciler keeps retrying a start that
	// fails for want of an answer (the agent unreachable) before it records the node
	// failed. An agent that answers with an error fails the node at once.
	startOrderDeadline = 2 * time.Minute
	// stopOrderGrace is added to a stop's kill timeout to bound its retries likewise.
	stopOrderGrace = time.Minute
	// orderRetryMin and orderRetryMax bound the backoff between attempts.
	orderRetryMin = 250 * time.Millisecond
	orderRetryMax = 10 * time.Second
	// reconcileInterval is how often the loop looks at every node even when nothing
	// woke it: retries come due, and a snapshot restore replaces the watched store.
	reconcileInterval = time.Second
	// driftHeartbeats is how many heartbeats in a row must show a drift before it is
	// corrected.
	driftHeartbeats = 2
)

type orderKind int

const (
	orderStart   orderKind = iota // start a pending node
	orderRevive                   // restart a node its agent lost
	orderStop                     // stop a stopping node
	orderUnstray                  // stop a process the state does not expect
)

func (k orderKind) String() string {
	return [...]string{"start", "restart", "stop", "stop stray"}[k]
}

// order is a node order under way or waiting for its next attempt.
type order struct {
	kind     orderKind
	first    time.Time // first attempt
	attempts int
	next     time.Time // no attempt before
	running  bool
	cancel   context.CancelFunc // of the attempt running
}

// agentView is what an agent's heartbeats said, and the drift they showed.
type agentView struct {
	// missing counts, per node the state has running, the heartbeats in a row that
	// did not list it; stray, per node listed that should not run, the heartbeats in a
	// row that listed it, with the last report of it.
	missing map[string]int
	stray   map[string]int
	strays  map[string]*gridpb.NodeReport
}

// reconciler is the running loop; see the comment at the top of the file.
type reconciler struct {
	s    *Server
	log  hclog.Logger
	ctx  context.Context // ends when leadership does
	wake chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	orders map[string]*order     // by node ID
	views  map[string]*agentView // by agent name
}

func newReconciler(ctx context.Context, s *Server) *reconciler {
	return &reconciler{
		s: s, log: s.logs.nodes, ctx: ctx,
		wake:   make(chan struct{}, 1),
		orders: map[string]*order{},
		views:  map[string]*agentView{},
	}
}

// run drives the nodes until ctx ends, then waits for the orders under way.
func (r *reconciler) run() {
	defer r.wg.Wait()
	for {
		nodes, changed, err := r.s.fsm.State().NodesWatch()
		if err != nil {
			r.log.Error("read nodes", "error", err)
		}
		r.pass(nodes)
		t := time.NewTimer(reconcileInterval)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// poke wakes the loop.
func (r *reconciler) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// pass looks at every node once and starts the orders that are due.
func (r *reconciler) pass(nodes []*fsm.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		seen[n.ID] = true
		kind, ok := r.wantLocked(n)
		o := r.orders[n.ID]
		switch {
		case !ok && o == nil:
			continue
		case o != nil && o.running:
			if !ok || o.kind != kind {
				// The state moved on (a stop while starting): end the attempt; its
				// outcome is not recorded, and the next pass orders what is wanted.
				o.cancel()
			}
			continue
		case !ok || (o != nil && o.kind != kind):
			delete(r.orders, n.ID)
			if !ok {
				continue
			}
			o = nil
		}
		if o == nil {
			o = &order{kind: kind, first: now}
			r.orders[n.ID] = o
		}
		if now.Before(o.next) {
			continue
		}
		r.startLocked(n, o)
	}
	for _, v := range r.views {
		for id, rep := range v.strays {
			if v.stray[id] < driftHeartbeats || r.orders[id] != nil {
				continue
			}
			if n := nodeIn(nodes, id); n != nil && n.Status.Active() && n.Agent == rep.GetAgent() {
				continue // it should run after all: the state moved on
			}
			o := &order{kind: orderUnstray, first: now}
			r.orders[id] = o
			r.startStrayLocked(rep, o)
			delete(v.strays, id)
			delete(v.stray, id)
		}
	}
	for id, o := range r.orders {
		if !seen[id] && o.kind != orderUnstray && !o.running {
			delete(r.orders, id) // the node is gone from the state (a restore)
		}
	}
}

// wantLocked says which order, if any, node n needs now.
func (r *reconciler) wantLocked(n *fsm.Node) (orderKind, bool) {
	switch n.Status {
	case fsm.NodeStatusPending:
		return orderStart, true
	case fsm.NodeStatusStopping:
		return orderStop, true
	case fsm.NodeStatusRunning, fsm.NodeStatusRestarting:
		if v := r.views[n.Agent]; v != nil && v.missing[n.ID] >= driftHeartbeats {
			return orderRevive, true
		}
	}
	return 0, false
}

func nodeIn(nodes []*fsm.Node, id string) *fsm.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// startLocked runs one attempt of order o for node n.
func (r *reconciler) startLocked(n *fsm.Node, o *order) {
	r.attemptLocked(n.ID, o, func(ctx context.Context) bool {
		if o.kind == orderStop {
			return r.stop(ctx, n, o)
		}
		return r.start(ctx, n, o)
	})
}

// startStrayLocked stops a stray process once: if that fails, the next heartbeats
// show it again.
func (r *reconciler) startStrayLocked(rep *gridpb.NodeReport, o *order) {
	r.attemptLocked(rep.GetNodeId(), o, func(ctx context.Context) bool {
		r.unstray(ctx, rep)
		return true
	})
}

// attemptLocked runs one attempt of order o in a goroutine of its own; do reports
// whether the order is done.
func (r *reconciler) attemptLocked(id string, o *order, do func(context.Context) bool) {
	ctx, cancel := context.WithCancel(r.ctx)
	o.running, o.cancel = true, cancel
	o.attempts++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		r.finish(id, o, do(ctx))
	}()
}

// finish ends an attempt: a done order is forgotten, any other waits for its retry.
func (r *reconciler) finish(id string, o *order, done bool) {
	r.mu.Lock()
	o.running, o.cancel = false, nil
	if done {
		if r.orders[id] == o {
			delete(r.orders, id)
		}
		if o.kind == orderRevive {
			for _, v := range r.views {
				delete(v.missing, id)
			}
		}
	} else {
		o.next = time.Now().Add(retryDelay(o.attempts))
	}
	r.mu.Unlock()
	r.poke()
}

// retryDelay is the backoff before attempt n+1: doubling from orderRetryMin.
func retryDelay(attempts int) time.Duration {
	d := orderRetryMin
	for i := 1; i < attempts && d < orderRetryMax; i++ {
		d *= 2
	}
	return min(d, orderRetryMax)
}

// start orders the agent to start node n (a pending node, or one its agent lost) and
// records the outcome. It reports whether the order is done: false asks for a retry.
func (r *reconciler) start(ctx context.Context, n *fsm.Node, o *order) bool {
	if o.kind == orderRevive && n.Status == fsm.NodeStatusRunning {
		// Found missing from its agent: first record the crash, which decides by the
		// node's policy whether it is restarted.
		crash := &fsm.NodeCrashed{ID: n.ID, PID: n.PID, ExitCode: -1, Restarting: n.Restart.Attempts > 0,
			Reason: "the node was not running on agent " + n.Agent}
		r.log.Warn("node is missing from its agent", "node", n.ID, "agent", n.Agent, "pid", n.PID)
		if !r.record(ctx, crash) {
			return false
		}
		if !crash.Restarting {
			return true
		}
	}
	client, err := r.s.agentClient(n.Agent)
	if err == nil {
		var resp *gridpb.StartNodeResponse
		resp, err = client.StartNode(ctx, startRequest(n))
		if err == nil {
			r.log.Info("node started", "node", n.ID, "agent", n.Agent, "pid", resp.GetPid(), "order", o.kind)
			if o.kind == orderRevive {
				return r.record(ctx, &fsm.NodeRestarted{ID: n.ID, PID: int(resp.GetPid()), Restarts: n.Restarts + 1})
			}
			return r.record(ctx, &fsm.NodeStarted{ID: n.ID, PID: int(resp.GetPid()), Endpoint: resp.GetEndpoint()})
		}
	}
	if ctx.Err() != nil || status.Code(err) == codes.Aborted {
		return false // leadership ended, or a stop overtook the start: the next pass decides
	}
	if transient(err) && time.Since(o.first) < startOrderDeadline {
		r.log.Debug("start order failed; retrying", "node", n.ID, "agent", n.Agent, "error", err)
		return false
	}
	r.log.Warn("node failed to start", "node", n.ID, "agent", n.Agent, "error", err)
	return r.record(ctx, &fsm.NodeFailed{ID: n.ID, Error: rpcMessage(err)})
}

// stop orders the agent to stop node n and records the outcome.
func (r *reconciler) stop(ctx context.Context, n *fsm.Node, o *order) bool {
	timeout := n.EffectiveKillTimeout()
	// An agent that is not registered answers NotFound like one that does not run the
	// node: an agent that leaves stops its nodes as it goes.
	client, err := r.s.agentClient(n.Agent)
	if err == nil {
		var resp *gridpb.StopNodeResponse
		resp, err = client.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: n.ID, KillTimeoutMs: timeout.Milliseconds()})
		switch {
		case err == nil:
			r.log.Info("node stopped", "node", n.ID, "agent", n.Agent, "signal", resp.GetSignal())
			return r.record(ctx, &fsm.NodeStopped{ID: n.ID, ExitCode: int(resp.GetExitCode()), Signal: resp.GetSignal()})
		case status.Code(err) == codes.NotFound:
			// The agent does not run it (it never started, or it went away): stopped.
			return r.record(ctx, &fsm.NodeStopped{ID: n.ID, ExitCode: -1})
		}
	}
	if ctx.Err() != nil {
		return false
	}
	if transient(err) && time.Since(o.first) < timeout+stopOrderGrace {
		r.log.Debug("stop order failed; retrying", "node", n.ID, "agent", n.Agent, "error", err)
		return false
	}
	r.log.Warn("node failed to stop", "node", n.ID, "agent", n.Agent, "error", err)
	return r.record(ctx, &fsm.NodeStopFailed{ID: n.ID, Error: rpcMessage(err)})
}

// unstray stops a process that runs and should not, and records the stop.
func (r *reconciler) unstray(ctx context.Context, rep *gridpb.NodeReport) {
	agent, id := rep.GetAgent(), rep.GetNodeId()
	r.log.Warn("stopping a node process the state does not expect", "node", id, "agent", agent, "pid", rep.GetPid())
	client, err := r.s.agentClient(agent)
	if err != nil {
		return
	}
	resp, err := client.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: id, KillTimeoutMs: fsm.DefaultKillTimeout.Milliseconds()})
	if err != nil {
		if status.Code(err) != codes.NotFound && ctx.Err() == nil {
			r.log.Warn("stop a stray node process", "node", id, "agent", agent, "error", err)
		}
		return
	}
	r.record(ctx, &fsm.StrayStopped{Agent: agent, ID: id, PID: int(rep.GetPid()),
		ExitCode: int(resp.GetExitCode()), Signal: resp.GetSignal()})
}

// record applies the outcome of an order and reports whether it was recorded; a
// failure is retried with the order (agents answer a repeated order alike).
func (r *reconciler) record(ctx context.Context, cmd fsm.Command) bool {
	if _, err := r.s.Apply(ctx, cmd); err != nil {
		if ctx.Err() == nil {
			r.log.Error("record node outcome", "command", cmd.Type(), "error", err)
		}
		return errors.Is(err, fsm.ErrRejected) // the state moved on; nothing to retry
	}
	return true
}

// observe compares a heartbeat's list of supervised nodes with the state, and counts
// the drift it shows.
func (r *reconciler) observe(agent string, req *gridpb.HeartbeatRequest) {
	if req.GetPendingReports() > 0 {
		return // a report on its way may explain any difference
	}
	state := r.s.fsm.State()
	nodes, err := state.Nodes(agent)
	if err != nil {
		return
	}
	listed := make(map[string]*gridpb.NodeReport, len(req.GetNodes()))
	for _, rep := range req.GetNodes() {
		listed[rep.GetNodeId()] = rep
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.views[agent]
	if v == nil {
		v = &agentView{missing: map[string]int{}, stray: map[string]int{}, strays: map[string]*gridpb.NodeReport{}}
		r.views[agent] = v
	}
	drift := false
	for _, n := range nodes {
		if r.orders[n.ID] != nil {
			continue // an order is under way: what the agent runs is about to change
		}
		if n.Status != fsm.NodeStatusRunning && n.Status != fsm.NodeStatusRestarting {
			delete(v.missing, n.ID)
			continue
		}
		if listed[n.ID] != nil {
			delete(v.missing, n.ID)
			continue
		}
		v.missing[n.ID]++
		drift = drift || v.missing[n.ID] >= driftHeartbeats
	}
	for id, rep := range listed {
		n, err := state.Node(id)
		stopping := rep.GetEvent() == gridpb.NodeEvent_NODE_EVENT_STOPPED // on its way out already
		if err != nil || stopping || (n != nil && n.Agent == agent && n.Status.Active()) || r.orders[id] != nil {
			delete(v.stray, id)
			delete(v.strays, id)
			continue
		}
		rep.Agent = agent
		v.stray[id]++
		v.strays[id] = rep
		drift = drift || v.stray[id] >= driftHeartbeats
	}
	for id := range v.stray {
		if listed[id] == nil {
			delete(v.stray, id)
			delete(v.strays, id)
		}
	}
	if drift {
		r.poke()
	}
}

// forget drops what heartbeats said of an agent: it registered anew or left.
func (r *reconciler) forget(agent string) {
	r.mu.Lock()
	delete(r.views, agent)
	r.mu.Unlock()
}

// transient reports whether an order failed for want of an answer, so that sending it
// again may succeed.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		return true
	}
	return false
}

// startRequest is the StartNode order for node n.
func startRequest(n *fsm.Node) *gridpb.StartNodeRequest {
	return &gridpb.StartNodeRequest{
		NodeId: n.ID, Port: int32(n.Port), StoragePath: n.StoragePath, MemoryLimitMb: int32(n.MemoryLimitMB), CpuLimit: n.CPULimit,
		Restart: &gridpb.RestartPolicy{
			Attempts: int32(n.Restart.Attempts), IntervalMs: n.Restart.Interval.Milliseconds(),
			DelayMs: n.Restart.Delay.Milliseconds(), MaxDelayMs: n.Restart.MaxDelay.Milliseconds(),
		},
	}
}
