package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestNodeByName checks that a node is found, read and stopped by its name as by
// its ID, through a follower as on the leader, and what the answers are that a
// client's history is judged by (chaos/checker): 404 for a name no node has, 400
// naming the name for a spawn of a taken one, 409 for a stop of a stopped node.
func TestNodeByName(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := leader.Apply(ctx, &fsm.RegisterAgent{Name: "agent-1", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, c.servers, "agent-1", true)
	via := apiClient(t, followers(leader, c.servers)[0])
	spawned, err := via.SpawnNode(ctx, &api.SpawnRequest{Name: "web-1", Agent: "agent-1", Port: 9001})
	if err != nil {
		t.Fatal(err)
	}
	other, err := via.SpawnNode(ctx, &api.SpawnRequest{Name: "web-2", Agent: "agent-1", Port: 9002})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		key, wantID string
	}{
		{"web-1", spawned.ID},
		{spawned.ID, spawned.ID},
		{"web-2", other.ID},
		{"web-3", ""},
	} {
		for _, s := range []*Server{leader, followers(leader, c.servers)[0]} {
			n, err := apiClient(t, s).Node(ctx, tc.key)
			switch {
			case tc.wantID == "" && !api.IsNotFound(err):
				t.Errorf("GET /v1/node/%s via %s: %v, want a 404", tc.key, s.Name(), err)
			case tc.wantID != "" && (err != nil || n.ID != tc.wantID):
				t.Errorf("GET /v1/node/%s via %s: %+v %v, want node %s", tc.key, s.Name(), n, err, tc.wantID)
			}
		}
	}

	_, err = via.SpawnNode(ctx, &api.SpawnRequest{Name: "web-1", Agent: "agent-1", Port: 9003})
	if code := statusCode(err); code != http.StatusBadRequest || !strings.Contains(err.Error(), "name web-1 is already used by node") {
		t.Errorf("spawn of a taken name: %v, want a 400 that names the name", err)
	}
	if _, err := via.StopNode(ctx, "web-3", 0); !api.IsNotFound(err) {
		t.Errorf("stop of a name no node has: %v, want a 404", err)
	}
	n, err := via.StopNode(ctx, "web-1", 0)
	if err != nil || n.ID != spawned.ID || n.Status != api.NodeStopping {
		t.Fatalf("stop by name: %+v %v, want node %s stopping", n, err, spawned.ID)
	}
	if n, err := via.StopNode(ctx, "web-1", 0); err != nil || n.Status != api.NodeStopping {
		t.Errorf("second stop while stopping: %+v %v, want stopping", n, err)
	}
}

func statusCode(err error) int {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// TestSpawnCarriesCPULimitAndAgentIsolation follows the two facts from where they
// enter to where they leave: an agent's isolation from its registration to the HTTP
// API, and a node's CPU limit from the spawn request to the API and the StartNode
// order its agent gets.
func TestSpawnCarriesCPULimitAndAgentIsolation(t *testing.T) {
	c := newCluster(t, 1)
	s := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const isolation = "cgroup v2 under /grid.slice/grid-agent.service"
	if _, err := serversClient(t, s).Register(ctx, &gridpb.RegisterRequest{Name: "agent-1", Address: deadAgentAddr, MaxNodes: 4,
		StorageRoot: t.TempDir(), Isolation: isolation}); err != nil {
		t.Fatal(err)
	}
	cl := apiClient(t, s)
	if a, err := cl.Agent(ctx, "agent-1"); err != nil || a.Isolation != isolation {
		t.Errorf("agent via HTTP: %+v %v, want isolation %q", a, err, isolation)
	}

	spawned, err := cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-1", Port: 9001, CPULimit: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if spawned.CPULimit != 1.5 {
		t.Errorf("spawned node: CPU limit %v, want 1.5", spawned.CPULimit)
	}
	if n, err := cl.Node(ctx, spawned.ID); err != nil || n.CPULimit != 1.5 {
		t.Errorf("GET node: %+v %v, want CPU limit 1.5", n, err)
	}
	n, err := s.State().Node(spawned.ID)
	if err != nil || n == nil {
		t.Fatalf("node %s: %v", spawned.ID, err)
	}
	if got := startRequest(n).GetCpuLimit(); got != 1.5 {
		t.Errorf("StartNode order: CPU limit %v, want 1.5", got)
	}

	_, err = cl.SpawnNode(ctx, &api.SpawnRequest{Agent: "agent-1", Port: 9002, CPULimit: -1})
	if code := statusCode(err); code != http.StatusBadRequest || !strings.Contains(err.Error(), "cpu_limit") {
		t.Errorf("spawn with a negative CPU limit: %v, want a 400 naming cpu_limit", err)
	}

	// A report that spans lines (an errors.Join, say) is made one line, not refused:
	// the agent still registers.
	if _, err := serversClient(t, s).Register(ctx, &gridpb.RegisterRequest{Name: "agent-1", Address: deadAgentAddr, MaxNodes: 4,
		StorageRoot: t.TempDir(), Isolation: "none: no cgroup v2\nno cgroup v1"}); err != nil {
		t.Fatal(err)
	}
	if a, err := cl.Agent(ctx, "agent-1"); err != nil || a.Isolation != "none: no cgroup v2 no cgroup v1" {
		t.Errorf("agent via HTTP: %+v %v, want its isolation on one line", a, err)
	}
}
