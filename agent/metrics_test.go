//go:build linux

package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestAgentServesMetricsAndHealth scrapes an agent's HTTP listener while it
// heartbeats, runs a node and restarts it after a crash, and checks that the
// numbers follow.
func TestAgentServesMetricsAndHealth(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startAgent(t, testConfig(t, "agent-metrics", t.TempDir(), srv))
	base := "http://" + a.HTTPAddr()

	resp, err := http.Get(base + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/health: %s", resp.Status)
	}

	c := agentClient(t, a)
	node := startNode(t, c, "n1", gridtest.FreePort(t), fastPolicy(3))
	if err := syscall.Kill(int(node.GetPid()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	url := base + "/v1/metrics?format=prometheus"
	var m gridtest.Metrics
	gridtest.WaitFor(t, waitLong, "heartbeats and the node's restart in the metrics", func() error {
		var err error
		if m, err = gridtest.Scrape(nil, url); err != nil {
			return err
		}
		if v, _ := m.Value("grid_agent_heartbeats_sent_total"); v < 1 {
			return fmt.Errorf("no heartbeat counted yet")
		}
		if v, _ := m.Value("grid_node_restarts_total"); v < 1 {
			return fmt.Errorf("no restart counted yet")
		}
		if v, _ := m.Value("grid_agent_nodes", "state", "running"); v != 1 {
			return fmt.Errorf("%v nodes running, want 1", v)
		}
		return nil
	})

	tests := []struct {
		metric string
		labels []string
		typ    string
		want   float64 // at least
	}{
		{"grid_agent_registered", nil, "gauge", 1},
		{"grid_agent_servers_known", nil, "gauge", 1},
		{"grid_node_restarts_total", nil, "counter", 1},
		{"grid_agent_nodes", []string{"state", "running"}, "gauge", 1},
		{"grid_rpc_request_duration_seconds", []string{"method", gridpb.Agent_StartNode_FullMethodName, "code", "OK"}, "histogram", 1},
		{"grid_http_request_duration_seconds", []string{"route", "GET /v1/health"}, "histogram", 1},
		{"grid_agent_reports_queued", nil, "gauge", 0},
		{"grid_node_oom_kills_total", nil, "counter", 0},
		{"grid_agent_cgroup_version", nil, "gauge", 0},
		{"go_goroutines", nil, "gauge", 1},
	}
	for _, tc := range tests {
		t.Run(tc.metric+strings.Join(tc.labels, ","), func(t *testing.T) {
			v, ok := m.Value(tc.metric, tc.labels...)
			if !ok {
				t.Fatalf("%s%v is missing", tc.metric, tc.labels)
			}
			if typ := m.Type(tc.metric); typ != tc.typ {
				t.Errorf("%s is a %s, want a %s", tc.metric, typ, tc.typ)
			}
			if v < tc.want {
				t.Errorf("%s%v = %v, want at least %v", tc.metric, tc.labels, v, tc.want)
			}
		})
	}
}

// TestAgentHTTPPortOff checks that -http-port=-1 opens no listener.
func TestAgentHTTPPortOff(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cfg := testConfig(t, "agent-nohttp", t.TempDir(), srv)
	cfg.HTTPPort = -1
	if a := startAgent(t, cfg); a.HTTPAddr() != "" {
		t.Fatalf("HTTP listener at %s, want none", a.HTTPAddr())
	}
}

// TestTLSAgentServesMetricsOverHTTPS checks that with TLS the agent's HTTP listener
// is HTTPS with the agent's certificate, which a scraper with the CA alone (no client
// certificate) accepts, and that plain HTTP gets no metrics.
func TestTLSAgentServesMetricsOverHTTPS(t *testing.T) {
	t.Parallel()
	pki := gridtest.NewPKI(t)
	srv := newTestServer(t, pki.Source(t, "server", mtls.RoleServer).GRPCServerOptions(mtls.Only(mtls.RoleAgent, mtls.RoleServer))...)
	cfg := testConfig(t, "agent-metrics-tls", t.TempDir(), srv)
	var err error
	if cfg.TLS, err = mtls.LoadRole(pki.RoleFiles(t, "agent", mtls.RoleAgent), mtls.RoleAgent); err != nil {
		t.Fatal(err)
	}
	nodeFiles := pki.RoleFiles(t, "node", mtls.RoleNode)
	cfg.NodeCertFile, cfg.NodeKeyFile = nodeFiles.CertFile, nodeFiles.KeyFile
	a := startAgent(t, cfg)

	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	scraper := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "agent.global.grid"}}}
	m, err := gridtest.Scrape(scraper, "https://"+a.HTTPAddr()+"/v1/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Value("grid_agent_registered"); !ok {
		t.Error("grid_agent_registered missing over HTTPS")
	}
	if _, err := gridtest.Scrape(nil, "http://"+a.HTTPAddr()+"/v1/metrics?format=prometheus"); err == nil {
		t.Error("plain HTTP served metrics")
	}
}
