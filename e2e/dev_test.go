//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
)

// devTCPPorts and devUDPPorts are the 127.0.0.1 ports `grid dev` and the node this test spawns use.
var (
	devTCPPorts = []int{7000, 7001, 7002, 7946, 7947, 8001, 50052, 50061}
	devUDPPorts = []int{7946, 7947}
)

// skipUnlessDevPortsFree skips the test when another program holds one of the ports
// `grid dev` listens on: grid dev has fixed ports by design.
func skipUnlessDevPortsFree(t *testing.T) {
	t.Helper()
	for _, p := range devTCPPorts {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("grid dev needs TCP %s, which is not free (%v): skipping", addr, err)
		}
		ln.Close()
	}
	for _, p := range devUDPPorts {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Skipf("grid dev needs UDP %s, which is not free (%v): skipping", addr, err)
		}
		pc.Close()
	}
}

// processesMentioning returns the live processes whose command line contains s.
func processesMentioning(s string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			out = append(out, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}

// TestDev runs `grid dev` on its default ports, checks that one command line gives a
// working grid (leader, healthy agent, reachable event store), spawns a node, and
// stops it all with Ctrl-C.
func TestDev(t *testing.T) {
	skipUnlessDevPortsFree(t)
	// grid dev keeps everything under one directory in $TMPDIR: point it here, so that
	// what it leaves behind, if anything, is found and cleaned up.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() { killProcessesMentioning(tmp) })
	dev := start(t, "grid dev", "dev", "-log-level=debug")

	var st api.Status
	cliPoll.WaitFor(t, 60*time.Second, "the dev grid to be ready", func() error {
		if err := gridJSON(&st, "status"); err != nil {
			return err
		}
		if st.Leader.Name != "dev" || st.Servers != 1 {
			return fmt.Errorf("leader %+v, %d servers", st.Leader, st.Servers)
		}
		if st.Agents != (api.StatusAgents{Total: 1, Healthy: 1}) {
			return fmt.Errorf("agents %+v", st.Agents)
		}
		// The leader adds its -event-store to the replicated stores once it leads.
		if st.Events.EventStore != "127.0.0.1:50052" {
			return fmt.Errorf("event store %q, want 127.0.0.1:50052", st.Events.EventStore)
		}
		return nil
	})

	var n nodeView
	if err := gridJSON(&n, "node", "spawn", "-agent=dev-agent", "-port=50061"); err != nil {
		t.Fatalf("spawn: %v", err)
	}
	if n.Status != "running" || n.Endpoint != "127.0.0.1:50061" {
		t.Fatalf("spawned node %+v, want running at 127.0.0.1:50061", n)
	}
	if err := healthy(n.Endpoint); err != nil {
		t.Fatalf("node not reachable: %v", err)
	}
	if len(processesMentioning(tmp)) == 0 {
		t.Fatalf("no storage process runs under %s", tmp)
	}

	// registered, cluster_healthy, spawn_requested, spawn_succeeded: all in the store.
	cliPoll.WaitFor(t, 30*time.Second, "every event shipped", func() error {
		if err := gridJSON(&st, "status"); err != nil {
			return err
		}
		ev := st.Events
		if st.Nodes.Running != 1 || ev.LastSeq < 4 || ev.Waiting != 0 || ev.ShippedSeq != ev.LastSeq ||
			!ev.StoreReachable || ev.LastError != "" {
			return fmt.Errorf("nodes %+v, events %+v", st.Nodes, ev)
		}
		return nil
	})
	stdout, _, code := grid("status")
	if code != 0 || statusValue(stdout, "  127.0.0.1:50052") == "" || !strings.HasPrefix(statusValue(stdout, "  127.0.0.1:50052"), "in-sync") ||
		statusValue(stdout, "Events Waiting") != "0" {
		t.Errorf("grid status: exit %d:\n%s", code, stdout)
	}

	if code := dev.stop(t, syscall.SIGINT, 90*time.Second); code != 0 {
		t.Fatalf("grid dev exited %d after SIGINT, want 0", code)
	}
	for _, want := range []string{"grid status", "grid node spawn -agent=dev-agent -port=50061", "grid event list"} {
		if !strings.Contains(dev.out.String(), want) {
			t.Errorf("grid dev did not print %q", want)
		}
	}
	if left := processesMentioning(tmp); len(left) > 0 {
		t.Errorf("processes left running after grid dev exited:\n%s", strings.Join(left, "\n"))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("grid dev left %d entries in $TMPDIR, want its directory removed: %v", len(entries), entries)
	}
}
