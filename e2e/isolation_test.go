//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/cgroup"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestNodeKilledForItsMemoryIsRecordedAndExplained runs a real grid whose agent puts
// each node in a cgroup, makes a node allocate past its memory limit, and checks
// that the kernel killed it, that the history says so (node_crashed with reason
// oom_killed and the limit, then node_restarted by policy), and that `grid ask`
// answers why it crashed.
func TestNodeKilledForItsMemoryIsRecordedAndExplained(t *testing.T) {
	if h := cgroup.Open(); !h.Available() {
		t.Skipf("agents cannot use cgroups here: %s", h.Reason)
	}
	g := newGrid(t)
	via := address(g.via)

	// The agent says how it isolates its nodes.
	stdout, stderr, code := grid("agent", "status", via, "agent-001")
	if code != 0 || !strings.Contains(stdout, "Isolation = cgroup v") {
		t.Fatalf("agent status agent-001: exit %d, %s%s; want an Isolation line naming the cgroup version", code, stdout, stderr)
	}

	const limitMB = 48
	n := g.spawn(50761, "-name=node-hungry", fmt.Sprintf("-memory-limit-mb=%d", limitMB))

	// A 12 MiB batch needs more than 48 MB in a node: the kernel kills it.
	conn, err := grpc.NewClient(n.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var batch gridpb.LearnBatchRequest
	for i := range 12 {
		batch.Concepts = append(batch.Concepts, &gridpb.Concept{Id: fmt.Sprintf("big-%d", i), Content: bytes.Repeat([]byte("hungry "), (1<<20)/7)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := gridpb.NewStorageClient(conn).LearnBatch(ctx, &batch); err == nil {
		t.Fatalf("a 12 MiB batch into a node limited to %d MB succeeded", limitMB)
	}

	type crashEvent struct {
		askEvent
		Reason        string `json:"reason"`
		Signal        string `json:"signal"`
		MemoryLimitMB int    `json:"memory_limit_mb"`
		Description   string `json:"description"`
	}
	var crash crashEvent
	cliPoll.WaitFor(t, 60*time.Second, "node-hungry's crash and its restart", func() error {
		var evs []crashEvent
		if err := gridJSON(&evs, "event", "list", via, "-node=node-hungry", "-type=node_crashed,node_restarted", "-asc"); err != nil {
			return err
		}
		if len(evs) != 2 || evs[0].Type != "node_crashed" || evs[1].Type != "node_restarted" || evs[1].CausedBy != evs[0].Seq {
			return fmt.Errorf("events %+v", evs)
		}
		crash = evs[0]
		return nil
	})
	if crash.Reason != "oom_killed" || crash.MemoryLimitMB != limitMB || crash.Signal != "SIGKILL" || !strings.Contains(crash.Description, "out of memory") {
		t.Fatalf("node_crashed = %+v; want reason oom_killed, memory_limit_mb %d, signal SIGKILL, and a description that says out of memory", crash, limitMB)
	}
	g.waitNode(n.ID, "running again", func(v nodeView) error {
		if v.Status != "running" || v.Restarts != 1 {
			return fmt.Errorf("node %+v", v)
		}
		return healthy(v.Endpoint)
	})

	stdout, stderr, code = grid("ask", via, "why did node-hungry crash?")
	if code != 0 || !strings.Contains(stdout, "out of memory") || !strings.Contains(stdout, fmt.Sprintf("%d MB", limitMB)) {
		t.Fatalf("grid ask why did node-hungry crash: exit %d\n%s%s\nwant an answer that says it ran out of memory at its limit", code, stdout, stderr)
	}
}
