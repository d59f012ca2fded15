package storage

import (
	"context"
	"net/http"
	"testing"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestNodeServesMetrics writes to a node and scrapes its metrics listener: the write
// histogram and the records counters follow the writes, and the RPCs are timed.
func TestNodeServesMetrics(t *testing.T) {
	client, srv := startTestServer(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
	base := "http://" + srv.MetricsAddr().String()
	cs, as := eventBatch(0, 3, 1)
	ctx := context.Background()
	// The same batch twice: the second time every record already exists.
	for range 2 {
		if _, err := client.LearnBatch(ctx, toProtoBatch(cs, as)); err != nil {
			t.Fatal(err)
		}
	}
	m := gridtest.MustScrape(t, nil, base+"/v1/metrics?format=prometheus")
	tests := []struct {
		metric string
		labels []string
		typ    string
		want   float64
	}{
		{"grid_storage_write_duration_seconds", nil, "histogram", 2},
		{"grid_storage_records_written_total", []string{"kind", "concept", "result", "created"}, "counter", float64(len(cs))},
		{"grid_storage_records_written_total", []string{"kind", "concept", "result", "existing"}, "counter", float64(len(cs))},
		{"grid_storage_records_written_total", []string{"kind", "association", "result", "created"}, "counter", float64(len(as))},
		{"grid_rpc_request_duration_seconds", []string{"method", gridpb.Storage_LearnBatch_FullMethodName, "code", "OK"}, "histogram", 2},
	}
	for _, tc := range tests {
		v, ok := m.Value(tc.metric, tc.labels...)
		switch {
		case !ok:
			t.Errorf("%s%v is missing", tc.metric, tc.labels)
		case m.Type(tc.metric) != tc.typ:
			t.Errorf("%s is a %s, want a %s", tc.metric, m.Type(tc.metric), tc.typ)
		case v != tc.want:
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, v, tc.want)
		}
	}

	resp, err := http.Get(base + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/health: %s", resp.Status)
	}
}

// TestNodeWithoutMetricsAddrServesNoMetrics checks that metrics are off by default.
func TestNodeWithoutMetricsAddrServesNoMetrics(t *testing.T) {
	_, srv := startTestServer(t, nil)
	if addr := srv.MetricsAddr(); addr != nil {
		t.Fatalf("metrics served at %s, want none", addr)
	}
}
