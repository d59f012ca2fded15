//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
)

// BenchmarkSpawnToRunning measures the time from `POST /v1/nodes` (what `grid node
// spawn` sends) until the node is recorded running: the leader records it through
// Raft, the agent starts `grid storage` and waits for its gRPC health check, and the
// leader records the pid. One server and one agent, real processes built without -race.
func BenchmarkSpawnToRunning(b *testing.B) {
	bin := plainGridBin(b)
	dir := b.TempDir()
	b.Cleanup(func() { killProcessesMentioning(dir) })
	run := func(name string, args ...string) {
		p := &proc{name: name, out: &gridtest.SyncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		b.Cleanup(p.kill)
	}
	run("server", "server", "-bind=127.0.0.17", "-data-dir="+filepath.Join(dir, "s"), "-bootstrap-expect=1", "-log-level=warn")
	run("agent", "agent", "-bind=127.0.0.27", "-name=bench-agent", "-data-dir="+filepath.Join(dir, "a"),
		"-join=127.0.0.17", "-retry-interval=100ms", "-max-nodes=1000", "-log-level=warn")
	cl, err := api.NewClient(&api.Config{Address: "http://127.0.0.17:7000"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cliPoll.WaitFor(b, 30*time.Second, "a healthy agent", func() error {
		a, err := cl.Agent(ctx, "bench-agent")
		if err != nil {
			return err
		}
		if a.Status != "healthy" {
			return fmt.Errorf("agent is %s", a.Status)
		}
		return nil
	})
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "bench-agent", Port: 51000 + i, MemoryLimitMB: 128})
		if err != nil {
			b.Fatal(err)
		}
		for n.Status != api.NodeRunning {
			if n.Status == api.NodeFailed {
				b.Fatalf("node failed: %s", n.Error)
			}
			time.Sleep(2 * time.Millisecond)
			if n, err = cl.Node(ctx, n.ID); err != nil {
				b.Fatal(err)
			}
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		if _, err := cl.StopNode(ctx, n.ID, time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
}
