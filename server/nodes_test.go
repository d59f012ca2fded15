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
