//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

var (
	plainBinOnce sync.Once
	plainBin     string
	plainBinErr  error
)

// plainGridBin builds grid without the race detector, for benchmarks whose figures
// must not carry its overhead.
func plainGridBin(b *testing.B) string {
	plainBinOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(gridBin), "grid-plain")
		plainBinErr = gridtest.BuildGrid(plainBin)
	})
	if plainBinErr != nil {
		b.Fatal(plainBinErr)
	}
	return plainBin
}

// cpuSeconds returns the user+system CPU time a process has used.
func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

// BenchmarkHeartbeats measures what one server absorbs: 10,000 simulated agents are
// registered with a single-server grid (a real process, built without -race), then
//   - "paced": they heartbeat at 2,000/s for 5s (10,000 agents at a 5s interval) and
//     the server's CPU use is reported in cores;
//   - the b.N loop: heartbeats as fast as 64 concurrent clients can send them.
func BenchmarkHeartbeats(b *testing.B) {
	const agents = 10000
	bin := plainGridBin(b)
	p := &proc{name: "server", out: &gridtest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "server", "-bind=127.0.0.16", "-data-dir="+b.TempDir(), "-bootstrap-expect=1", "-log-level=warn",
		"-agent-degraded-after=1h", "-agent-offline-after=2h")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	defer p.kill()

	conn, err := grpc.NewClient("127.0.0.16:7001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cl := gridpb.NewServersClient(conn)
	ctx := context.Background()
	cliPoll.WaitFor(b, 30*time.Second, "a leader", func() error {
		_, err := cl.Register(ctx, &gridpb.RegisterRequest{Name: "agent-0", Address: "127.0.0.1:8001"})
		return err
	})
	parallel(64, agents, func(i int) error {
		_, err := cl.Register(ctx, &gridpb.RegisterRequest{Name: fmt.Sprintf("agent-%d", i), Address: "127.0.0.1:8001", MaxNodes: 10})
		return err
	}, b)

	// Paced: 2,000 heartbeats/s for 5s, spread over 64 senders.
	const rate, seconds = 2000, 5
	cpu0, t0 := cpuSeconds(p.cmd.Process.Pid), time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < rate*seconds; i += 64 {
				due := t0.Add(time.Duration(i) * time.Second / rate)
				time.Sleep(time.Until(due))
				if _, err := cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: fmt.Sprintf("agent-%d", i%agents)}); err != nil {
					b.Error(err)
					return
				}
				sent.Add(1)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(t0).Seconds()
	pacedCores, pacedRate := (cpuSeconds(p.cmd.Process.Pid)-cpu0)/elapsed, float64(sent.Load())/elapsed

	// Capacity.
	cpu0, t0 = cpuSeconds(p.cmd.Process.Pid), time.Now()
	b.ResetTimer()
	parallel(64, b.N, func(i int) error {
		_, err := cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: fmt.Sprintf("agent-%d", i%agents)})
		return err
	}, b)
	b.StopTimer()
	elapsed = time.Since(t0).Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "max-hb/s")
	b.ReportMetric((cpuSeconds(p.cmd.Process.Pid)-cpu0)/float64(b.N)*1e6, "server-cpu-µs/hb")
	// Reported last: ResetTimer drops metrics reported before it.
	b.ReportMetric(pacedCores, "server-cores@2000hb/s")
	b.ReportMetric(pacedRate, "paced-hb/s")
}

// parallel runs f(0..n-1) on workers goroutines and fails b on the first error.
func parallel(workers, n int, f func(i int) error, b *testing.B) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
