//go:build linux

package storage

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// The tests that fill a real filesystem: a tmpfs mounted for the test (root only).

// mountTmpfs mounts a tmpfs of sizeMB on a new directory until the test ends.
func mountTmpfs(t *testing.T, sizeMB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root; run as root to test a full disk")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(sizeMB)+"m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): a full disk is not tested", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem has about leave bytes free.
func fill(t *testing.T, dir string, leave uint64) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for {
		free, _, err := statfs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			return name
		}
		if _, err := f.Write(chunk[:min(uint64(len(chunk)), free-leave)]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiskFullRefusesWritesAndResumes(t *testing.T) {
	fs := mountTmpfs(t, 64)
	const reserveMB = 16
	client, srv := startTestServer(t, func(c *Config) {
		c.DataDir = filepath.Join(fs, "node")
		c.DiskReserveMB = reserveMB
		// Small memtables: pebble's WAL and flushes stay well inside the reserve.
		c.MemoryLimitMB = 64
	})
	ctx := context.Background()
	write := func(from int) error {
		cs, as := eventBatch(from, 10, time.Second)
		_, err := client.LearnBatch(ctx, toProtoBatch(cs, as))
		return err
	}
	if err := write(0); err != nil {
		t.Fatalf("before the disk is full: %v", err)
	}

	// Fill the filesystem to half the reserve: the node refuses writes, and pebble
	// still has 8 MB for what it writes on its own.
	filler := fill(t, fs, reserveMB<<20/2)
	st, err := client.Stats(ctx, &gridpb.StatsRequest{}) // Stats reads the free space afresh
	if err != nil {
		t.Fatal(err)
	}
	if !st.WritesRefused || st.DiskReserveBytes != reserveMB<<20 || st.DiskFreeBytes > reserveMB<<20 {
		t.Fatalf("Stats of a full disk: refused %v, free %d, reserve %d", st.WritesRefused, st.DiskFreeBytes, st.DiskReserveBytes)
	}
	err = write(100)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "-disk-reserve-mb") {
		t.Fatalf("write to a full disk: %v, want ResourceExhausted naming -disk-reserve-mb", err)
	}
	if _, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "one", Timestamp: ts(epoch)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("LearnConcept to a full disk: %v, want ResourceExhausted", err)
	}
	// Reads go on.
	if _, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: eventID(3)}); err != nil {
		t.Fatalf("read from a full disk: %v", err)
	}
	if n := metricValue(t, srv.metrics.refusedWrites.WithLabelValues("disk_full")); n < 2 {
		t.Fatalf("writes_refused_total{reason=disk_full} = %v, want at least 2", n)
	}
	if free := metricValue(t, srv.metrics.diskFree); free > reserveMB<<20 {
		t.Fatalf("disk_free_bytes = %v, want at most the reserve", free)
	}

	// Space freed: writes resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitFor(t, 30*time.Second, "writes to resume once space is freed", func() error { return write(100) })
	if _, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: eventID(105)}); err != nil {
		t.Fatalf("a write after space was freed: %v", err)
	}
	if st, err := client.Stats(ctx, &gridpb.StatsRequest{}); err != nil || st.WritesRefused {
		t.Fatalf("Stats after space was freed: %v, %v", st, err)
	}
}
