package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// orderAgent is an agent's gRPC endpoint that starts nothing: it answers the
// leader's orders and remembers the stops it was ordered.
type orderAgent struct {
	gridpb.UnimplementedAgentServer
	addr string

	mu      sync.Mutex
	stopped []string
}

const orderAgentPID = 4242

func startOrderAgent(t *testing.T) *orderAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &orderAgent{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	gridpb.RegisterAgentServer(srv, a)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return a
}

func (a *orderAgent) StartNode(context.Context, *gridpb.StartNodeRequest) (*gridpb.StartNodeResponse, error) {
	return &gridpb.StartNodeResponse{Pid: orderAgentPID}, nil
}

func (a *orderAgent) StopNode(_ context.Context, req *gridpb.StopNodeRequest) (*gridpb.StopNodeResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = append(a.stopped, req.GetNodeId())
	return &gridpb.StopNodeResponse{Signal: "SIGTERM"}, nil
}

func (a *orderAgent) stops() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.stopped...)
}

// A node spawned after the snapshot was saved is unknown to the restored state, but
// its process still runs on its agent: the leader stops it when the agent's
// heartbeats list it, and records the stop after the restore's event.
func TestSnapshotRestoreStopsOrphans(t *testing.T) {
	agent := startOrderAgent(t)
	c := newEvCluster(t, 3, "")
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evApply(t, leader, &fsm.RegisterAgent{Name: "a1", Address: agent.addr, MaxNodes: 4, StorageRoot: t.TempDir()})

	rc, err := apiClient(t, leader).SnapshotSave(ctx)
	if err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	archiveBytes, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	evApply(t, leader, &fsm.SpawnNode{ID: "n-orphan", Agent: "a1", Port: 50500})
	gridtest.WaitFor(t, 20*time.Second, "n-orphan running", func() error {
		n, err := leader.State().Node("n-orphan")
		if err != nil || n == nil || n.Status != fsm.NodeStatusRunning {
			return fmt.Errorf("n-orphan: %+v, %v", n, err)
		}
		return nil
	})

	if err := apiClient(t, leader).SnapshotRestore(ctx, bytes.NewReader(archiveBytes)); err != nil {
		t.Fatalf("snapshot restore: %v", err)
	}
	restoredSeq := evMeta(t, leader).LastSeq
	if e, _ := leader.State().OutboxEvent(restoredSeq); e == nil || e.Type != events.ClusterRestored {
		t.Fatalf("event %d after the restore: %+v", restoredSeq, e)
	}
	if n, _ := leader.State().Node("n-orphan"); n != nil {
		t.Fatalf("the restored state knows n-orphan: %+v", n)
	}

	// The agent goes on reporting the process in its heartbeats.
	hb := &gridpb.HeartbeatRequest{Name: "a1", Nodes: []*gridpb.NodeReport{{
		NodeId: "n-orphan", Pid: orderAgentPID, Event: gridpb.NodeEvent_NODE_EVENT_RUNNING,
	}}}
	endpoint := &serversEndpoint{s: leader}
	gridtest.WaitFor(t, 20*time.Second, "the orphaned process stopped", func() error {
		if _, err := endpoint.Heartbeat(ctx, hb); err != nil {
			return err
		}
		if got := agent.stops(); len(got) != 1 || got[0] != "n-orphan" {
			return fmt.Errorf("stops ordered: %v", got)
		}
		return nil
	})
	gridtest.WaitFor(t, 20*time.Second, "the stop recorded", func() error {
		evs, err := leader.State().Outbox(restoredSeq, 100)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Type == events.StopSucceeded && e.NodeID == "n-orphan" && e.AgentID == "a1" && e.Reason != "" {
				return nil
			}
		}
		return fmt.Errorf("%d events after the restore, no stop of n-orphan", len(evs))
	})
}
