//go:build linux

package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/cgroup"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// needCgroups skips a test on a machine where the agent cannot use cgroups; the
// reason is the one the agent itself would give.
func needCgroups(t *testing.T) *cgroup.Host {
	t.Helper()
	h := cgroup.Open()
	if !h.Available() {
		t.Skipf("the agent cannot use cgroups here: %s", h.Reason)
	}
	return h
}

// cgroupOf returns the memory cgroup of process pid (the unified one on v2), as
// /proc/<pid>/cgroup gives it.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	unified := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2]
			}
		}
		if parts[0] == "0" {
			unified = parts[2]
		}
	}
	return unified
}

func TestNodeRunsInACgroupOfItsOwnRemovedWhenItStops(t *testing.T) {
	t.Parallel()
	h := needCgroups(t)
	srv := newTestServer(t)
	dir := t.TempDir()
	a := startAgent(t, testConfig(t, "agent-cgroup", dir, srv))
	c := agentClient(t, a)
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) >= 1 })
	regs, _, _, _, _ := srv.snapshot()
	if got := regs[0].GetIsolation(); got != h.String() {
		t.Fatalf("registration says isolation %q, want %q", got, h.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := gridtest.FreePort(t)
	resp, err := c.StartNode(ctx, &gridpb.StartNodeRequest{NodeId: "n1", Port: int32(port), StoragePath: "nodes-data/n1",
		MemoryLimitMb: 96, CpuLimit: 0.5, Restart: fastPolicy(3)})
	if err != nil {
		t.Fatal(err)
	}
	name := a.sup.groupName("n1")
	if got := cgroupOf(t, int(resp.GetPid())); filepath.Base(got) != name || filepath.Dir(got) != h.Parent {
		t.Fatalf("node runs in cgroup %q, want %s/%s", got, h.Parent, name)
	}
	g, err := h.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if pids, err := g.Pids(); err != nil || len(pids) != 1 || pids[0] != int(resp.GetPid()) {
		t.Fatalf("group %s holds %v (%v), want the node's pid %d", name, pids, err, resp.GetPid())
	}

	// An agent that restarts takes the node back with its group, and a stop then
	// removes the group.
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	a2 := startAgent(t, testConfig(t, "agent-cgroup", dir, srv))
	c2 := agentClient(t, a2)
	a2.sup.mu.Lock()
	adopted := a2.sup.nodes["n1"] != nil && a2.sup.nodes["n1"].group != nil && a2.sup.nodes["n1"].group.Name == name
	a2.sup.mu.Unlock()
	if !adopted {
		t.Fatalf("the restarted agent did not adopt node n1 with its group %s", name)
	}
	if _, err := c2.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Lookup(name); err == nil {
		t.Fatalf("group %s is still there after the node stopped", name)
	}
	if alive(int(resp.GetPid())) {
		t.Fatal("the stopped node still runs")
	}
}

func TestNodePastItsMemoryLimitIsOOMKilledAndRestarted(t *testing.T) {
	t.Parallel()
	h := needCgroups(t)
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-oom", t.TempDir(), srv))
	c := agentClient(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := gridtest.FreePort(t)
	const limitMB = 48
	resp, err := c.StartNode(ctx, &gridpb.StartNodeRequest{NodeId: "n1", Port: int32(port), StoragePath: "nodes-data/n1",
		MemoryLimitMb: limitMB, Restart: fastPolicy(3)})
	if err != nil {
		t.Fatal(err)
	}

	// A batch near the largest message a node takes needs more memory than the
	// limit allows: the node's own bound on concurrent batches cannot help a limit
	// this small, and the kernel kills it.
	conn, err := grpc.NewClient(resp.GetEndpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	word := []byte("overflow ")
	var batch gridpb.LearnBatchRequest
	for i := range 12 {
		batch.Concepts = append(batch.Concepts, &gridpb.Concept{Id: fmt.Sprintf("big-%d", i), Content: bytes.Repeat(word, (1<<20)/len(word))})
	}
	_, err = gridpb.NewStorageClient(conn).LearnBatch(ctx, &batch)
	t.Logf("LearnBatch of 12 MiB under a %d MB limit: %v", limitMB, err)

	gridtest.WaitUntil(t, waitLong, "CRASHED then RESTARTED", func() bool { return len(srv.reportsOf("n1")) >= 2 })
	rs := srv.reportsOf("n1")
	crashed, restarted := rs[0], rs[1]
	if crashed.GetEvent() != gridpb.NodeEvent_NODE_EVENT_CRASHED || !crashed.GetOomKilled() || crashed.GetSignal() != "SIGKILL" ||
		!crashed.GetRestarting() || !strings.Contains(crashed.GetError(), fmt.Sprintf("out of memory at its limit of %d MB", limitMB)) {
		t.Fatalf("crash report = %v; want CRASHED, oom_killed, SIGKILL, restarting, and the limit in its error", crashed)
	}
	if restarted.GetEvent() != gridpb.NodeEvent_NODE_EVENT_RESTARTED || !healthy(resp.GetEndpoint()) {
		t.Fatalf("second report = %v, want RESTARTED and the node healthy", restarted)
	}
	m, err := gridtest.Scrape(nil, "http://"+a.HTTPAddr()+"/v1/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Value("grid_node_oom_kills_total"); v != 1 {
		t.Errorf("grid_node_oom_kills_total = %v, want 1", v)
	}
	if v, _ := m.Value("grid_agent_cgroup_version"); v != float64(h.Version) {
		t.Errorf("grid_agent_cgroup_version = %v, want %d", v, h.Version)
	}
}

func TestDisableCgroupsRunsNodesWithoutAndSaysSo(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cfg := testConfig(t, "agent-nocgroup", t.TempDir(), srv)
	cfg.DisableCgroups = true
	a := startAgent(t, cfg)
	c := agentClient(t, a)
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) >= 1 })
	regs, _, _, _, _ := srv.snapshot()
	if got, want := regs[0].GetIsolation(), "none: disabled by -disable-cgroups"; got != want {
		t.Fatalf("registration says isolation %q, want %q", got, want)
	}
	resp := startNode(t, c, "n1", gridtest.FreePort(t), fastPolicy(1))
	if got, own := cgroupOf(t, int(resp.GetPid())), cgroupOf(t, os.Getpid()); got != own {
		t.Fatalf("node runs in cgroup %q, want the agent's own %q", got, own)
	}
}
