//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// agentView is one entry of `grid agent status -json`.
type agentView struct {
	Name            string    `json:"name"`
	Status          string    `json:"status"`
	Nodes           int       `json:"nodes"`
	MaxNodes        int       `json:"max_nodes"`
	LastHeartbeat   time.Time `json:"last_heartbeat"`
	StatusChangedAt time.Time `json:"status_changed_at"`
}

// nodeView is one entry of `grid node status -json`.
type nodeView struct {
	ID       string `json:"id"`
	Agent    string `json:"agent"`
	Port     int    `json:"port"`
	Status   string `json:"status"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	Endpoint string `json:"endpoint"`
	Error    string `json:"error"`
}

const agentIP = "127.0.0.21"

// grid is a three-server grid with one agent, all real processes.
type gridFixture struct {
	*serverCluster
	agentDir string
	agent    *proc
	// via is the server the fixture's queries go to; a test that kills a server moves it.
	via string
	// maxNodes is the agent's -max-nodes.
	maxNodes int
}

func newGrid(t *testing.T) *gridFixture {
	t.Helper()
	return newGridWith(t, 4)
}

func newGridWith(t *testing.T, maxNodes int) *gridFixture {
	t.Helper()
	c := &serverCluster{t: t, dir: t.TempDir(), procs: map[string]*proc{}, extra: []string{
		"-heartbeat-interval=300ms", "-agent-degraded-after=2s", "-agent-offline-after=4s",
	}}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	c.stablePeers("127.0.0.11", "", 30*time.Second)
	g := &gridFixture{serverCluster: c, agentDir: filepath.Join(c.dir, "agent-001"), via: "127.0.0.12", maxNodes: maxNodes}
	// Storage nodes run in their own process groups and outlive a killed agent: kill
	// whatever this test started, whatever state it ends in.
	t.Cleanup(func() { killProcessesMentioning(c.dir) })
	g.startAgent()
	g.waitAgent("healthy")
	return g
}

func (g *gridFixture) startAgent() {
	g.agent = start(g.t, "agent-001", "agent", "-bind="+agentIP, "-name=agent-001",
		"-data-dir="+g.agentDir, "-join=127.0.0.11", "-retry-interval=200ms", fmt.Sprintf("-max-nodes=%d", g.maxNodes), "-log-level=debug")
}

func (g *gridFixture) agentView() (agentView, error) {
	var as []agentView
	if err := gridJSON(&as, "agent", "status", address(g.via), "agent-001"); err != nil {
		return agentView{}, err
	}
	if len(as) != 1 {
		return agentView{}, fmt.Errorf("agent status: %+v", as)
	}
	return as[0], nil
}

func (g *gridFixture) waitAgent(status string) agentView {
	g.t.Helper()
	var a agentView
	cliPoll.WaitFor(g.t, 30*time.Second, "agent-001 "+status, func() error {
		var err error
		if a, err = g.agentView(); err != nil {
			return err
		}
		if a.Status != status {
			return fmt.Errorf("agent-001 is %s", a.Status)
		}
		return nil
	})
	return a
}

func (g *gridFixture) node(id string) (nodeView, error) {
	var ns []nodeView
	if err := gridJSON(&ns, "node", "status", address(g.via), id); err != nil {
		return nodeView{}, err
	}
	if len(ns) != 1 {
		return nodeView{}, fmt.Errorf("node status %s: %+v", id, ns)
	}
	return ns[0], nil
}

// waitNode waits until the node satisfies cond.
func (g *gridFixture) waitNode(id, what string, cond func(nodeView) error) nodeView {
	g.t.Helper()
	var n nodeView
	cliPoll.WaitFor(g.t, 60*time.Second, "node "+id+" "+what, func() error {
		var err error
		if n, err = g.node(id); err != nil {
			return err
		}
		return cond(n)
	})
	return n
}

// spawn runs `grid node spawn` and returns the running node.
func (g *gridFixture) spawn(port int, extra ...string) nodeView {
	g.t.Helper()
	var n nodeView
	args := append([]string{"node", "spawn", address("127.0.0.11"), "-agent=agent-001", fmt.Sprintf("-port=%d", port), "-restart-delay=100ms", "-restart-max-delay=200ms"}, extra...)
	if err := gridJSON(&n, args...); err != nil {
		g.t.Fatalf("spawn: %v", err)
	}
	if n.Status != "running" || n.PID <= 0 {
		g.t.Fatalf("spawned node %+v, want running with a pid", n)
	}
	return n
}

func healthy(endpoint string) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %v", resp.GetStatus())
	}
	return nil
}

// alive reports whether pid runs. A zombie does not: an adopted node's parent is init,
// which may be slow to reap it (or, in a container, never).
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// killProcessesMentioning SIGKILLs every process whose command line contains s.
func killProcessesMentioning(s string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func portFree(endpoint string) error {
	ln, err := net.Listen("tcp", endpoint)
	if err != nil {
		return err
	}
	return ln.Close()
}

func TestAgentsAndStorageNodes(t *testing.T) {
	g := newGrid(t)

	// Spawn a node and reach it over gRPC.
	n := g.spawn(50061)
	if n.Endpoint != agentIP+":50061" {
		t.Fatalf("endpoint %q", n.Endpoint)
	}
	if err := healthy(n.Endpoint); err != nil {
		t.Fatalf("node not reachable: %v", err)
	}

	// kill -9 the node: the agent restarts it with a new pid, restarts = 1.
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted := g.waitNode(n.ID, "restarted", func(v nodeView) error {
		if v.Status != "running" || v.Restarts != 1 || v.PID == n.PID || v.PID == 0 {
			return fmt.Errorf("%+v", v)
		}
		return nil
	})
	cliPoll.WaitFor(t, 30*time.Second, "restarted node healthy", func() error { return healthy(restarted.Endpoint) })

	// Bad requests fail with a clear message and change nothing.
	var before []nodeView
	if err := gridJSON(&before, "node", "status", address("127.0.0.12")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-agent=agent-404", "-port=50070"}, "unknown agent"},
		{[]string{"-agent=agent-001", "-port=50061"}, "already taken"},
		{[]string{"-agent=agent-001", "-port=50071", "-storage-path=../../escape"}, "not inside"},
		{[]string{"-agent=agent-001", "-port=70000"}, "port"},
	} {
		_, stderr, code := grid(append([]string{"node", "spawn", address("127.0.0.12")}, bad.args...)...)
		if code == 0 || !strings.Contains(stderr, bad.want) {
			t.Errorf("spawn %v: exit %d, stderr %q; want failure mentioning %q", bad.args, code, stderr, bad.want)
		}
	}
	var after []nodeView
	if err := gridJSON(&after, "node", "status", address("127.0.0.12")); err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("bad requests changed the nodes: %d before, %d after", len(before), len(after))
	}

	// Exhaust a restart policy of one attempt: the second crash fails the node.
	m := g.spawn(50062, "-restart-attempts=1")
	_ = syscall.Kill(m.PID, syscall.SIGKILL)
	m2 := g.waitNode(m.ID, "restarted once", func(v nodeView) error {
		if v.Status != "running" || v.Restarts != 1 || v.PID == m.PID {
			return fmt.Errorf("%+v", v)
		}
		return nil
	})
	_ = syscall.Kill(m2.PID, syscall.SIGKILL)
	g.waitNode(m.ID, "failed", func(v nodeView) error {
		if v.Status != "failed" {
			return fmt.Errorf("%+v", v)
		}
		return nil
	})

	// A policy of no restarts: the first crash fails the node.
	z := g.spawn(50063, "-restart-attempts=0")
	_ = syscall.Kill(z.PID, syscall.SIGKILL)
	g.waitNode(z.ID, "failed without a restart", func(v nodeView) error {
		if v.Status != "failed" || v.Restarts != 0 {
			return fmt.Errorf("%+v", v)
		}
		return nil
	})

	// Stop: the process is gone and the port free.
	if _, stderr, code := grid("node", "stop", address("127.0.0.13"), n.ID); code != 0 {
		t.Fatalf("node stop: exit %d: %s", code, stderr)
	}
	if v, _ := g.node(n.ID); v.Status != "stopped" {
		t.Fatalf("after stop: %+v", v)
	}
	cliPoll.WaitFor(t, 10*time.Second, "stopped process gone", func() error {
		if alive(restarted.PID) {
			return fmt.Errorf("pid %d still alive", restarted.PID)
		}
		return portFree(n.Endpoint)
	})

	// SIGTERM the agent with a running node, start it again: same pid, re-adopted.
	keep := g.spawn(50063)
	if code := g.agent.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("agent exited %d after SIGTERM", code)
	}
	if !alive(keep.PID) {
		t.Fatal("SIGTERM to the agent stopped its node")
	}
	g.startAgent()
	g.waitAgent("healthy")
	g.waitNode(keep.ID, "re-adopted", func(v nodeView) error {
		if v.Status != "running" || v.PID != keep.PID {
			return fmt.Errorf("%+v, want running with pid %d", v, keep.PID)
		}
		return nil
	})
	if err := healthy(keep.Endpoint); err != nil {
		t.Fatalf("re-adopted node unreachable: %v", err)
	}

	// Freeze the agent: degraded, then offline (its node lost); thaw it: healthy.
	_ = g.agent.cmd.Process.Signal(syscall.SIGSTOP)
	g.waitAgent("degraded")
	g.waitAgent("offline")
	g.waitNode(keep.ID, "lost", func(v nodeView) error {
		if v.Status != "lost" {
			return fmt.Errorf("%+v", v)
		}
		return nil
	})
	_ = g.agent.cmd.Process.Signal(syscall.SIGCONT)
	g.waitAgent("healthy")

	// Kill the leader: no agent degrades.
	a := g.waitAgent("healthy")
	peers := g.stablePeers("127.0.0.11", "", 30*time.Second)
	oldLeader := leaderOf(peers)
	for _, ip := range serverIPs {
		if oldLeader.Address == ip+":7002" {
			g.procs[ip].kill()
		}
	}
	var survivor string
	for _, ip := range serverIPs {
		if oldLeader.Address != ip+":7002" {
			survivor = ip
		}
	}
	g.via = survivor
	cliPoll.WaitFor(t, 30*time.Second, "a new leader", func() error {
		var ps []peer
		if err := gridJSON(&ps, "operator", "raft", "list-peers", address(survivor)); err != nil {
			return err
		}
		if l := leaderOf(ps); l.ID == "" || l.ID == oldLeader.ID {
			return fmt.Errorf("leader %q", l.ID)
		}
		return nil
	})
	deadline := time.Now().Add(3 * time.Second) // longer than -agent-degraded-after
	for time.Now().Before(deadline) {
		var as []agentView
		if err := gridJSON(&as, "agent", "status", address(survivor)); err != nil {
			continue // a read can meet the election
		}
		for _, v := range as {
			if v.Status != "healthy" || !v.StatusChangedAt.Equal(a.StatusChangedAt) {
				t.Fatalf("after failover: %+v (was %+v)", v, a)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Ctrl-C: the agent stops its nodes, unregisters and leaves.
	if code := g.agent.stop(t, syscall.SIGINT, 60*time.Second); code != 0 {
		t.Fatalf("agent exited %d after SIGINT", code)
	}
	if alive(keep.PID) {
		t.Fatal("node still running after the agent left")
	}
	cliPoll.WaitFor(t, 10*time.Second, "agent-001 gone", func() error {
		_, stderr, code := grid("agent", "status", address(survivor), "agent-001")
		if code == 0 || !strings.Contains(stderr, "not found") {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		return nil
	})
	if v, err := g.node(keep.ID); err != nil || v.Status != "stopped" {
		t.Fatalf("node after the agent left: %+v, %v", v, err)
	}
}
