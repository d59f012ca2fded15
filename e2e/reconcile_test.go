//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

// The node reconciler: orders follow the replicated state, whatever happens to the
// requests that recorded them and to the leader, and the state follows reality.

func apiClientFor(t *testing.T, ip string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = "http://" + ip + ":7000"
	cl, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// derivedEvents returns the history a server's FSM derived.
func derivedEvents(ip string) ([]*events.Event, error) {
	var evs []*events.Event
	err := getJSON("http://"+ip+":7000/v1/operator/events/derived", &evs)
	return evs, err
}

// waitEvent waits until the history holds an event that match accepts.
func waitEvent(t *testing.T, ip, what string, match func(*events.Event) bool) *events.Event {
	t.Helper()
	var found *events.Event
	cliPoll.WaitFor(t, 60*time.Second, what, func() error {
		evs, err := derivedEvents(ip)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if match(e) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("not among %d events", len(evs))
	})
	return found
}

func agentRPC(t *testing.T) gridpb.AgentClient {
	t.Helper()
	conn, err := grpc.NewClient(agentIP+":8001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return gridpb.NewAgentClient(conn)
}

func TestNodeOrdersFollowState(t *testing.T) {
	g := newGridWith(t, 8)
	leader := strings.TrimSuffix(leaderOf(g.stablePeers("127.0.0.11", "", 30*time.Second)).Address, ":7002")
	cl := apiClientFor(t, leader)
	ctx := context.Background()

	t.Run("spawns that cannot work are refused when recorded", func(t *testing.T) {
		first := g.spawn(50300)
		before, err := cl.Nodes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string]string{
			`{"agent":"agent-001","port":50301,"storage_path":"logs"}`:                              "overlaps the agent's own",
			`{"agent":"agent-001","port":50301,"storage_path":"logs/x"}`:                            "overlaps the agent's own",
			`{"agent":"agent-001","port":50301,"storage_path":"` + first.ID + `/inner"}`:            "overlaps node " + first.ID,
			`{"agent":"agent-001","port":50301,"storage_path":"a\u0000b"}`:                          "NUL",
			`{"agent":"agent-001","port":8001}`:                                                     "port 8001 is the agent agent-001's own",
			`{"agent":"agent-001","port":50301,"storage_path":"/etc"}`:                              "not inside",
			`{"agent":"agent-001","port":50301,"storage_path":"x"} trailing`:                        "",
			`{"agent":"agent-001","port":50301,"storage_path":"` + filepath.Join(g.agentDir) + `"}`: "not inside",
		}
		for body, want := range cases {
			for _, ip := range serverIPs {
				resp, err := http.Post("http://"+ip+":7000/v1/nodes", "application/json", bytes.NewBufferString(body))
				if err != nil {
					t.Fatal(err)
				}
				var e struct{ Error string }
				_ = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, want) {
					t.Errorf("POST %s to %s: %d %q, want 400 mentioning %q", body, ip, resp.StatusCode, e.Error, want)
				}
			}
		}
		after, err := cl.Nodes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("refused spawns recorded nodes: %d before, %d after", len(before), len(after))
		}
		if _, err := cl.StopNode(ctx, first.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		g.waitNode(first.ID, "stopped", func(n nodeView) error {
			if n.Status != "stopped" {
				return fmt.Errorf("%s", n.Status)
			}
			return nil
		})
	})

	t.Run("a spawn runs even when its request is cancelled", func(t *testing.T) {
		before, err := cl.Nodes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := cl.SpawnNode(rctx, &api.SpawnRequest{Agent: "agent-001", Port: 50310})
			done <- err
		}()
		// Cancel as soon as the spawn is recorded, while the handler may still wait.
		var id string
		cliPoll.WaitFor(t, 30*time.Second, "the spawn to be recorded", func() error {
			nodes, err := cl.Nodes(ctx, "")
			if err != nil {
				return err
			}
			if len(nodes) == len(before) {
				return fmt.Errorf("not yet")
			}
			id = nodes[len(nodes)-1].ID
			for _, n := range nodes {
				if n.Port == 50310 {
					id = n.ID
				}
			}
			return nil
		})
		cancel()
		<-done
		n := g.waitNode(id, "running", func(n nodeView) error {
			if n.Status != "running" || n.PID <= 0 {
				return fmt.Errorf("%s", n.Status)
			}
			return nil
		})
		if err := healthy(n.Endpoint); err != nil {
			t.Fatalf("node %s runs but is not healthy: %v", id, err)
		}
	})

	t.Run("a node stopped behind the servers' back is restarted", func(t *testing.T) {
		n := g.spawn(50320)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := agentRPC(t).StopNode(rctx, &gridpb.StopNodeRequest{NodeId: n.ID, KillTimeoutMs: 1000}); err != nil {
			t.Fatal(err)
		}
		crash := waitEvent(t, leader, "node_crashed for "+n.ID, func(e *events.Event) bool {
			return e.Type == events.NodeCrashed && e.NodeID == n.ID
		})
		if !strings.Contains(crash.Reason, "not running on agent agent-001") {
			t.Errorf("node_crashed reason %q", crash.Reason)
		}
		waitEvent(t, leader, "node_restarted for "+n.ID, func(e *events.Event) bool {
			return e.Type == events.NodeRestarted && e.NodeID == n.ID && e.CausedBy == crash.Seq
		})
		after := g.waitNode(n.ID, "running again", func(v nodeView) error {
			if v.Status != "running" || v.PID <= 0 || v.PID == n.PID || v.Restarts != 1 {
				return fmt.Errorf("%+v", v)
			}
			return nil
		})
		if !alive(after.PID) {
			t.Fatalf("pid %d of the restarted node is not running", after.PID)
		}
	})

	t.Run("a process the servers do not know is stopped", func(t *testing.T) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// The leader may stop the stray before its start completes (it sees it in a
		// heartbeat while it starts): the start then answers Aborted, and the stop is
		// recorded all the same.
		resp, err := agentRPC(t).StartNode(rctx, &gridpb.StartNodeRequest{NodeId: "node-stray", Port: 50330})
		stoppedWhileStarting := status.Code(err) == codes.Aborted && strings.Contains(err.Error(), "stopped while it started")
		if err != nil && !stoppedWhileStarting {
			t.Fatal(err)
		}
		stop := waitEvent(t, leader, "stop_succeeded for the stray", func(e *events.Event) bool {
			return e.Type == events.StopSucceeded && e.NodeID == "node-stray"
		})
		if (!stoppedWhileStarting && stop.PID != int(resp.GetPid())) || !strings.Contains(stop.Reason, "did not expect") {
			t.Errorf("stop event %+v, want pid %d and a reason", stop, resp.GetPid())
		}
		cliPoll.WaitFor(t, 30*time.Second, "the stray process to exit", func() error {
			if alive(int(resp.GetPid())) {
				return fmt.Errorf("pid %d runs", resp.GetPid())
			}
			return nil
		})
	})

	t.Run("a pending node that is stopped ends stopped", func(t *testing.T) {
		n, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-001", Port: 50340})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.StopNode(ctx, n.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		g.waitNode(n.ID, "stopped", func(v nodeView) error {
			if v.Status != "stopped" {
				return fmt.Errorf("%s", v.Status)
			}
			return nil
		})
		cliPoll.WaitFor(t, 30*time.Second, "the port to be free", func() error { return portFree("127.0.0.21:50340") })
	})

	t.Run("a named node", func(t *testing.T) {
		n := g.spawn(50350, "-name=orders-1")
		var views []nodeView
		if err := gridJSON(&views, "node", "status", address(g.via), n.ID); err != nil || len(views) != 1 {
			t.Fatalf("node status: %v %+v", err, views)
		}
		out, stderr, code := grid("node", "spawn", address(g.via), "-agent=agent-001", "-port=50351", "-name=orders-1", "-detach")
		if code == 0 || !strings.Contains(stderr, "name orders-1 is already used by node "+n.ID) {
			t.Errorf("a second node named orders-1: exit %d, %s%s", code, out, stderr)
		}
		var list []struct {
			Type     string `json:"type"`
			NodeID   string `json:"node_id"`
			NodeName string `json:"node_name"`
		}
		if err := gridJSON(&list, "event", "list", address(g.via), "-node=orders-1", "-asc"); err != nil {
			t.Fatal(err)
		}
		if len(list) < 2 || list[0].Type != "spawn_requested" || list[1].Type != "spawn_succeeded" {
			t.Fatalf("events of orders-1: %+v", list)
		}
		for _, e := range list {
			if e.NodeID != n.ID || e.NodeName != "orders-1" {
				t.Errorf("event %+v, want node %s named orders-1", e, n.ID)
			}
		}
	})

	evs, err := derivedEvents(leader)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, evs)
}

// TestNodeOrdersSurviveLeaderKill kills the leader while the orders of 20 spawns and
// 10 stops are under way: every node ends in its final state, with one outcome event
// per request.
func TestNodeOrdersSurviveLeaderKill(t *testing.T) {
	g := newGridWith(t, 24)
	leader := strings.TrimSuffix(leaderOf(g.stablePeers("127.0.0.11", "", 30*time.Second)).Address, ":7002")
	var follower string
	for _, ip := range serverIPs {
		if ip != leader {
			follower = ip
		}
	}
	cl := apiClientFor(t, leader)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Requests return once recorded; the agent takes a while to start 20 nodes, so
	// the orders are under way when the leader dies.
	const n = 20
	var ids []string
	stop := map[string]bool{}
	for i := range n {
		node, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-001", Port: 50400 + i, MemoryLimitMB: 64})
		if err != nil {
			t.Fatalf("spawn %d: %v", i, err)
		}
		ids = append(ids, node.ID)
	}
	for i, id := range ids {
		if i%2 == 0 {
			if _, err := cl.StopNode(ctx, id, time.Second); err != nil {
				t.Fatalf("stop %s: %v", id, err)
			}
			stop[id] = true
		}
	}
	g.procs[leader].kill()
	t.Logf("killed leader %s with orders under way", leader)

	g.stablePeers(follower, "", 60*time.Second)
	g.via = follower
	for _, id := range ids {
		want := "running"
		if stop[id] {
			want = "stopped"
		}
		g.waitNode(id, want, func(v nodeView) error {
			if v.Status != want {
				return fmt.Errorf("%s (%s)", v.Status, v.Error)
			}
			return nil
		})
	}
	evs, err := derivedEvents(follower)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, evs)
	requests := map[string]int{}
	for _, e := range evs {
		if e.Type == events.SpawnRequested || e.Type == events.StopRequested {
			requests[e.NodeID]++
		}
	}
	for _, id := range ids {
		want := 1
		if stop[id] {
			want = 2
		}
		if requests[id] != want {
			t.Errorf("node %s has %d requests in the history, want %d", id, requests[id], want)
		}
	}
	// The stopped nodes have no process, the running ones a live one.
	for _, id := range ids {
		v, err := g.node(id)
		if err != nil {
			t.Fatal(err)
		}
		if stop[id] != (v.PID == 0) || (v.PID != 0 && !alive(v.PID)) {
			t.Errorf("node %s is %s with pid %d", id, v.Status, v.PID)
		}
	}
}
