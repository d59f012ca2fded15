package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"
)

// Event-shaped test data: what the event store will write. Concept i is event i: an
// ~250-byte JSON document with four indexed attributes, and two associations: from
// its agent, and to the event before it (its cause).
var (
	eventTypes = []string{
		"agent_registered", "agent_heartbeat", "agent_degraded", "agent_offline",
		"agent_recovered", "agent_unregistered", "spawn_requested", "spawn_succeeded",
		"spawn_failed", "stop_requested", "stop_succeeded", "stop_failed",
		"node_crashed", "node_restarted", "cluster_healthy", "cluster_degraded",
		"cluster_critical",
	}
	severities = []string{"info", "warning", "error"}
)

const (
	testAgents = 20
	testNodes  = 50
)

// epoch is the time of event 0 in test data.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func eventID(i int) string { return fmt.Sprintf("event-%012d", i) }

func eventConcept(i int, t int64) Concept {
	typ := eventTypes[(i*7)%len(eventTypes)]
	agent := fmt.Sprintf("agent-%03d", i%testAgents)
	node := fmt.Sprintf("node-%03d", (i/3)%testNodes)
	sev := severities[(i/5)%len(severities)]
	content := fmt.Sprintf(`{"type":%q,"seq":%d,"timestamp":%q,"agent_id":%q,"node_id":%q,`+
		`"hostname":"host-%03d.dc1.example.net","platform":"linux/amd64","port":%d,`+
		`"storage_path":"/var/grid/nodes/%s","pid":%d,"restart_count":%d}`,
		typ, i, time.Unix(0, t).UTC().Format(time.RFC3339Nano), agent, node,
		i%testAgents, 50051+i%50, node, 10000+i%50000, i%7)
	return Concept{
		ID:      eventID(i),
		Content: []byte(content),
		Attributes: map[string]string{
			"type": typ, "agent_id": agent, "node_id": node, "severity": sev,
		},
		Time:       t,
		Strength:   1,
		Confidence: 1,
	}
}

func eventAssociations(c *Concept, i int) []Association {
	as := []Association{{Source: c.Attributes["agent_id"], Target: c.ID, Type: "concerns", Confidence: 1, Time: c.Time}}
	if i > 0 {
		as = append(as, Association{Source: c.ID, Target: eventID(i - 1), Type: "caused_by", Confidence: 0.5, Time: c.Time})
	}
	return as
}

// eventBatch returns events [from, from+n) spaced step apart from epoch.
func eventBatch(from, n int, step time.Duration) ([]Concept, []Association) {
	cs := make([]Concept, 0, n)
	var as []Association
	for i := from; i < from+n; i++ {
		c := eventConcept(i, epoch+int64(i)*int64(step))
		cs = append(cs, c)
		as = append(as, eventAssociations(&c, i)...)
	}
	return cs, as
}

func toProtoBatch(cs []Concept, as []Association) *gridpb.LearnBatchRequest {
	req := &gridpb.LearnBatchRequest{}
	for i := range cs {
		req.Concepts = append(req.Concepts, toProtoConcept(&cs[i]))
	}
	for i := range as {
		req.Associations = append(req.Associations, toProtoAssociation(&as[i]))
	}
	return req
}

func openTestStore(tb testing.TB) *Store {
	tb.Helper()
	s, err := OpenStore(tb.TempDir(), StoreOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// startTestServer serves a node on 127.0.0.1:0 until the test ends and returns a
// client of it. edit, if not nil, adjusts the config first.
func startTestServer(tb testing.TB, edit func(*Config)) (gridpb.StorageClient, *Server) {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = tb.TempDir()
	if edit != nil {
		edit(cfg)
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: hclog.DefaultOutput})
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return gridpb.NewStorageClient(conn), srv
}

func ts(t int64) *timestamppb.Timestamp { return timestamp(t) }

func mustWrite(tb testing.TB, s *Store, cs []Concept, as []Association) WriteResult {
	tb.Helper()
	res, err := s.Write(cs, as)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}
