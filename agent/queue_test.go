package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	gridpb "github.com/sutragrid/grid/proto"
)

func TestReportQueueOrderAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), reportsFile)
	q := newReportQueue(path, hclog.NewNullLogger())
	for i, ev := range []gridpb.NodeEvent{gridpb.NodeEvent_NODE_EVENT_CRASHED, gridpb.NodeEvent_NODE_EVENT_RESTARTED, gridpb.NodeEvent_NODE_EVENT_CRASHED} {
		q.push(&gridpb.NodeReport{Agent: "a", NodeId: "n1", Event: ev, Pid: int32(100 + i), Signal: "SIGKILL", Restarting: true, TimeUnixNano: int64(i)})
	}
	q.pop()

	// A new agent finds what was not delivered, in order, ahead of its own reports.
	q2, err := openReportQueue(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	q2.push(&gridpb.NodeReport{NodeId: "n2", Event: gridpb.NodeEvent_NODE_EVENT_STOPPED})
	var got []string
	for {
		r, ok := q2.peek()
		if !ok {
			break
		}
		got = append(got, r.GetNodeId()+"/"+r.GetEvent().String())
		if r.GetNodeId() == "n1" && (r.GetSignal() != "SIGKILL" || !r.GetRestarting() || r.GetAgent() != "a") {
			t.Fatalf("report lost fields: %v", r)
		}
		q2.pop()
	}
	want := []string{"n1/NODE_EVENT_RESTARTED", "n1/NODE_EVENT_CRASHED", "n2/NODE_EVENT_STOPPED"}
	if len(got) != len(want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("queue = %v, want %v", got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q2.waitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	// Delivered reports are gone from the file too.
	q3, err := openReportQueue(path, hclog.NewNullLogger())
	if err != nil || q3.len() != 0 {
		t.Fatalf("after delivery the file holds %d reports (%v)", q3.len(), err)
	}
}
