package storage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

func TestReserveFor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reserveMB int
		total     uint64
		want      uint64
	}{
		{"default is 5% of a small filesystem", 0, 100 << 20, 5 << 20},
		{"default is at most 1 GiB", 0, 1 << 40, 1 << 30},
		{"explicit", 100, 1 << 40, 100 << 20},
		{"negative is none", -1, 1 << 40, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reserveFor(tc.reserveMB, tc.total); got != tc.want {
				t.Fatalf("reserveFor(%d, %d) = %d, want %d", tc.reserveMB, tc.total, got, tc.want)
			}
		})
	}
}

func TestDefaultConcurrentBatches(t *testing.T) {
	for _, tc := range []struct {
		memoryMB, messageMB, want int
	}{
		{0, 16, 4},    // no memory limit
		{512, 16, 1},  // 512 / (4*8*16)
		{2048, 16, 4}, // 2048 / (4*8*16)
		{1024, 2, 4},  // small messages
		{100, 16, 1},  // at least one
		{8192, 16, 4}, // never above the default
	} {
		if got := defaultConcurrentBatches(tc.memoryMB, tc.messageMB); got != tc.want {
			t.Errorf("defaultConcurrentBatches(%d, %d) = %d, want %d", tc.memoryMB, tc.messageMB, got, tc.want)
		}
	}
}

func TestConfigRefusesMessageTooSmallForContent(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.MaxMessageMB = 1
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "needs 2 MB") {
		t.Fatalf("validate: %v, want an error saying 2 MB are needed", err)
	}
}

// fakeDisk is a filesystem whose free space the test sets, counting its readings.
type fakeDisk struct {
	mu          sync.Mutex
	free, total uint64
	reads       int
}

func (d *fakeDisk) statfs(string) (uint64, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	return d.free, d.total, nil
}

func (d *fakeDisk) set(free uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free = free
}

func TestDiskGuardCachesItsReading(t *testing.T) {
	disk := &fakeDisk{free: 100 << 20, total: 1 << 30}
	now := time.Unix(0, 0)
	g := &diskGuard{dir: "x", reserveMB: 10, logger: hclog.NewNullLogger(), now: func() time.Time { return now }, statfs: disk.statfs}
	if err := g.admit(1 << 20); err != nil {
		t.Fatal(err)
	}
	// Cached: the disk filling up is not seen until the reading is old or enough was
	// written.
	disk.set(5 << 20)
	if err := g.admit(1 << 20); err != nil {
		t.Fatalf("within the interval: %v", err)
	}
	if disk.reads != 1 {
		t.Fatalf("%d readings, want 1", disk.reads)
	}
	now = now.Add(diskCheckInterval)
	if err := g.admit(1 << 20); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "-disk-reserve-mb") {
		t.Fatalf("after the interval: %v, want ErrDiskFull naming the flag", err)
	}
	// Space freed: seen at the next reading.
	disk.set(100 << 20)
	now = now.Add(diskCheckInterval)
	if err := g.admit(1 << 20); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	// Bytes accepted force a reading however recent the last one.
	disk.set(5 << 20)
	if err := g.admit(diskCheckBytes); err != nil {
		t.Fatal(err)
	}
	if err := g.admit(1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d bytes: %v, want ErrDiskFull", diskCheckBytes, err)
	}
}

func TestBatchLimiter(t *testing.T) {
	l := newBatchLimiter(1, 1)
	ctx := context.Background()
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// The second waits for the first's turn; the third finds the waiting room full.
	second := make(chan error, 1)
	go func() { second <- l.acquire(ctx) }()
	gridtest.WaitUntil(t, 10*time.Second, "the second batch to wait", func() bool { return len(l.admitted) == 2 })
	if err := l.acquire(ctx); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "-max-concurrent-batches=1 ") {
		t.Fatalf("third: %v, want ErrBusy naming the flag", err)
	}
	l.release()
	if err := <-second; err != nil {
		t.Fatalf("second: %v", err)
	}
	// A waiter whose deadline passes gives its place back.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	l.release()
	if len(l.admitted) != 0 || len(l.running) != 0 {
		t.Fatalf("%d admitted, %d running after all released", len(l.admitted), len(l.running))
	}
}

func TestBatchWaiters(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{1, 4}, {4, 4}, {8, 8}} {
		if got := batchWaiters(tc.n); got != tc.want {
			t.Errorf("batchWaiters(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestMessageOverLimitIsRefused(t *testing.T) {
	client, _ := startTestServer(t, func(c *Config) { c.MaxMessageMB = 2 })
	big := make([]byte, 900<<10)
	req := &gridpb.LearnBatchRequest{}
	for i := range 3 {
		req.Concepts = append(req.Concepts, &gridpb.Concept{Id: eventID(i), Content: big, Timestamp: ts(epoch)})
	}
	_, err := client.LearnBatch(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "2097152") {
		t.Fatalf("LearnBatch of 2.7 MB with a 2 MB limit: %v, want ResourceExhausted naming the limit", err)
	}
	req.Concepts = req.Concepts[:2]
	if _, err := client.LearnBatch(context.Background(), req); err != nil {
		t.Fatalf("LearnBatch under the limit: %v", err)
	}
}

// metricValue reads a counter's or a gauge's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}
