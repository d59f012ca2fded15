//go:build linux

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// The restore test's own addresses, apart from the other tests' (.11-.13, .21-.23,
// .31): three servers, an agent and the event store.
var (
	restoreServerIPs = []string{"127.0.0.91", "127.0.0.92", "127.0.0.93"}
	restoreAgentIP   = "127.0.0.94"
	restoreStoreAddr = "127.0.0.95:50052"
)

// TestSnapshotRestoreKeepsHistoryE2E runs real processes through an operator's
// restore of a snapshot saved before a node was spawned: the node's process is
// stopped and the stop recorded, the restore is a cluster_restored event after every
// event before it, and the event store holds seq 1..N exactly once, each event as the
// servers derived it.
func TestSnapshotRestoreKeepsHistoryE2E(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	start(t, "event store", "storage", "-bind=127.0.0.95", "-port=50052", "-data-dir="+filepath.Join(dir, "events"))
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}}
	for _, ip := range restoreServerIPs {
		c.procs[ip] = start(t, "server "+ip, "server", "-bind="+ip, "-name=server-"+ip,
			"-data-dir="+filepath.Join(dir, ip), "-bootstrap-expect=3", "-join="+restoreServerIPs[0],
			"-retry-interval=200ms", "-event-store="+restoreStoreAddr,
			"-heartbeat-interval=300ms", "-agent-degraded-after=5s", "-agent-offline-after=10s")
	}
	leader := strings.TrimSuffix(leaderOf(c.stablePeers(restoreServerIPs[0], "", 30*time.Second)).Address, ":7002")
	start(t, "agent-r", "agent", "-bind="+restoreAgentIP, "-name=agent-r", "-data-dir="+filepath.Join(dir, "agent-r"),
		"-join="+restoreServerIPs[0], "-retry-interval=200ms", "-max-nodes=4")
	cl := apiClientFor(t, restoreServerIPs[1])
	ctx := context.Background()
	cliPoll.WaitFor(t, 30*time.Second, "agent-r healthy", func() error {
		a, err := cl.Agent(ctx, "agent-r")
		if err != nil {
			return err
		}
		if a.Status != "healthy" {
			return fmt.Errorf("agent-r is %s", a.Status)
		}
		return nil
	})

	file := filepath.Join(dir, "before.snap")
	if out, errOut, code := grid("operator", "snapshot", "save", address(restoreServerIPs[2]), file); code != 0 {
		t.Fatalf("snapshot save: %s%s", out, errOut)
	}
	n, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-r", Port: 50590})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	var pid int
	cliPoll.WaitFor(t, 60*time.Second, "the node running", func() error {
		v, err := cl.Node(ctx, n.ID)
		if err != nil {
			return err
		}
		if v.Status != "running" || v.PID <= 0 {
			return fmt.Errorf("%s (pid %d)", v.Status, v.PID)
		}
		pid = v.PID
		return nil
	})
	before, err := derivedEvents(leader)
	if err != nil || len(before) == 0 {
		t.Fatalf("derived events before the restore: %d, %v", len(before), err)
	}
	highest := before[len(before)-1].Seq

	if out, errOut, code := grid("operator", "snapshot", "restore", address(restoreServerIPs[1]), file); code != 0 {
		t.Fatalf("snapshot restore: %s%s", out, errOut)
	}
	restored := waitEvent(t, leader, "cluster_restored", func(e *events.Event) bool { return e.Type == events.ClusterRestored })
	if restored.Seq <= highest || restored.SnapshotIndex == 0 {
		t.Fatalf("cluster_restored %+v, want a seq after %d and the snapshot's index", restored, highest)
	}
	stop := waitEvent(t, leader, "the orphaned process stopped", func(e *events.Event) bool {
		return e.Type == events.StopSucceeded && e.NodeID == n.ID
	})
	if stop.Seq <= restored.Seq || !strings.Contains(stop.Reason, "did not expect") {
		t.Errorf("stop of the orphan %+v, want it after %d with a reason", stop, restored.Seq)
	}
	cliPoll.WaitFor(t, 30*time.Second, "the orphaned process to exit", func() error {
		if alive(pid) {
			return fmt.Errorf("pid %d runs", pid)
		}
		return nil
	})

	// The store holds 1..N once each; every server derived the same as the store
	// holds, for the events its feed still has.
	conn, err := grpc.NewClient(restoreStoreAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cliPoll.WaitFor(t, 60*time.Second, "the history stored and derived alike", func() error {
		stored, err := storedEventsFrom(conn)
		if err != nil {
			return err
		}
		if len(stored) == 0 || stored[len(stored)-1].Seq < stop.Seq {
			return fmt.Errorf("%d events stored, not yet the stop at %d", len(stored), stop.Seq)
		}
		bySeq := map[uint64]*events.Event{}
		for i, e := range stored {
			if e.Seq != uint64(i+1) {
				t.Fatalf("stored event %d has seq %d: the history is not 1..N exactly once", i+1, e.Seq)
			}
			bySeq[e.Seq] = e
		}
		check := func(who string, evs []*events.Event) error {
			for _, d := range evs {
				s := bySeq[d.Seq]
				if s == nil {
					return fmt.Errorf("%s derived %d, not stored yet", who, d.Seq)
				}
				if s.Type != d.Type || s.Description != d.Description {
					t.Fatalf("%s derived %d %s %q; the store holds %s %q", who, d.Seq, d.Type, d.Description, s.Type, s.Description)
				}
			}
			return nil
		}
		if err := check("the leader before the restore", before); err != nil {
			return err
		}
		for _, ip := range restoreServerIPs {
			evs, err := derivedEvents(ip)
			if err != nil {
				return err
			}
			if err := check(ip, evs); err != nil {
				return err
			}
		}
		return nil
	})
}
