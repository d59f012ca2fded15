//go:build linux

package agent

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// dialAs dials addr with a certificate of role, expecting a peer of one of expect.
func dialAs(t *testing.T, pki *gridtest.PKI, addr string, role mtls.Role, expect ...mtls.Role) *grpc.ClientConn {
	t.Helper()
	src := pki.Source(t, "caller-"+string(role), role)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(expect...))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// servedSerial returns the serial of the certificate a TLS endpoint presents.
func servedSerial(pki *gridtest.PKI, addr string) (string, error) {
	conf, err := mtls.APIClientConfig("127.0.0.1", pki.CAFile, "", "")
	if err != nil {
		return "", err
	}
	conf.VerifyConnection = nil // any role: the test looks at the serial
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

func TestTLSAgentObeysServersAndHandsNodesTheirCertificate(t *testing.T) {
	pki := gridtest.NewPKI(t)
	srvSrc := pki.Source(t, "server", mtls.RoleServer)
	srv := newTestServer(t, srvSrc.GRPCServerOptions(mtls.Only(mtls.RoleAgent, mtls.RoleServer))...)
	srv.setLeader("caller-server") // dialAs's server certificate
	cfg := tlsConfig(t, pki, "agent-tls", srv)

	// Without a node certificate the agent cannot start TLS nodes: it refuses to run.
	nodeFiles := mtls.Files{CertFile: cfg.NodeCertFile, KeyFile: cfg.NodeKeyFile}
	cfg.NodeCertFile, cfg.NodeKeyFile = "", ""
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "-node-cert-file and -node-key-file") {
		t.Fatalf("an agent with TLS and no node certificate: %v", err)
	}
	cfg.NodeCertFile, cfg.NodeKeyFile = nodeFiles.CertFile, nodeFiles.KeyFile
	a := startRegistered(t, cfg, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	asServer := gridpb.NewAgentClient(dialAs(t, pki, a.RPCAddr(), mtls.RoleServer, mtls.RoleAgent))
	resp := startNode(t, asServer, "n1", gridtest.FreePort(t), fastPolicy(3))
	endpoint := resp.GetEndpoint()

	// The node's files: in its directory, readable by the agent's user only.
	dir := filepath.Join(cfg.DataDir, "nodes-data", "n1", nodeTLSDir)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v", dir, st, err)
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, st, err)
		}
	}
	// The node serves TLS with the node certificate, to clients too; not plaintext.
	if _, err := gridpb.NewStorageClient(dialAs(t, pki, endpoint, mtls.RoleClient, mtls.RoleNode)).Stats(ctx, &gridpb.StatsRequest{}); err != nil {
		t.Errorf("a client's Stats on the node: %v", err)
	}
	if healthy(endpoint) {
		t.Error("the node answers plaintext")
	}

	// Only a server's certificate is obeyed.
	for _, role := range []mtls.Role{mtls.RoleClient, mtls.RoleAgent} {
		c := gridpb.NewAgentClient(dialAs(t, pki, a.RPCAddr(), role, mtls.RoleAgent))
		_, err := c.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: "n1"})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is "+string(role)+".global.grid") {
			t.Errorf("StopNode with a %s certificate: %v", role, err)
		}
		_, err = c.StartNode(ctx, &gridpb.StartNodeRequest{NodeId: "n2", Port: int32(gridtest.FreePort(t))})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("StartNode with a %s certificate: %v", role, err)
		}
	}
	// A health check is anyone's.
	if _, err := healthpb.NewHealthClient(dialAs(t, pki, a.RPCAddr(), mtls.RoleClient, mtls.RoleAgent)).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check: %v", err)
	}
	if !alive(int(resp.GetPid())) {
		t.Fatal("a refused StopNode stopped the node")
	}

	// A reload hands the node its new certificate, without restarting it.
	before, err := servedSerial(pki, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	next := pki.RoleFiles(t, "node-next", mtls.RoleNode)
	for from, to := range map[string]string{next.CertFile: nodeFiles.CertFile, next.KeyFile: nodeFiles.KeyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitFor(t, 10*time.Second, "the node to serve its new certificate", func() error {
		s, err := servedSerial(pki, endpoint)
		if err != nil {
			return err
		}
		if s == before {
			return errString("still the old certificate " + s)
		}
		return nil
	})
	if !alive(int(resp.GetPid())) {
		t.Error("the node's process changed")
	}
	if r := srv.reportsOf("n1"); len(r) != 0 {
		t.Errorf("reports about n1: %v", events(r))
	}
	// The node is still ordered about by a server.
	if _, err := asServer.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: "n1"}); err != nil {
		t.Errorf("StopNode by a server: %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// tlsConfig is the configuration of an agent with TLS, its agent and node
// certificates made by pki, whose servers are srv.
func tlsConfig(t *testing.T, pki *gridtest.PKI, name string, srv *testServer) *Config {
	t.Helper()
	cfg := testConfig(t, name, t.TempDir(), srv)
	var err error
	if cfg.TLS, err = mtls.LoadRole(pki.RoleFiles(t, "agent", mtls.RoleAgent), mtls.RoleAgent); err != nil {
		t.Fatal(err)
	}
	node := pki.RoleFiles(t, "node", mtls.RoleNode)
	cfg.NodeCertFile, cfg.NodeKeyFile = node.CertFile, node.KeyFile
	return cfg
}

// startRegistered starts an agent and waits until it has registered with srv.
func startRegistered(t *testing.T, cfg *Config, srv *testServer) *Agent {
	t.Helper()
	a := startAgent(t, cfg)
	gridtest.WaitUntil(t, waitLong, "registration", func() bool {
		regs, _, _, _, _ := srv.snapshot()
		return len(regs) > 0
	})
	return a
}

// dialServer dials addr with the certificate of server name, or of a server that
// names none when name is "".
func dialServer(t *testing.T, pki *gridtest.PKI, addr, name string) gridpb.AgentClient {
	t.Helper()
	f := pki.Files(t, "server-cert-"+name, mtls.CertOptions{Role: mtls.RoleServer, Server: name})
	src, err := mtls.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(mtls.RoleAgent))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return gridpb.NewAgentClient(conn)
}

// TestTLSAgentObeysTheLeaderOnly: with TLS, StartNode and StopNode are obeyed from the
// certificate of the server the servers answer is the leader, and from no other
// server's; when leadership moves, the new leader is obeyed at once, the old one no
// more.
func TestTLSAgentObeysTheLeaderOnly(t *testing.T) {
	pki := gridtest.NewPKI(t)
	srv := newTestServer(t, pki.Source(t, "s0", mtls.RoleServer).GRPCServerOptions(mtls.Only(mtls.RoleAgent))...)
	srv.setLeader("s1")
	cfg := tlsConfig(t, pki, "agent-leader", srv)
	a := startRegistered(t, cfg, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1, s2, none := dialServer(t, pki, a.RPCAddr(), "s1"), dialServer(t, pki, a.RPCAddr(), "s2"), dialServer(t, pki, a.RPCAddr(), "")

	// obeyed: the call reaches the supervisor, which does not know the node.
	obeyed := func(who string, c gridpb.AgentClient) {
		t.Helper()
		if _, err := c.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: "unknown"}); status.Code(err) != codes.NotFound {
			t.Errorf("StopNode from %s: %v, want NotFound from the supervisor", who, err)
		}
	}
	refused := func(who string, c gridpb.AgentClient, code codes.Code, msg string) {
		t.Helper()
		_, err := c.StopNode(ctx, &gridpb.StopNodeRequest{NodeId: "unknown"})
		if status.Code(err) != code || !strings.Contains(err.Error(), msg) {
			t.Errorf("StopNode from %s: %v, want %v with %q", who, err, code, msg)
		}
		_, err = c.StartNode(ctx, &gridpb.StartNodeRequest{NodeId: "n9", Port: int32(gridtest.FreePort(t)), StoragePath: "nodes-data/n9"})
		if status.Code(err) != code {
			t.Errorf("StartNode from %s: %v, want %v", who, err, code)
		}
	}
	obeyed("the leader", s1)
	refused("a follower", s2, codes.Aborted, `obeyed from the leader only: the caller is server "s2", and the leader is "s1"`)
	refused("a server certificate naming no server", none, codes.PermissionDenied, "names no server")

	// Leadership moves: the agent has not heard yet, asks, and obeys the new leader.
	srv.setLeader("s2")
	obeyed("the new leader", s2)
	refused("the old leader", s1, codes.Aborted, `the caller is server "s1", and the leader is "s2"`)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "nodes-data", "n9")); err == nil {
		t.Error("a refused StartNode made the node's directory")
	}
}
