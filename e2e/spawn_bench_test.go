//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
)

// BenchmarkSpawnToRunning measures the time from `POST /v1/nodes` (what `grid node
// spawn` sends) until the node is recorded running: the leader records it through
// Raft, the agent starts `grid storage` and waits for its gRPC health check, and the
// leader records the pid. One server and one agent, real processes built without -race.
//
// Its ceiling, measured in the same run and interleaved with it so that both see the
// same load: `grid storage` started by hand with the flags the agent gives it, until
// its health check answers SERVING. The difference is what the grid adds.
//
// The agent puts each node in a cgroup of its own where it can (agent/isolation.go);
// "no-cgroups" runs it with -disable-cgroups, to show what that costs.
func BenchmarkSpawnToRunning(b *testing.B) {
	b.Run("cgroups", func(b *testing.B) { benchSpawnToRunning(b) })
	b.Run("no-cgroups", func(b *testing.B) { benchSpawnToRunning(b, "-disable-cgroups") })
}

// benchSpawnToRunning is BenchmarkSpawnToRunning with the agent's extra flags.
func benchSpawnToRunning(b *testing.B, agentFlags ...string) {
	bin := plainGridBin(b)
	dir := b.TempDir()
	b.Cleanup(func() { killProcessesMentioning(dir) })
	run := func(name string, args ...string) *proc {
		p := &proc{name: name, out: &gridtest.SyncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		b.Cleanup(p.kill)
		return p
	}
	run("server", "server", "-bind=127.0.0.17", "-data-dir="+filepath.Join(dir, "s"), "-bootstrap-expect=1", "-log-level=warn")
	run("agent", append([]string{"agent", "-bind=127.0.0.27", "-name=bench-agent", "-data-dir=" + filepath.Join(dir, "a"),
		"-join=127.0.0.17", "-retry-interval=100ms", "-max-nodes=1000", "-log-level=warn"}, agentFlags...)...)
	cl, err := api.NewClient(&api.Config{Address: "http://127.0.0.17:7000"})
	if err != nil {
		b.Fatal(err)
	}
	waitHealthyAgent(b, cl, "bench-agent")
	var spawns, byHand []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		byHand = append(byHand, storageByHand(b, run, filepath.Join(dir, "hand", strconv.Itoa(i)), 52000+i))
		b.StartTimer()
		spawns = append(spawns, spawnToRunning(b, cl, 51000+i))
	}
	b.StopTimer()
	spawn, hand := median(spawns), median(byHand)
	b.ReportMetric(ms(spawn), "median-ms")
	b.ReportMetric(ms(hand), "by-hand-median-ms")
	b.ReportMetric(ms(spawn-hand), "added-ms")
	b.ReportMetric(float64(spawn)/float64(hand), "ratio")
	b.ReportMetric(ms(slowest(spawns)), "max-ms")
}

func waitHealthyAgent(b *testing.B, cl *api.Client, name string) {
	cliPoll.WaitFor(b, 30*time.Second, "a healthy agent", func() error {
		a, err := cl.Agent(context.Background(), name)
		if err != nil {
			return err
		}
		if a.Status != "healthy" {
			return fmt.Errorf("agent is %s", a.Status)
		}
		return nil
	})
}

// spawnToRunning spawns a node on port, times it until it is recorded running, and
// stops it.
func spawnToRunning(b *testing.B, cl *api.Client, port int) time.Duration {
	ctx := context.Background()
	start := time.Now()
	n, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "bench-agent", Port: port, MemoryLimitMB: 128})
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
	took := time.Since(start)
	b.StopTimer()
	defer b.StartTimer()
	if _, err := cl.StopNode(ctx, n.ID, time.Second); err != nil {
		b.Fatal(err)
	}
	return took
}

// fastHealthDial redials a node that does not listen yet every few milliseconds, as
// a careful client would, instead of gRPC's default second.
var fastHealthDial = grpc.ConnectParams{
	Backoff:           grpcbackoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1, MaxDelay: 5 * time.Millisecond},
	MinConnectTimeout: time.Second,
}

// storageByHand starts `grid storage` with the flags an agent gives it (agent/launch.go
// nodeArgs), times it until its health check answers SERVING, and kills it.
func storageByHand(b *testing.B, run func(string, ...string) *proc, dataDir string, port int) time.Duration {
	addr := "127.0.0.27:" + strconv.Itoa(port)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(fastHealthDial))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	start := time.Now()
	p := run("storage by hand", "storage", "-bind=127.0.0.27", "-port="+strconv.Itoa(port), "-data-dir="+dataDir,
		"-memory-limit-mb=128", "-node-id=hand-"+strconv.Itoa(port))
	for {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Since(start) > 30*time.Second {
			b.Fatalf("storage by hand not healthy within 30s: %v\n%s", err, p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	p.kill()
	return took
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func slowest(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
