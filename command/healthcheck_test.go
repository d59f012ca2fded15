package command

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
)

func TestHealthcheckServer(t *testing.T) {
	const cmd = "healthcheck"
	runAPICases(t, cmd, []apiCase{
		{
			name:   "a leader",
			routes: map[string]http.HandlerFunc{"GET /v1/status/leader": rawReply(`"10.0.0.5:7002"`)},
			args:   []string{"ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStdout(), noStderr(), requestsAre(f, "GET /v1/status/leader")}
			},
		},
		{
			name:   "-address",
			routes: map[string]http.HandlerFunc{"GET /v1/status/leader": rawReply(`"10.0.0.5:7002"`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), noStderr()} },
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"GET /v1/status/leader": rawReply(`""`)},
			args:   []string{"ADDR"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("is unhealthy: the server knows no leader")} },
		},
		{
			name: "server down",
			args: []string{"http://127.0.0.1:1"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("is unhealthy:", "connection refused")}
			},
		},
		{
			name:   "not a URL",
			args:   []string{"10.0.0.5:7000"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "is not a URL")} },
		},
		{
			name:   "unknown scheme",
			args:   []string{"tcp://10.0.0.5:7000"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "the scheme must be http, https or grpc")} },
		},
		{
			name:   "two addresses",
			args:   []string{"ADDR", "ADDR"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "unexpected argument")} },
		},
	})
}

// TestHealthcheckEnv: the container sets GRID_HEALTHCHECK, and the image's one
// HEALTHCHECK runs grid healthcheck without arguments.
func TestHealthcheckEnv(t *testing.T) {
	isolateEnv(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/status/leader": rawReply(`"10.0.0.5:7002"`)})
	t.Setenv(HealthcheckEnv, f.URL)
	r := runCommand(t, "healthcheck")
	exitCode(0)(t, r)
	requestsAre(f, "GET /v1/status/leader")(t, r)
}

func TestHealthcheckGRPC(t *testing.T) {
	isolateEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	addr := "grpc://" + ln.Addr().String()

	r := runCommand(t, "healthcheck", addr)
	exitCode(0)(t, r)
	noStderr()(t, r)

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	r = runCommand(t, "healthcheck", addr)
	failsWith("is unhealthy: gRPC health status NOT_SERVING")(t, r)

	srv.Stop()
	r = runCommand(t, "healthcheck", "-timeout=2s", addr)
	exitCode(1)(t, r)
	if !strings.Contains(r.stderr, "is unhealthy") {
		t.Errorf("stderr %q, want it to say unhealthy", r.stderr)
	}
}

// TestHealthcheckHidden: the probe is for containers, not in the command list.
func TestHealthcheckHidden(t *testing.T) {
	isolateEnv(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"-help"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("grid -help: exit code %d", code)
	}
	if strings.Contains(stdout.String(), "healthcheck") {
		t.Errorf("grid -help lists healthcheck:\n%s", stdout.String())
	}
}

// TestHealthcheckGRPCTLS: a storage node or an agent with mutual TLS answers the
// probe that brings a certificate of the grid (the client's, from the CLI's
// variables); a probe without them (plaintext) fails.
func TestHealthcheckGRPCTLS(t *testing.T) {
	isolateEnv(t)
	pki := gridtest.NewPKI(t)
	node := pki.Source(t, "node", mtls.RoleNode)
	client := pki.RoleFiles(t, "client", mtls.RoleClient)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// As storage nodes and agents serve it: any role may call the health check.
	srv := grpc.NewServer(node.GRPCServerOptions(func(string) []mtls.Role { return nil })...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	addr := "grpc://" + ln.Addr().String()

	t.Setenv(api.CACertEnv, client.CAFile)
	t.Setenv(api.ClientCertEnv, client.CertFile)
	t.Setenv(api.ClientKeyEnv, client.KeyFile)
	r := runCommand(t, "healthcheck", addr)
	exitCode(0)(t, r)
	noStderr()(t, r)

	isolateEnv(t)
	r = runCommand(t, "healthcheck", "-timeout=2s", addr)
	exitCode(1)(t, r)
	if !strings.Contains(r.stderr, "is unhealthy") {
		t.Errorf("without a certificate: stderr %q, want it to say unhealthy", r.stderr)
	}
}
