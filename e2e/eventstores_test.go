//go:build linux

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// The replicated-stores test's own addresses: three servers, an agent and the
// configured event store.
var (
	replServerIPs = []string{"127.0.0.101", "127.0.0.102", "127.0.0.103"}
	replAgentIP   = "127.0.0.104"
	replStoreAddr = "127.0.0.105:50052"
	replNodeAddr  = "127.0.0.104:50700"
)

// TestGridRunsItsOwnEventStore: "Sutra monitors Sutra". A node spawned with
// -role=event-store is backfilled with the whole history and then gets every new
// event; killed, its agent restarts it and it catches up; with the configured store
// killed, listings come from it, whole; stopped, it is an event store no more.
func TestGridRunsItsOwnEventStore(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	store := start(t, "event store", "storage", "-bind=127.0.0.105", "-port=50052", "-data-dir="+filepath.Join(dir, "events"))
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}}
	for _, ip := range replServerIPs {
		c.procs[ip] = start(t, "server "+ip, "server", "-bind="+ip, "-name=server-"+ip,
			"-data-dir="+filepath.Join(dir, ip), "-bootstrap-expect=3", "-join="+replServerIPs[0],
			"-retry-interval=200ms", "-event-store="+replStoreAddr,
			"-heartbeat-interval=300ms", "-agent-degraded-after=5s", "-agent-offline-after=10s")
	}
	c.stablePeers(replServerIPs[0], "", 30*time.Second)
	start(t, "agent-e", "agent", "-bind="+replAgentIP, "-name=agent-e", "-data-dir="+filepath.Join(dir, "agent-e"),
		"-join="+replServerIPs[0], "-retry-interval=200ms", "-max-nodes=4")
	cl := apiClientFor(t, replServerIPs[1])
	ctx := context.Background()
	cliPoll.WaitFor(t, 30*time.Second, "agent-e healthy", func() error {
		a, err := cl.Agent(ctx, "agent-e")
		if err != nil {
			return err
		}
		if a.Status != "healthy" {
			return fmt.Errorf("agent-e is %s", a.Status)
		}
		return nil
	})
	// Some history before the grid runs its own store.
	user, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-e", Port: 50701})
	if err != nil {
		t.Fatal(err)
	}
	waitNode(t, cl, user.ID, "running")

	out, errOut, code := grid("node", "spawn", address(replServerIPs[2]), "-agent=agent-e", "-port=50700",
		"-role=event-store", "-name=history", "-restart-delay=200ms", "-memory-limit-mb=256")
	if code != 0 {
		t.Fatalf("spawn the event store node: %s%s", out, errOut)
	}
	nodes, err := cl.Nodes(ctx, "agent-e")
	if err != nil {
		t.Fatal(err)
	}
	var node *api.Node
	for i := range nodes {
		if nodes[i].Name == "history" {
			node = &nodes[i]
		}
	}
	if node == nil || node.Role != api.NodeRoleEventStore {
		t.Fatalf("node history: %+v", nodes)
	}
	key := "node:" + node.ID
	waitInSync(t, cl, key)
	sameHistory(t, replStoreAddr, replNodeAddr)

	// Killed, it is restarted by its agent and catches up.
	if err := syscall.Kill(node.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StopNode(ctx, user.ID, 0); err != nil {
		t.Fatal(err)
	}
	waitEventSeen(t, cl, "the restart", func(e api.Event) bool { return e.Type == events.NodeRestarted && e.NodeID == node.ID })
	waitInSync(t, cl, key)
	sameHistory(t, replStoreAddr, replNodeAddr)

	// With the configured store gone, reads come whole from the node.
	store.kill()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cl.Events(ctx, api.EventQuery{Limit: 1000})
	if err != nil || list.Partial != "" || len(list.Events) < int(st.Events.ShippedSeq) {
		t.Fatalf("list with the configured store down: %d events of %d, partial %q, %v",
			len(list.Events), st.Events.LastSeq, list.Partial, err)
	}
	if out, errOut, code := grid("status", address(replServerIPs[0])); code != 0 ||
		!strings.Contains(out, "1 in-sync, 1 down") || !strings.Contains(out, key) {
		t.Errorf("grid status with the configured store down:\n%s%s", out, errOut)
	}

	// Stopped, it is no event store any more.
	if out, errOut, code := grid("node", "stop", address(replServerIPs[0]), node.ID); code != 0 {
		t.Fatalf("stop: %s%s", out, errOut)
	}
	cliPoll.WaitFor(t, 30*time.Second, "the node no longer a store", func() error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Events.Stores {
			if s.Name == key {
				return fmt.Errorf("still a store: %+v", s)
			}
		}
		return nil
	})
}

// waitNode waits until the node has status want.
func waitNode(t *testing.T, cl *api.Client, id, want string) {
	t.Helper()
	cliPoll.WaitFor(t, 60*time.Second, "node "+id+" "+want, func() error {
		n, err := cl.Node(context.Background(), id)
		if err != nil {
			return err
		}
		if n.Status != want {
			return fmt.Errorf("%s", n.Status)
		}
		return nil
	})
}

// waitInSync waits until the store named key holds every event derived.
func waitInSync(t *testing.T, cl *api.Client, key string) {
	t.Helper()
	cliPoll.WaitFor(t, 60*time.Second, key+" in sync", func() error {
		st, err := cl.Status(context.Background())
		if err != nil {
			return err
		}
		for _, s := range st.Events.Stores {
			if s.Name == key {
				if s.State != api.StoreInSync || s.AckedSeq != st.Events.LastSeq {
					return fmt.Errorf("%s at %d of %d (%s %s)", s.State, s.AckedSeq, st.Events.LastSeq, s.LastError, s.Fault)
				}
				return nil
			}
		}
		return fmt.Errorf("no store %s in %+v", key, st.Events.Stores)
	})
}

// waitEventSeen waits until an event that match passes is listed.
func waitEventSeen(t *testing.T, cl *api.Client, what string, match func(api.Event) bool) {
	t.Helper()
	cliPoll.WaitFor(t, 60*time.Second, what, func() error {
		list, err := cl.Events(context.Background(), api.EventQuery{Limit: 1000, Types: []events.Type{events.NodeRestarted}})
		if err != nil {
			return err
		}
		for _, e := range list.Events {
			if match(e) {
				return nil
			}
		}
		return fmt.Errorf("not among the last %d events", len(list.Events))
	})
}

// sameHistory checks that two stores hold seq 1..N once each, the same events.
func sameHistory(t *testing.T, addrs ...string) {
	t.Helper()
	var first []*events.Event
	for i, addr := range addrs {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := storedEventsFrom(conn)
		conn.Close()
		if err != nil {
			t.Fatalf("store %s: %v", addr, err)
		}
		for j, e := range evs {
			if e.Seq != uint64(j+1) {
				t.Fatalf("store %s: event %d at position %d: not 1..N exactly once", addr, e.Seq, j)
			}
		}
		if i == 0 {
			first = evs
			continue
		}
		// New events may reach one store a moment before the other: their common
		// prefix must be the same.
		for j := range min(len(evs), len(first)) {
			if evs[j].Description != first[j].Description || evs[j].Type != first[j].Type || !evs[j].Timestamp.Equal(first[j].Timestamp) {
				t.Fatalf("event %d differs: %+v vs %+v", j+1, evs[j], first[j])
			}
		}
	}
}
