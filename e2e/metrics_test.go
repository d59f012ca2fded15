//go:build linux

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
)

// The metrics test's addresses, apart from the other tests' grids.
const (
	metricsServerIP = "127.0.0.61"
	metricsStoreIP  = "127.0.0.62"
	metricsAgentIP  = "127.0.0.63"
)

// TestMetricsScrapeEveryProcess runs a server, an event store and an agent as real
// processes and scrapes each as Prometheus would: the server's /v1/metrics, the
// agent's -http-port and the store's -metrics-port all parse with the Prometheus text
// parser, and show the agent registered, its heartbeats and the events stored.
func TestMetricsScrapeEveryProcess(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	start(t, "event store", "storage", "-bind="+metricsStoreIP, "-port=50052", "-metrics-port=9102",
		"-data-dir="+filepath.Join(dir, "events"))
	start(t, "server", "server", "-bind="+metricsServerIP, "-name=metrics-server", "-data-dir="+filepath.Join(dir, "server"),
		"-bootstrap-expect=1", "-event-store="+metricsStoreIP+":50052", "-heartbeat-interval=300ms")
	start(t, "agent", "agent", "-bind="+metricsAgentIP, "-name=metrics-agent", "-data-dir="+filepath.Join(dir, "agent"),
		"-join="+metricsServerIP, "-retry-interval=200ms")

	scrape := func(url string) (gridtest.Metrics, error) { return gridtest.Scrape(nil, url+"?format=prometheus") }
	server := "http://" + metricsServerIP + ":7000/v1/metrics"
	agent := "http://" + metricsAgentIP + ":8000/v1/metrics"
	store := "http://" + metricsStoreIP + ":9102/v1/metrics"
	tests := []struct {
		process, url string
		// want: a metric, its labels, and the least value it must reach.
		metric string
		labels []string
		least  float64
	}{
		{"server", server, "grid_server_leader", nil, 1},
		{"server", server, "grid_agents", []string{"status", "healthy"}, 1},
		{"server", server, "grid_agent_heartbeats_received_total", nil, 1},
		{"server", server, "grid_events_shipped_total", nil, 1},
		{"server", server, "grid_shipper_store_write_duration_seconds", nil, 1},
		{"server", server, "raft_apply", nil, 1},
		{"agent", agent, "grid_agent_registered", nil, 1},
		{"agent", agent, "grid_agent_heartbeats_sent_total", nil, 1},
		{"store", store, "grid_storage_write_duration_seconds", nil, 1},
		{"store", store, "grid_storage_records_written_total", []string{"kind", "concept", "result", "created"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.process+"/"+tc.metric, func(t *testing.T) {
			cliPoll.WaitFor(t, 60*time.Second, tc.metric, func() error {
				m, err := scrape(tc.url)
				if err != nil {
					return err
				}
				v, ok := m.Value(tc.metric, tc.labels...)
				if !ok || v < tc.least {
					return fmt.Errorf("%s%v = %v (present %v), want at least %v", tc.metric, tc.labels, v, ok, tc.least)
				}
				return nil
			})
		})
	}

	// The gossip libraries' metrics reach the server's registry through go-metrics.
	m, err := scrape(server)
	if err != nil {
		t.Fatal(err)
	}
	var gossip []string
	for name := range m {
		if strings.HasPrefix(name, "memberlist_") || strings.HasPrefix(name, "serf_") {
			gossip = append(gossip, name)
		}
	}
	if len(gossip) == 0 {
		t.Errorf("no memberlist_ or serf_ metric on the server")
	}
	for _, url := range []string{"http://" + metricsAgentIP + ":8000/v1/health", "http://" + metricsStoreIP + ":9102/v1/health"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", url, resp.Status)
		}
	}
}
