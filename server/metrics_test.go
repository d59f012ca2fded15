package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/telemetry"
)

// TestMetricsMoveWithTheGrid scrapes a server as Prometheus would, before and after
// an agent registers and heartbeats, events are shipped and a question is asked, and
// checks that each metric moved the way an operator would expect.
func TestMetricsMoveWithTheGrid(t *testing.T) {
	es := startEventStore(t, t.TempDir(), 0)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	url := "http://" + s.HTTPAddr() + "/v1/metrics?format=prometheus"
	before := gridtest.MustScrape(t, nil, url)
	if v, ok := before.Value("grid_agents", "status", "healthy"); !ok || v != 0 {
		t.Fatalf("before any agent: grid_agents{status=healthy} = %v (present %v), want 0", v, ok)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := serversClient(t, s)
	if _, err := cl.Register(ctx, &gridpb.RegisterRequest{Name: "agent-m1", Address: deadAgentAddr, MaxNodes: 2, StorageRoot: "/tmp/m1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "agent-m1"}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"question": "what happened in the last hour?"})
	resp, err := http.Post("http://"+s.HTTPAddr()+"/v1/ask", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Shipping runs in the background: wait until the event store has the events.
	var after gridtest.Metrics
	gridtest.WaitFor(t, 15*time.Second, "the registration's events shipped", func() error {
		m, err := gridtest.Scrape(nil, url)
		if err != nil {
			return err
		}
		after = m
		if v, _ := m.Value("grid_events_outbox"); v != 0 {
			return fmt.Errorf("%v events still in the outbox", v)
		}
		if v, _ := m.Value("grid_events_shipped_total"); v < 1 {
			return fmt.Errorf("no event shipped yet")
		}
		if v, ok := m.Value("grid_autopilot_healthy"); !ok || v != 1 {
			return fmt.Errorf("autopilot has not judged the server healthy yet")
		}
		return nil
	})

	tests := []struct {
		name    string
		metric  string
		labels  []string
		typ     string
		atLeast float64
		exactly *float64
	}{
		{"agents by status", "grid_agents", []string{"status", "healthy"}, "gauge", 1, ptr(1.0)},
		{"no agent offline", "grid_agents", []string{"status", "offline"}, "gauge", 0, ptr(0.0)},
		{"nodes by status", "grid_nodes", []string{"status", "running"}, "gauge", 0, ptr(0.0)},
		{"heartbeats received", "grid_agent_heartbeats_received_total", nil, "counter", 1, nil},
		{"events derived by type", "grid_events_derived_total", []string{"type", "agent_registered"}, "counter", 1, nil},
		{"events shipped", "grid_events_shipped_total", nil, "counter", 1, nil},
		{"outbox empty", "grid_events_outbox", nil, "gauge", 0, ptr(0.0)},
		{"no shipper lag in events", "grid_shipper_lag_events", nil, "gauge", 0, ptr(0.0)},
		{"no shipper lag in seconds", "grid_shipper_lag_seconds", nil, "gauge", 0, ptr(0.0)},
		{"event store writes timed", "grid_shipper_store_write_duration_seconds", nil, "histogram", 1, nil},
		{"heartbeat RPC timed", "grid_rpc_request_duration_seconds", []string{"method", gridpb.Servers_Heartbeat_FullMethodName, "code", "OK"}, "histogram", 1, nil},
		{"ask timed", "grid_ask_duration_seconds", nil, "histogram", 1, nil},
		{"ask route timed", "grid_http_request_duration_seconds", []string{"route", "POST /v1/ask"}, "histogram", 1, nil},
		// A scrape is timed once answered: this scrape sees the earlier ones.
		{"scrapes timed", "grid_http_request_duration_seconds", []string{"route", "GET /v1/metrics"}, "histogram", 1, nil},
		{"the store holds everything", "grid_event_store_lag_events", []string{"store", es.addr}, "gauge", 0, ptr(0.0)},
		{"the store's cursor", "grid_event_store_acked_seq", []string{"store", es.addr}, "gauge", 1, nil},
		{"the store is trusted", "grid_event_store_faulty", []string{"store", es.addr}, "gauge", 0, ptr(0.0)},
		{"the store holds the outbox", "grid_event_store_holds_outbox", []string{"store", es.addr}, "gauge", 1, ptr(1.0)},
		{"no store fault", "grid_shipper_store_faults_total", nil, "counter", 0, ptr(0.0)},
		{"leader", "grid_server_leader", nil, "gauge", 1, ptr(1.0)},
		{"raft term of the one election", "grid_raft_term", nil, "gauge", 1, nil},
		{"raft entries applied", "grid_raft_applied_index", nil, "gauge", 3, nil},
		{"autopilot healthy", "grid_autopilot_healthy", nil, "gauge", 1, ptr(1.0)},
		{"a single server tolerates no failure", "grid_autopilot_failure_tolerance", nil, "gauge", 0, ptr(0.0)},
		{"raft applies (go-metrics)", "raft_apply", nil, "counter", 1, nil},
		{"raft log writes (armon/go-metrics)", "raft_boltdb_logsPerBatch", nil, "summary", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := after.Value(tc.metric, tc.labels...)
			if !ok {
				t.Fatalf("%s%v is missing", tc.metric, tc.labels)
			}
			if got := after.Type(tc.metric); got != tc.typ {
				t.Errorf("%s is a %s, want a %s", tc.metric, got, tc.typ)
			}
			if v < tc.atLeast || (tc.exactly != nil && v != *tc.exactly) {
				t.Errorf("%s%v = %v, want at least %v (exactly %v)", tc.metric, tc.labels, v, tc.atLeast, tc.exactly)
			}
		})
	}
	// Counters only grow: the heartbeat counter was 0 before.
	if v, _ := before.Value("grid_agent_heartbeats_received_total"); v != 0 {
		t.Errorf("heartbeats before any agent: %v", v)
	}
	var gossip bool
	for name := range after {
		gossip = gossip || strings.HasPrefix(name, "memberlist_") || strings.HasPrefix(name, "serf_")
	}
	if !gossip {
		t.Errorf("no memberlist_ or serf_ metric in the scrape")
	}
}

// TestMetricsJSON checks the JSON shape of GET /v1/metrics and that an unknown format
// is refused.
func TestMetricsJSON(t *testing.T) {
	c := newCluster(t, 1)
	s := c.leader()
	register(t, s, "agent-j1")
	tests := []struct {
		query string
		code  int
	}{
		{"", http.StatusOK},
		{"?format=json", http.StatusOK},
		{"?format=xml", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/metrics" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code != http.StatusOK {
				return
			}
			var fams []telemetry.Family
			if err := json.NewDecoder(resp.Body).Decode(&fams); err != nil {
				t.Fatal(err)
			}
			byName := map[string]telemetry.Family{}
			for _, f := range fams {
				byName[f.Name] = f
			}
			agents := byName["grid_agents"]
			if agents.Type != "gauge" || agents.Help == "" {
				t.Fatalf("grid_agents: %+v", agents)
			}
			var healthy *float64
			for _, s := range agents.Samples {
				if s.Labels["status"] == "healthy" {
					healthy = s.Value
				}
			}
			if healthy == nil || *healthy != 1 {
				t.Errorf("grid_agents{status=healthy}: %v, want 1", healthy)
			}
			h := byName["grid_http_request_duration_seconds"]
			if h.Type != "histogram" || len(h.Samples) == 0 {
				t.Fatalf("grid_http_request_duration_seconds: %+v", h)
			}
			last := h.Samples[0].Buckets[len(h.Samples[0].Buckets)-1]
			if last.LE != "+Inf" || last.Count != *h.Samples[0].Count {
				t.Errorf("last bucket %+v, count %d", last, *h.Samples[0].Count)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestEventsDerivedCountsByTypeAndRestarts checks the event hook's counting: each
// event by its type, and node restarts on their own.
func TestEventsDerivedCountsByTypeAndRestarts(t *testing.T) {
	m := newServerMetrics(&Server{})
	defer m.reg.Close()
	m.eventsDerived([]*events.Event{{Type: events.NodeRestarted}, {Type: events.NodeRestarted}, {Type: events.AgentRegistered}})
	tests := []struct {
		metric string
		labels []string
		want   float64
	}{
		{"grid_node_restarts_total", nil, 2},
		{"grid_events_derived_total", []string{"type", "node_restarted"}, 2},
		{"grid_events_derived_total", []string{"type", "agent_registered"}, 1},
		{"grid_events_derived_total", []string{"type", "node_crashed"}, 0},
	}
	fams, err := m.reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := gridtest.Metrics{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	for _, tc := range tests {
		if v, ok := got.Value(tc.metric, tc.labels...); !ok || v != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.metric, tc.labels, v, ok, tc.want)
		}
	}
}
