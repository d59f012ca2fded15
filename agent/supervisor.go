package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"math"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/cgroup"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
)

// DefaultKillTimeout is how long a node has to exit after SIGTERM before it gets
// SIGKILL, when a StopNode request does not say.
const DefaultKillTimeout = 5 * time.Second

var (
	// errDetached ends work on a node because the agent is shutting down and leaves
	// the node running, for the next agent to adopt.
	errDetached = errors.New("the agent is shutting down")
	// errAborted ends a start because the node is being stopped or the caller left.
	errAborted = errors.New("start aborted")
)

// nodeSpec is what the leader asked to run. It is comparable: a repeated StartNode
// with an equal spec is answered with the running node.
type nodeSpec struct {
	ID            string
	Port          int
	StoragePath   string // clean, absolute, inside the storage root
	MemoryLimitMB int
	CPULimit      float64 // cores; 0 for none
	Policy        restart.Policy
}

// node is one storage node the supervisor runs. Its process is started, watched and
// restarted by one goroutine at a time: the caller of StartNode until the node is
// healthy, then run.
type node struct {
	spec   nodeSpec
	logDir string

	// Guarded by supervisor.mu.
	proc     *proc // the current process; nil between an exit and the restart
	running  bool  // proc passed its health check (or was adopted)
	spawned  bool  // a process was started: the node belongs in the state file
	stopping bool
	restarts int
	history  []time.Time // restarts that count against the policy
	startErr error       // why the first start failed
	// lostPid is the pid a node had when an adopting agent found it gone.
	lostPid int
	// group is the node's cgroup (isolation.go), nil without cgroups; oomBase is its
	// count of OOM kills when the current process started.
	group   *cgroup.Group
	oomBase uint64

	ready chan struct{} // closed once the first start has succeeded or failed

	stopOnce    sync.Once
	stopCh      chan struct{} // closed to ask for the node to be stopped
	killTimeout time.Duration // written before stopCh is closed

	done    chan struct{} // closed once the supervisor no longer runs the node
	stopped exitStatus    // how the node ended when stopped; valid once done is closed
}

func newNode(spec nodeSpec, dataDir string) *node {
	return &node{
		spec:   spec,
		logDir: nodeLogDir(dataDir, spec.ID),
		ready:  make(chan struct{}),
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// requestStop asks the node's goroutine to stop the node; the first request's
// timeout wins.
func (n *node) requestStop(timeout time.Duration) {
	n.stopOnce.Do(func() {
		n.killTimeout = timeout
		close(n.stopCh)
	})
}

// supervisor starts, watches, restarts and stops an agent's storage nodes, and keeps
// the state file that lets a restarted agent adopt them.
type supervisor struct {
	cfg    *Config
	root   storageRoot
	logger hclog.Logger
	// report queues a report for the servers; it must not block.
	report func(*gridpb.NodeReport)
	// advertise is the host the leader reaches nodes at.
	advertise string
	// certs is the certificate the nodes serve with; nil without TLS (tls.go).
	certs *nodeCerts
	// dataDirResolved is the data dir with symlinks resolved.
	dataDirResolved string
	metrics         *agentMetrics // nil in unit tests
	// cgroups is where nodes' cgroups are made; never nil (isolation.go).
	cgroups *cgroup.Host

	// ctx is cancelled when the agent shuts down: the supervisor then lets go of its
	// nodes and leaves them running.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	now    func() time.Time
	jitter func() float64

	mu       sync.Mutex
	nodes    map[string]*node
	detached bool
}

func newSupervisor(cfg *Config, root storageRoot, advertise string, report func(*gridpb.NodeReport)) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	resolved, err := filepath.EvalSymlinks(cfg.DataDir)
	if err != nil {
		resolved = cfg.DataDir
	}
	return &supervisor{
		dataDirResolved: resolved,
		cfg:             cfg,
		root:            root,
		logger:          cfg.Logger.Named("supervisor"),
		report:          report,
		advertise:       advertise,
		ctx:             ctx,
		cancel:          cancel,
		cgroups:         cgroup.Off("not opened"),
		now:             time.Now,
		jitter:          rand.Float64,
		nodes:           map[string]*node{},
	}
}

// detach lets go of every node, leaving the processes running: orders in flight
// end, and no goroutine starts watching a node any more.
func (s *supervisor) detach() {
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
	s.cancel()
}

// shutdown detaches and waits for the supervisor's goroutines.
func (s *supervisor) shutdown() {
	s.detach()
	s.wg.Wait()
}

// goWatch runs a node's watching goroutine unless the supervisor has detached.
func (s *supervisor) goWatch(n *node, recoverFirst bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detached {
		return false
	}
	s.wg.Add(1)
	go s.run(n, recoverFirst)
	return true
}

// specFrom checks a StartNode request and turns it into a spec.
func (s *supervisor) specFrom(req *gridpb.StartNodeRequest) (nodeSpec, error) {
	if err := validNodeID(req.GetNodeId()); err != nil {
		return nodeSpec{}, err
	}
	if p := req.GetPort(); p < 1 || p > 65535 {
		return nodeSpec{}, fmt.Errorf("port %d is out of range 1-65535", p)
	}
	if req.GetMemoryLimitMb() < 0 {
		return nodeSpec{}, fmt.Errorf("memory limit %d MB is negative", req.GetMemoryLimitMb())
	}
	if c := req.GetCpuLimit(); c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
		return nodeSpec{}, fmt.Errorf("CPU limit %v is not a number of cores", c)
	}
	path := req.GetStoragePath()
	if path == "" {
		path = req.GetNodeId() // a directory named after the node, in the storage root
	}
	path, err := s.root.resolve(path)
	if err != nil {
		return nodeSpec{}, err
	}
	// The agent's own files share the data dir, which is the default storage root:
	// a node may live next to them, not among or around them.
	for _, dir := range []string{s.cfg.DataDir, s.dataDirResolved} {
		for _, own := range ownPaths(dir) {
			if within(path, own) || within(own, path) {
				return nodeSpec{}, fmt.Errorf("storage path %s overlaps the agent's own %s", path, own)
			}
		}
	}
	policy, err := policyFromProto(req.GetRestart())
	if err != nil {
		return nodeSpec{}, err
	}
	return nodeSpec{
		ID:            req.GetNodeId(),
		Port:          int(req.GetPort()),
		StoragePath:   path,
		MemoryLimitMB: int(req.GetMemoryLimitMb()),
		CPULimit:      req.GetCpuLimit(),
		Policy:        policy,
	}, nil
}

// endpoint is where the leader reaches a node.
func (s *supervisor) endpoint(port int) string {
	return net.JoinHostPort(s.advertise, strconv.Itoa(port))
}

// dialAddr is where the agent itself reaches a node, for health checks.
func (s *supervisor) dialAddr(port int) string {
	host := s.cfg.BindAddr
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// start starts a node and waits until it is healthy. It answers a request for a node
// that already runs with the same spec with that node's pid.
func (s *supervisor) start(ctx context.Context, req *gridpb.StartNodeRequest) (int, error) {
	spec, err := s.specFrom(req)
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	if n := s.nodes[spec.ID]; n != nil {
		s.mu.Unlock()
		return s.startExisting(ctx, n, spec)
	}
	if err := s.checkFitsLocked(spec); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	n := newNode(spec, s.cfg.DataDir)
	s.nodes[spec.ID] = n
	s.mu.Unlock()

	// The start is aborted if the caller goes away or the node is stopped meanwhile.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stopCh:
			cancel()
		case <-actx.Done():
		}
	}()
	s.logger.Info("starting node", "node_id", spec.ID, "port", spec.Port, "storage_path", spec.StoragePath, "memory_limit_mb", spec.MemoryLimitMB, "cpu_limit", spec.CPULimit)
	p, err := s.launch(actx, n)
	if err != nil {
		s.mu.Lock()
		n.startErr = err
		s.mu.Unlock()
		close(n.ready)
		if errors.Is(err, errDetached) {
			return 0, status.Error(codes.Unavailable, err.Error())
		}
		if p != nil {
			n.stopped = p.exit
		}
		s.remove(n)
		s.logger.Warn("node did not start", "node_id", spec.ID, "error", err)
		return 0, startStatus(ctx, n, err)
	}
	close(n.ready)
	if !s.goWatch(n, false) {
		// Healthy just as the agent shuts down: the node runs on, recorded for the
		// next agent, but this one no longer answers for it.
		return 0, status.Error(codes.Unavailable, errDetached.Error())
	}
	s.logger.Info("node started", "node_id", spec.ID, "pid", p.pid, "endpoint", s.endpoint(spec.Port))
	return p.pid, nil
}

// startStatus gives a failed start its gRPC status.
func startStatus(ctx context.Context, n *node, err error) error {
	switch {
	case errors.Is(err, errAborted):
		select {
		case <-n.stopCh:
			return status.Errorf(codes.Aborted, "node %s was stopped while it started", n.spec.ID)
		default:
		}
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}

// startExisting answers a StartNode for a node the supervisor already has.
func (s *supervisor) startExisting(ctx context.Context, n *node, spec nodeSpec) (int, error) {
	s.mu.Lock()
	same, stopping := n.spec == spec, n.stopping
	s.mu.Unlock()
	switch {
	case stopping:
		// Unavailable: once the stop is done, the same start succeeds.
		return 0, status.Errorf(codes.Unavailable, "node %s is stopping; start it again once it stopped", spec.ID)
	case !same:
		return 0, status.Errorf(codes.FailedPrecondition, "node %s already runs with another spec (port %d, storage path %s, memory limit %d MB, CPU limit %g); stop it first",
			spec.ID, n.spec.Port, n.spec.StoragePath, n.spec.MemoryLimitMB, n.spec.CPULimit)
	}
	select {
	case <-n.ready:
	case <-ctx.Done():
		return 0, status.FromContextError(ctx.Err()).Err()
	case <-s.ctx.Done():
		return 0, status.Error(codes.Unavailable, errDetached.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.startErr != nil {
		return 0, status.Errorf(codes.FailedPrecondition, "node %s did not start: %v", spec.ID, n.startErr)
	}
	if n.proc == nil || !n.running {
		return 0, status.Errorf(codes.Unavailable, "node %s is being restarted after it exited", spec.ID)
	}
	return n.proc.pid, nil
}

// checkFitsLocked refuses a new node beyond MaxNodes, or one whose port or storage
// path another node already uses.
func (s *supervisor) checkFitsLocked(spec nodeSpec) error {
	if len(s.nodes) >= s.cfg.MaxNodes {
		return status.Errorf(codes.ResourceExhausted, "the agent already runs its maximum of %d nodes", s.cfg.MaxNodes)
	}
	for _, o := range s.nodes {
		if o.spec.Port == spec.Port {
			return status.Errorf(codes.FailedPrecondition, "port %d is already used by node %s", spec.Port, o.spec.ID)
		}
		if within(o.spec.StoragePath, spec.StoragePath) || within(spec.StoragePath, o.spec.StoragePath) {
			return status.Errorf(codes.FailedPrecondition, "storage path %s overlaps node %s's %s", spec.StoragePath, o.spec.ID, o.spec.StoragePath)
		}
	}
	return nil
}

// stop stops a node: SIGTERM, SIGKILL after timeout, and answers once the process is
// gone. A node waiting to be restarted is not restarted.
func (s *supervisor) stop(ctx context.Context, id string, timeout time.Duration) (exitStatus, error) {
	if err := validNodeID(id); err != nil {
		return exitStatus{}, status.Error(codes.InvalidArgument, err.Error())
	}
	if timeout <= 0 {
		timeout = DefaultKillTimeout
	}
	s.mu.Lock()
	n := s.nodes[id]
	if n != nil {
		n.stopping = true
	}
	s.mu.Unlock()
	if n == nil {
		return exitStatus{}, status.Errorf(codes.NotFound, "node %s is not running on this agent", id)
	}
	s.logger.Info("stopping node", "node_id", id, "kill_timeout", timeout)
	n.requestStop(timeout)
	select {
	case <-n.done:
		return n.stopped, nil
	case <-ctx.Done():
		return exitStatus{}, status.FromContextError(ctx.Err()).Err()
	case <-s.ctx.Done():
		return exitStatus{}, status.Error(codes.Unavailable, errDetached.Error())
	}
}

// stopAll stops every node, in parallel, and reports each one stopped: the agent is
// leaving for good.
func (s *supervisor) stopAll(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.nodes))
	for id := range s.nodes {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.mu.Lock()
			var pid int32
			if n := s.nodes[id]; n != nil && n.proc != nil {
				pid = int32(n.proc.pid)
			}
			s.mu.Unlock()
			exit, err := s.stop(ctx, id, timeout)
			if status.Code(err) == codes.NotFound {
				return // it went away by itself meanwhile
			}
			if err != nil {
				errs[i] = fmt.Errorf("stop node %s: %w", id, err)
				return
			}
			s.send(&gridpb.NodeReport{NodeId: id, Event: gridpb.NodeEvent_NODE_EVENT_STOPPED, Pid: pid,
				ExitCode: int32(exit.Code), Signal: exit.Signal})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runningReports describes the nodes that run now, for a registration.
func (s *supervisor) runningReports() []*gridpb.NodeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*gridpb.NodeReport
	for _, n := range s.nodes {
		if n.proc != nil && n.running && !n.stopping {
			out = append(out, &gridpb.NodeReport{NodeId: n.spec.ID, Event: gridpb.NodeEvent_NODE_EVENT_RUNNING,
				Pid: int32(n.proc.pid), Restarts: int32(n.restarts)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeId < out[j].NodeId })
	return out
}

// supervisedReports describes every node the supervisor is responsible for, for a
// heartbeat: RUNNING (pid 0 while its first start is under way), CRASHED with
// restarting set while it waits to be restarted, STOPPED while it is being stopped.
func (s *supervisor) supervisedReports() []*gridpb.NodeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*gridpb.NodeReport, 0, len(s.nodes))
	for _, n := range s.nodes {
		r := &gridpb.NodeReport{Agent: s.cfg.Name, NodeId: n.spec.ID, Event: gridpb.NodeEvent_NODE_EVENT_RUNNING, Restarts: int32(n.restarts)}
		if n.proc != nil {
			r.Pid = int32(n.proc.pid)
		}
		switch {
		case n.stopping:
			r.Event = gridpb.NodeEvent_NODE_EVENT_STOPPED
		case n.proc == nil && n.spawned:
			r.Event, r.Restarting = gridpb.NodeEvent_NODE_EVENT_CRASHED, true
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeId < out[j].NodeId })
	return out
}

// logs returns the tail of a node's logs; they outlive the node.
func (s *supervisor) logs(id string, lines int) (stdout, stderr []byte, err error) {
	if err := validNodeID(id); err != nil {
		return nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if lines <= 0 {
		lines = 100
	}
	dir := nodeLogDir(s.cfg.DataDir, id)
	if !dirExists(dir) {
		return nil, nil, status.Errorf(codes.NotFound, "node %s has no logs on this agent", id)
	}
	if stdout, err = tailFile(filepath.Join(dir, stdoutLog), lines, maxTailBytes); err != nil {
		return nil, nil, status.Errorf(codes.Internal, "read node %s stdout: %v", id, err)
	}
	if stderr, err = tailFile(filepath.Join(dir, stderrLog), lines, maxTailBytes); err != nil {
		return nil, nil, status.Errorf(codes.Internal, "read node %s stderr: %v", id, err)
	}
	return stdout, stderr, nil
}

// send stamps a report with the agent's name and the time, and queues it.
func (s *supervisor) send(r *gridpb.NodeReport) {
	r.Agent = s.cfg.Name
	r.TimeUnixNano = s.now().UnixNano()
	s.report(r)
}

// persistLocked writes the nodes that have a process, or should have one, to the
// state file. Failing to persist does not stop the nodes; it is logged.
func (s *supervisor) persistLocked() {
	st := persistedState{}
	for _, n := range s.nodes {
		if !n.spawned {
			continue
		}
		pn := persistedNode{
			NodeID:        n.spec.ID,
			Port:          n.spec.Port,
			StoragePath:   n.spec.StoragePath,
			MemoryLimitMB: n.spec.MemoryLimitMB,
			CPULimit:      n.spec.CPULimit,
			Restart:       persistPolicy(n.spec.Policy),
			Restarts:      n.restarts,
		}
		if n.proc != nil && !n.proc.exited() {
			pn.PID, pn.StartTime = n.proc.pid, n.proc.startTime
		}
		if n.group != nil {
			pn.Cgroup = n.group.Name
		}
		for _, t := range n.history {
			pn.RestartTimes = append(pn.RestartTimes, t.UnixNano())
		}
		st.Nodes = append(st.Nodes, pn)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].NodeID < st.Nodes[j].NodeID })
	if err := saveState(s.cfg.DataDir, st); err != nil {
		s.logger.Error("cannot persist the nodes this agent runs; after a restart it may not adopt them", "error", err)
	}
}
