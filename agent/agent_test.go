//go:build linux

package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
	"github.com/sutragrid/grid/version"
)

const waitLong = 60 * time.Second

func TestAgentRegistersHeartbeatsAndRegistersAgainWhenForgotten(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-reg", t.TempDir(), srv))

	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) == 1 })
	regs, _, _, _, _ := srv.snapshot()
	r := regs[0]
	host, _ := os.Hostname()
	if r.GetName() != "agent-reg" || r.GetAddress() != a.RPCAddr() || r.GetHostname() != host ||
		r.GetPlatform() != runtime.GOOS+"/"+runtime.GOARCH || r.GetVersion() != version.String() || r.GetMaxNodes() != 10 {
		t.Fatalf("registration = %v", r)
	}
	gridtest.WaitUntil(t, waitLong, "heartbeats", func() bool { _, hb, _, _, _ := srv.snapshot(); return hb >= 2 })
	if !healthy(a.RPCAddr()) {
		t.Fatal("the agent's gRPC endpoint does not serve the health service")
	}

	// The servers lose their state: the next heartbeat is answered NotFound, and the
	// agent registers again by itself.
	srv.forget()
	gridtest.WaitUntil(t, waitLong, "a second registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) == 2 })
}

func TestClientFailsOverToAnotherServer(t *testing.T) {
	t.Parallel()
	s1, s2 := newTestServer(t), newTestServer(t)
	s2.join(t, s1)
	startAgent(t, testConfig(t, "agent-failover", t.TempDir(), s1))
	registered := func(s *testServer) bool { regs, _, _, _, _ := s.snapshot(); return len(regs) > 0 }
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { return registered(s1) || registered(s2) })

	// The server the agent talks to stops answering while gossip still has it alive.
	// The agent moves on to the other, which does not know it yet: it registers
	// there and heartbeats on.
	used, other := s1, s2
	if registered(s2) {
		used, other = s2, s1
	}
	used.grpc.Stop()
	gridtest.WaitUntil(t, waitLong, "heartbeats to the other server", func() bool {
		regs, hb, _, _, _ := other.snapshot()
		return len(regs) == 1 && hb >= 2
	})
}

func TestReportRefusedForGoodDoesNotHoldUpTheQueue(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-refused", t.TempDir(), srv))
	a.sup.send(&gridpb.NodeReport{NodeId: "not-yours", Event: gridpb.NodeEvent_NODE_EVENT_CRASHED})
	a.sup.send(&gridpb.NodeReport{NodeId: "n1", Event: gridpb.NodeEvent_NODE_EVENT_CRASHED})
	gridtest.WaitUntil(t, waitLong, "the report behind the refused one", func() bool { return len(srv.reportsOf("n1")) == 1 })
	if r := srv.reportsOf("n1")[0]; r.GetAgent() != "agent-refused" || r.GetTimeUnixNano() == 0 {
		t.Fatalf("report = %v", r)
	}
}

func TestStartNodeIsHealthyAndIdempotent(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cfg := testConfig(t, "agent-start", t.TempDir(), srv)
	a := startAgent(t, cfg)
	c := agentClient(t, a)
	port := gridtest.FreePort(t)

	resp := startNode(t, c, "n1", port, nil)
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); resp.GetEndpoint() != want {
		t.Fatalf("endpoint = %q, want %q", resp.GetEndpoint(), want)
	}
	if !healthy(resp.GetEndpoint()) || !alive(int(resp.GetPid())) {
		t.Fatalf("node pid %d at %s is not healthy", resp.GetPid(), resp.GetEndpoint())
	}
	// The node runs in a process group of its own, away from the agent's terminal.
	if pgid, _ := syscall.Getpgid(int(resp.GetPid())); pgid != int(resp.GetPid()) {
		t.Fatalf("node's process group = %d, want its own (%d)", pgid, resp.GetPid())
	}
	if again := startNode(t, c, "n1", port, nil); again.GetPid() != resp.GetPid() {
		t.Fatalf("starting the same node again answered pid %d, want %d", again.GetPid(), resp.GetPid())
	}

	logs, err := c.NodeLogs(context.Background(), &gridpb.NodeLogsRequest{NodeId: "n1", Lines: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs.GetStderr()), "storage node started") {
		t.Fatalf("node stderr = %q", logs.GetStderr())
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *gridpb.StartNodeRequest
		code codes.Code
	}{
		{"other spec for a running node", &gridpb.StartNodeRequest{NodeId: "n1", Port: int32(port + 1), StoragePath: "nodes-data/n1"}, codes.FailedPrecondition},
		{"port of another node", &gridpb.StartNodeRequest{NodeId: "n2", Port: int32(port), StoragePath: "nodes-data/n2"}, codes.FailedPrecondition},
		{"storage path escaping the root", &gridpb.StartNodeRequest{NodeId: "n2", Port: 1, StoragePath: "../elsewhere"}, codes.InvalidArgument},
		{"storage path is the agent's logs", &gridpb.StartNodeRequest{NodeId: "n2", Port: 1, StoragePath: "logs/n2"}, codes.InvalidArgument},
		{"bad node ID", &gridpb.StartNodeRequest{NodeId: "../n2", Port: 1, StoragePath: "n2"}, codes.InvalidArgument},
		{"no port", &gridpb.StartNodeRequest{NodeId: "n2", StoragePath: "n2"}, codes.InvalidArgument},
		{"negative memory limit", &gridpb.StartNodeRequest{NodeId: "n2", Port: 1, MemoryLimitMb: -1}, codes.InvalidArgument},
		{"negative restart policy", &gridpb.StartNodeRequest{NodeId: "n2", Port: 1, Restart: &gridpb.RestartPolicy{Attempts: -1}}, codes.InvalidArgument},
	} {
		_, err := c.StartNode(ctx, tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
	}
	if _, err := c.NodeLogs(ctx, &gridpb.NodeLogsRequest{NodeId: "never-started"}); status.Code(err) != codes.NotFound {
		t.Errorf("logs of an unknown node: %v, want NotFound", err)
	}
}

func TestStartNodeFailsWithExitCodeAndStderr(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cfg := testConfig(t, "agent-fail", t.TempDir(), srv)
	a := startAgent(t, cfg)
	c := agentClient(t, a)

	// A data dir that belongs to another node: the storage node refuses to start.
	dir := filepath.Join(cfg.DataDir, "nodes-data", "n1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-id"), []byte("someone-else\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := c.StartNode(context.Background(), &gridpb.StartNodeRequest{NodeId: "n1", Port: int32(gridtest.FreePort(t)), StoragePath: dir})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "exited with code 1") || !strings.Contains(err.Error(), "someone-else") {
		t.Fatalf("start error = %v, want FailedPrecondition with the exit code and stderr", err)
	}
	// The failed node is forgotten: its port can be used by another.
	if _, err := c.StopNode(context.Background(), &gridpb.StopNodeRequest{NodeId: "n1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("stop of a node that never started: %v, want NotFound", err)
	}
}

func TestCrashedNodeIsRestartedAndReportsSurviveUnavailableServers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-crash", t.TempDir(), srv))
	c := agentClient(t, a)
	resp := startNode(t, c, "n1", gridtest.FreePort(t), fastPolicy(3))
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) >= 1 })

	// The servers are between leaders: reports are refused until they are back.
	srv.setRefuse(true)
	if err := syscall.Kill(int(resp.GetPid()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitUntil(t, waitLong, "refused reports", func() bool { _, _, _, _, refused := srv.snapshot(); return refused >= 2 })
	srv.setRefuse(false)

	gridtest.WaitUntil(t, waitLong, "CRASHED then RESTARTED", func() bool { return len(srv.reportsOf("n1")) >= 2 })
	rs := srv.reportsOf("n1")
	crashed, restarted := rs[0], rs[1]
	if crashed.GetEvent() != gridpb.NodeEvent_NODE_EVENT_CRASHED || crashed.GetPid() != resp.GetPid() ||
		crashed.GetSignal() != "SIGKILL" || crashed.GetExitCode() != -1 || !crashed.GetRestarting() || crashed.GetAgent() != "agent-crash" {
		t.Fatalf("first report = %v", crashed)
	}
	if restarted.GetEvent() != gridpb.NodeEvent_NODE_EVENT_RESTARTED || restarted.GetPid() == resp.GetPid() || restarted.GetRestarts() != 1 {
		t.Fatalf("second report = %v", restarted)
	}
	if !healthy(resp.GetEndpoint()) || !alive(int(restarted.GetPid())) {
		t.Fatal("the restarted node is not healthy")
	}
	// Asking again for the running node answers its new pid.
	if again := startNode(t, c, "n1", int(portOf(resp.GetEndpoint())), fastPolicy(3)); again.GetPid() != restarted.GetPid() {
		t.Fatalf("pid after restart = %d, want %d", again.GetPid(), restarted.GetPid())
	}
}

func TestRestartPolicyExhaustedFailsTheNode(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cfg := testConfig(t, "agent-exhaust", t.TempDir(), srv)
	a := startAgent(t, cfg)
	c := agentClient(t, a)
	resp := startNode(t, c, "n1", gridtest.FreePort(t), fastPolicy(1))

	// From now on the node cannot start: its data dir names another node.
	idFile := filepath.Join(cfg.DataDir, "nodes-data", "n1", "node-id")
	if err := os.WriteFile(idFile, []byte("someone-else\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(int(resp.GetPid()), syscall.SIGKILL)

	gridtest.WaitUntil(t, waitLong, "FAILED", func() bool {
		rs := srv.reportsOf("n1")
		return len(rs) > 0 && rs[len(rs)-1].GetEvent() == gridpb.NodeEvent_NODE_EVENT_FAILED
	})
	rs := srv.reportsOf("n1")
	want := []string{"NODE_EVENT_CRASHED", "NODE_EVENT_CRASHED", "NODE_EVENT_FAILED"}
	if got := events(rs); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("reports = %v, want %v", got, want)
	}
	if !rs[0].GetRestarting() || rs[1].GetRestarting() || rs[1].GetExitCode() != 1 || !strings.Contains(rs[1].GetError(), "someone-else") {
		t.Fatalf("crash reports = %v, %v", rs[0], rs[1])
	}
	if rs[2].GetError() == "" || rs[2].GetRestarts() != 1 {
		t.Fatalf("failed report = %v", rs[2])
	}
	// A failed node is no longer the agent's.
	if _, err := c.StopNode(context.Background(), &gridpb.StopNodeRequest{NodeId: "n1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("stop of a failed node: %v, want NotFound", err)
	}
}

func TestStopNodeLeavesProcessGoneAndPortFree(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-stop", t.TempDir(), srv))
	c := agentClient(t, a)
	port := gridtest.FreePort(t)
	resp := startNode(t, c, "n1", port, nil)

	stop, err := c.StopNode(context.Background(), &gridpb.StopNodeRequest{NodeId: "n1", KillTimeoutMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if stop.GetExitCode() != 0 || stop.GetSignal() != "" {
		t.Fatalf("stop = %v, want a clean exit", stop)
	}
	if alive(int(resp.GetPid())) {
		t.Fatal("the node's process is still there")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port still taken: %v", err)
	}
	ln.Close()
	if _, err := c.StopNode(context.Background(), &gridpb.StopNodeRequest{NodeId: "n1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("second stop: %v, want NotFound", err)
	}
	// A stop the leader asked for is answered, not reported.
	if rs := srv.reportsOf("n1"); len(rs) != 0 {
		t.Fatalf("reports = %v", events(rs))
	}
	// The logs outlive the node.
	if _, err := c.NodeLogs(context.Background(), &gridpb.NodeLogsRequest{NodeId: "n1"}); err != nil {
		t.Fatalf("logs of a stopped node: %v", err)
	}
}

func TestShutdownLeavesNodesRunningAndTheNextAgentAdoptsThem(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	a1 := startAgent(t, testConfig(t, "agent-adopt", dir, srv))
	c1 := agentClient(t, a1)
	live := startNode(t, c1, "live", gridtest.FreePort(t), fastPolicy(3))
	dead := startNode(t, c1, "dead", gridtest.FreePort(t), fastPolicy(3))
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if !alive(int(live.GetPid())) || !healthy(live.GetEndpoint()) {
		t.Fatal("Shutdown stopped a node")
	}
	// One node dies while no agent watches.
	syscall.Kill(int(dead.GetPid()), syscall.SIGKILL)
	gridtest.WaitUntil(t, waitLong, "the node to die", func() bool { return !alive(int(dead.GetPid())) })

	a2 := startAgent(t, testConfig(t, "agent-adopt", dir, srv))
	c2 := agentClient(t, a2)
	if again := startNode(t, c2, "live", int(portOf(live.GetEndpoint())), fastPolicy(3)); again.GetPid() != live.GetPid() {
		t.Fatalf("adopted pid = %d, want %d", again.GetPid(), live.GetPid())
	}
	gridtest.WaitUntil(t, waitLong, "the dead node restarted", func() bool { return len(srv.reportsOf("dead")) >= 2 })
	rs := srv.reportsOf("dead")
	if rs[0].GetEvent() != gridpb.NodeEvent_NODE_EVENT_CRASHED || rs[0].GetPid() != dead.GetPid() || rs[0].GetExitCode() != -1 ||
		rs[1].GetEvent() != gridpb.NodeEvent_NODE_EVENT_RESTARTED || rs[1].GetPid() == dead.GetPid() || rs[1].GetRestarts() != 1 {
		t.Fatalf("reports of the dead node = %v", rs)
	}
	if !healthy(dead.GetEndpoint()) {
		t.Fatal("the restarted node is not healthy")
	}
	// The adopted node is registered as running.
	gridtest.WaitUntil(t, waitLong, "a registration listing the adopted node", func() bool {
		regs, _, _, _, _ := srv.snapshot()
		for _, r := range regs {
			for _, n := range r.GetNodes() {
				if n.GetNodeId() == "live" && n.GetPid() == live.GetPid() && n.GetEvent() == gridpb.NodeEvent_NODE_EVENT_RUNNING {
					return true
				}
			}
		}
		return false
	})

	// The adopted node, not the agent's child, is still watched: a crash is seen...
	syscall.Kill(int(live.GetPid()), syscall.SIGKILL)
	gridtest.WaitUntil(t, waitLong, "the adopted node restarted", func() bool { return len(srv.reportsOf("live")) >= 2 })
	if rs := srv.reportsOf("live"); rs[0].GetExitCode() != -1 || rs[1].GetEvent() != gridpb.NodeEvent_NODE_EVENT_RESTARTED {
		t.Fatalf("reports of the adopted node = %v", rs)
	}
}

func TestAdoptedNodeCanBeStopped(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	a1 := startAgent(t, testConfig(t, "agent-adopt-stop", dir, srv))
	port := gridtest.FreePort(t)
	resp := startNode(t, agentClient(t, a1), "n1", port, nil)
	a1.Shutdown()

	a2 := startAgent(t, testConfig(t, "agent-adopt-stop", dir, srv))
	stop, err := agentClient(t, a2).StopNode(context.Background(), &gridpb.StopNodeRequest{NodeId: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if stop.GetExitCode() != -1 { // not its child: the code is unknown
		t.Fatalf("stop = %v", stop)
	}
	gridtest.WaitUntil(t, waitLong, "the process gone", func() bool { return !alive(int(resp.GetPid())) })
}

func TestReusedPidIsNotAdopted(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	// The state names this test process, alive but no storage node, with its real
	// start time: only the command line tells it apart.
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	port := gridtest.FreePort(t)
	st := persistedState{Nodes: []persistedNode{{
		NodeID: "n1", Port: port, StoragePath: filepath.Join(dir, "nodes-data", "n1"), MemoryLimitMB: 64,
		Restart: persistPolicy(restart.Policy{Attempts: 3, Interval: time.Minute, Delay: 50 * time.Millisecond, MaxDelay: time.Second}),
		PID:     os.Getpid(), StartTime: self.startTime,
	}}}
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, testConfig(t, "agent-reused", dir, srv))
	gridtest.WaitUntil(t, waitLong, "the node restarted", func() bool { return len(srv.reportsOf("n1")) >= 2 })
	rs := srv.reportsOf("n1")
	if rs[0].GetEvent() != gridpb.NodeEvent_NODE_EVENT_CRASHED || rs[1].GetEvent() != gridpb.NodeEvent_NODE_EVENT_RESTARTED || int(rs[1].GetPid()) == os.Getpid() {
		t.Fatalf("reports = %v", rs)
	}
	if !healthy(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) {
		t.Fatal("node not healthy")
	}
	_ = a
}

func TestLeaveStopsNodesReportsThemAndUnregisters(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-leave", t.TempDir(), srv))
	resp := startNode(t, agentClient(t, a), "n1", gridtest.FreePort(t), nil)
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) >= 1 })

	if err := a.Leave(); err != nil {
		t.Fatal(err)
	}
	if alive(int(resp.GetPid())) {
		t.Fatal("Leave left the node running")
	}
	rs := srv.reportsOf("n1")
	if len(rs) != 1 || rs[0].GetEvent() != gridpb.NodeEvent_NODE_EVENT_STOPPED || rs[0].GetPid() != resp.GetPid() || rs[0].GetExitCode() != 0 {
		t.Fatalf("reports = %v", rs)
	}
	if _, _, _, unregs, _ := srv.snapshot(); len(unregs) != 1 || unregs[0] != "agent-leave" {
		t.Fatalf("unregisters = %v", unregs)
	}
}

func TestJoinGivesUpAfterRetryMax(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "agent-join", t.TempDir(), &testServer{gossipAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(gridtest.FreePort(t)))})
	cfg.RetryMax = 2
	cfg.RetryInterval = 10 * time.Millisecond
	a := startAgent(t, cfg)
	select {
	case err := <-a.Fatal():
		if !strings.Contains(err.Error(), "2 attempts") {
			t.Fatalf("fatal error = %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("no fatal error after the join attempts ran out")
	}
}

func TestSecondAgentOnADataDirIsRefused(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	startAgent(t, testConfig(t, "agent-lock", dir, srv))
	if _, err := New(testConfig(t, "agent-lock-2", dir, srv)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second agent on the same data dir: %v", err)
	}
}

func portOf(hostPort string) int {
	_, p, _ := net.SplitHostPort(hostPort)
	n, _ := strconv.Atoi(p)
	return n
}

func TestUndeliveredReportsSurviveAnAgentRestart(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	a1 := startAgent(t, testConfig(t, "agent-queue", dir, srv))
	resp := startNode(t, agentClient(t, a1), "n1", gridtest.FreePort(t), fastPolicy(3))
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) >= 1 })

	srv.setRefuse(true)
	syscall.Kill(int(resp.GetPid()), syscall.SIGKILL)
	gridtest.WaitUntil(t, waitLong, "CRASHED and RESTARTED queued", func() bool { return a1.client.queue.len() == 2 })
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	srv.setRefuse(false)

	startAgent(t, testConfig(t, "agent-queue", dir, srv))
	gridtest.WaitUntil(t, waitLong, "the reports of the first agent", func() bool { return len(srv.reportsOf("n1")) >= 2 })
	rs := srv.reportsOf("n1")
	if got := strings.Join(events(rs), ","); got != "NODE_EVENT_CRASHED,NODE_EVENT_RESTARTED" || rs[0].GetPid() != resp.GetPid() {
		t.Fatalf("reports = %v", rs)
	}
}
