package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/dial"
	gridpb "github.com/sutragrid/grid/proto"
)

// nodeArgs is the command line a node runs with, after the binary. The node ID is on
// it so that an adopting agent can tell the node from another process with its pid.
func (s *supervisor) nodeArgs(spec nodeSpec) []string {
	return append([]string{
		"storage",
		"-bind=" + s.cfg.BindAddr,
		"-port=" + strconv.Itoa(spec.Port),
		"-data-dir=" + spec.StoragePath,
		"-memory-limit-mb=" + strconv.Itoa(spec.MemoryLimitMB),
		"-node-id=" + spec.ID,
	}, s.certs.args(spec.StoragePath)...)
}

// launch starts a process for n and waits until it passes its health check. A
// cancelled ctx aborts the start and stops the process; the agent shutting down
// leaves it running. The process, if one was started, is returned with any error.
func (s *supervisor) launch(ctx context.Context, n *node) (*proc, error) {
	spec := n.spec
	if err := s.root.prepare(spec.StoragePath); err != nil {
		return nil, err
	}
	if err := checkPortFree(net.JoinHostPort(s.cfg.BindAddr, strconv.Itoa(spec.Port))); err != nil {
		return nil, err
	}
	p, err := s.spawn(n)
	if err != nil {
		return nil, err
	}
	err = s.waitHealthy(ctx, n, p)
	if err == nil {
		s.mu.Lock()
		n.running = true
		s.mu.Unlock()
		s.certs.catchUp(s, n, p)
		return p, nil
	}
	if errors.Is(err, errDetached) {
		return p, err
	}
	s.kill(p, s.killTimeoutOf(n))
	s.mu.Lock()
	n.proc = nil
	s.persistLocked()
	s.mu.Unlock()
	return p, err
}

// spawn starts the node's process, its output going to the node's log files, in a
// process group of its own so that a Ctrl-C meant for the agent does not reach it.
// The new pid is persisted at once, so that an agent that dies before the node is
// healthy still finds it when it comes back.
func (s *supervisor) spawn(n *node) (*proc, error) {
	if err := mkdirAll(n.logDir); err != nil {
		return nil, err
	}
	stdout, err := openLog(filepath.Join(n.logDir, stdoutLog))
	if err != nil {
		return nil, fmt.Errorf("open node log: %w", err)
	}
	defer stdout.Close()
	stderr, err := openLog(filepath.Join(n.logDir, stderrLog))
	if err != nil {
		return nil, fmt.Errorf("open node log: %w", err)
	}
	defer stderr.Close()

	if err := s.certs.prepare(n); err != nil {
		return nil, err
	}
	if err := s.prepareGroup(n); err != nil {
		return nil, err
	}
	cmd := exec.Command(s.cfg.StorageBinary, s.nodeArgs(n.spec)...)
	cmd.Dir = n.spec.StoragePath
	cmd.Stdout, cmd.Stderr = stdout, stderr // *os.File: the child writes to them directly
	setOwnProcessGroup(cmd)
	s.mu.Lock()
	group := n.group
	s.mu.Unlock()
	inside, release := intoGroup(cmd, group)
	// Where this process's stderr begins, for the error should it die.
	stderrFrom, _ := stderr.Seek(0, io.SeekEnd)
	p, err := startProc(cmd)
	release()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.cfg.StorageBinary, err)
	}
	if group != nil && !inside {
		if err := joinGroup(p, group); err != nil {
			return nil, err
		}
	}
	p.stderrFrom = stderrFrom
	s.mu.Lock()
	n.proc, n.running, n.spawned = p, false, true
	s.persistLocked()
	s.mu.Unlock()
	s.logger.Debug("node process started", "node_id", n.spec.ID, "pid", p.pid)
	return p, nil
}

// healthPollInterval is how often a starting node's health is checked: a check is
// one local RPC, which fails at once while the node does not listen, and every
// interval is time the spawn waits for nothing.
const healthPollInterval = 10 * time.Millisecond

// healthDialBackoff is how the agent redials a node that does not listen yet: every
// 10-20ms. gRPC's default waits a second after the first refused dial, which a node
// that listens 100ms after it starts would spend idle; and a backoff that grows to
// 100ms still left a node that listens after 100-300ms (a busy machine) idle for up
// to 100ms. A refused dial on loopback costs microseconds.
var healthDialBackoff = grpc.ConnectParams{
	Backoff:           grpcbackoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.2, Jitter: 0.2, MaxDelay: 20 * time.Millisecond},
	MinConnectTimeout: time.Second,
}

// waitHealthy waits until the node answers its gRPC health check as serving and, to
// be sure that the one answering is this node and not another process on the port,
// tells its node ID.
func (s *supervisor) waitHealthy(ctx context.Context, n *node, p *proc) error {
	conn, err := grpc.NewClient(s.dialAddr(n.spec.Port), dial.Creds(s.cfg.TLS.ClientConfig(nodePeers...)), grpc.WithConnectParams(healthDialBackoff))
	if err != nil {
		return fmt.Errorf("dial node %s: %w", n.spec.ID, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	storage := gridpb.NewStorageClient(conn)
	deadline := time.NewTimer(s.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(healthPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return s.exitError(n, p, "before it was healthy")
		case <-s.ctx.Done():
			return errDetached
		case <-ctx.Done():
			return errAborted
		case <-deadline.C:
			return fmt.Errorf("node %s did not pass its health check within %s: %w", n.spec.ID, s.cfg.StartTimeout, context.DeadlineExceeded)
		case <-tick.C:
		}
		if s.healthy(ctx, health, storage, n.spec.ID) {
			return nil
		}
	}
}

func (s *supervisor) healthy(ctx context.Context, health healthpb.HealthClient, storage gridpb.StorageClient, id string) bool {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false
	}
	st, err := storage.Stats(cctx, &gridpb.StatsRequest{})
	switch status.Code(err) {
	case codes.OK:
		return st.GetNodeId() == id
	case codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated:
		return true // a node that will not say who it is: its health check must do
	}
	return false
}

// exitError describes a process's unexpected exit with the last lines it wrote to
// stderr, which usually say why.
func (s *supervisor) exitError(n *node, p *proc, when string) error {
	msg := fmt.Sprintf("node %s %s %s", n.spec.ID, p.exit, when)
	if s.oomKilled(n, p) {
		msg = fmt.Sprintf("node %s was killed by the kernel %s: out of memory at its limit of %d MB", n.spec.ID, when, n.spec.MemoryLimitMB)
	}
	b, err := tailFileFrom(filepath.Join(n.logDir, stderrLog), p.stderrFrom, 5, 2048)
	if tail := strings.TrimSuffix(strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\n", " | ")), " "), " |"); err == nil && tail != "" {
		msg += ": " + tail
	}
	return errors.New(msg)
}

// checkPortFree fails fast, with a clear error, when the node's port is taken.
func checkPortFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("port of %s is not free: %w", addr, err)
	}
	return ln.Close()
}

func (s *supervisor) killTimeoutOf(n *node) time.Duration {
	select {
	case <-n.stopCh:
		if n.killTimeout > 0 {
			return n.killTimeout
		}
	default:
	}
	return DefaultKillTimeout
}

// kill stops a process: SIGTERM, then SIGKILL after timeout. It returns once the
// process is gone, and with it its listening port.
func (s *supervisor) kill(p *proc, timeout time.Duration) exitStatus {
	if err := p.signal(syscall.SIGTERM); err != nil {
		s.logger.Debug("SIGTERM failed", "pid", p.pid, "error", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exit
	case <-t.C:
	}
	s.logger.Warn("node did not exit after SIGTERM; sending SIGKILL", "pid", p.pid, "timeout", timeout)
	if err := p.signal(syscall.SIGKILL); err != nil {
		s.logger.Warn("SIGKILL failed", "pid", p.pid, "error", err)
	}
	select {
	case <-p.done:
		return p.exit
	case <-s.ctx.Done():
		return exitUnknown
	}
}
