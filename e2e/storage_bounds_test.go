//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

const (
	boundsStoreIP  = "127.0.0.81"
	boundsServerIP = "127.0.0.82"
	boundsAgentIP  = "127.0.0.83"
)

// TestStorageSurvivesAFullDisk runs a real `grid storage` on a 64 MiB tmpfs, as the
// event store of a real server, fills the filesystem past the node's reserve, and
// checks that writes are refused with ResourceExhausted while reads go on and the
// process stays up, that `grid status` says why events wait, and that writes (and
// the shipping of the events that waited) resume by themselves once a filler file is
// deleted. Without the reserve, pebble panics on the first write that finds no
// space, and the process exits.
func TestStorageSurvivesAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root; run as root to test a full disk")
	}
	fs := t.TempDir()
	if err := syscall.Mount("tmpfs", fs, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): a full disk is not tested", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(fs, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", fs, err)
		}
	})
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	const reserveMB = 16
	store := start(t, "store", "storage", "-bind="+boundsStoreIP, "-port=50052", "-metrics-port=9102",
		"-data-dir="+filepath.Join(fs, "node"), fmt.Sprintf("-disk-reserve-mb=%d", reserveMB), "-memory-limit-mb=64")
	conn, err := grpc.NewClient(boundsStoreIP+":50052", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := gridpb.NewStorageClient(conn)
	ctx := context.Background()
	write := func(id string) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := client.LearnBatch(cctx, &gridpb.LearnBatchRequest{Concepts: []*gridpb.Concept{{
			Id: id, Content: []byte(strings.Repeat("full disk ", 100)), Timestamp: timestamppb.Now(), Strength: 1, Confidence: 1,
		}}})
		return err
	}
	gridtest.WaitFor(t, 30*time.Second, "the store to take a first write", func() error { return write("before") })
	start(t, "server", "server", "-bind="+boundsServerIP, "-name=bounds-server", "-data-dir="+filepath.Join(dir, "server"),
		"-bootstrap-expect=1", "-event-store="+boundsStoreIP+":50052")
	gridStatus := func() (string, error) {
		out, errOut, code := grid("status", address(boundsServerIP))
		if code != 0 {
			return "", fmt.Errorf("grid status exited %d: %s", code, errOut)
		}
		return out, nil
	}
	shipped := func() error {
		out, err := gridStatus()
		if err != nil {
			return err
		}
		if statusValue(out, "Events Waiting") != "0" || strings.HasPrefix(statusValue(out, "Events Shipped"), "0 of") {
			return fmt.Errorf("events waiting, or none shipped:\n%s", out)
		}
		return nil
	}
	cliPoll.WaitFor(t, 60*time.Second, "the server to lead", func() error {
		out, err := gridStatus()
		if err != nil {
			return err
		}
		if !strings.Contains(out, "bounds-server (") {
			return fmt.Errorf("no leader yet:\n%s", out)
		}
		return nil
	})

	// Fill to half the reserve: refused writes, and 8 MB left for pebble's own.
	filler := filepath.Join(fs, "filler")
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if err := os.WriteFile(filler, make([]byte, free-reserveMB<<20/2), 0o644); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitFor(t, 30*time.Second, "writes to be refused", func() error {
		err := write("during")
		if status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "-disk-reserve-mb") {
			return nil
		}
		return fmt.Errorf("write: %v", err)
	})
	if _, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: "before"}); err != nil {
		t.Fatalf("read from a full disk: %v", err)
	}
	stats, err := client.Stats(ctx, &gridpb.StatsRequest{})
	if err != nil || !stats.WritesRefused {
		t.Fatalf("Stats on a full disk: %v, %v", stats, err)
	}
	m, err := gridtest.Scrape(nil, "http://"+boundsStoreIP+":9102/v1/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Value("grid_storage_writes_refused_total", "reason", "disk_full"); v < 1 {
		t.Fatalf("grid_storage_writes_refused_total{reason=disk_full} = %v", v)
	}
	if v, ok := m.Value("grid_storage_disk_free_bytes"); !ok || v > reserveMB<<20 {
		t.Fatalf("grid_storage_disk_free_bytes = %v, %v", v, ok)
	}
	// An agent joins: its registration is an event, which waits in the outbox, and
	// `grid status` says why.
	start(t, "agent", "agent", "-bind="+boundsAgentIP, "-name=bounds-agent", "-data-dir="+filepath.Join(dir, "agent"),
		"-join="+boundsServerIP, "-retry-interval=200ms")
	cliPoll.WaitFor(t, 60*time.Second, "grid status to say the store's disk is full", func() error {
		out, err := gridStatus()
		if err != nil {
			return err
		}
		if !strings.Contains(out, "disk full") || !strings.Contains(out, "-disk-reserve-mb") {
			return fmt.Errorf("grid status:\n%s", out)
		}
		return nil
	})
	select {
	case <-store.done:
		t.Fatalf("the store exited on a full disk: %v\n%s", store.err, store.out.String())
	default:
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitFor(t, 30*time.Second, "writes to resume once space is freed", func() error { return write("after") })
	cliPoll.WaitFor(t, 60*time.Second, "the events that waited to be shipped", shipped)
	if code := store.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("the store exited %d on SIGTERM:\n%s", code, store.out.String())
	}
}
