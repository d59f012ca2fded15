//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// tlsPKI is what `grid tls` made in a directory: the CA and a certificate of each
// role, as an operator would make them, and one for each server of serverIPs.
type tlsPKI struct {
	dir                 string
	ca, caKey           string
	agent, node, client mtls.Files
	servers             map[string]mtls.Files // by IP
	// server is the first server's certificate, for a test that calls as a server.
	server mtls.Files
}

// gridIn runs grid in dir and fails the test unless it succeeds.
func gridIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gridBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grid %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTLSPKI(t *testing.T, dir string) *tlsPKI {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	gridIn(t, dir, "tls", "ca", "create")
	p := &tlsPKI{dir: dir, ca: filepath.Join(dir, "grid-ca.pem"), caKey: filepath.Join(dir, "grid-ca-key.pem")}
	p.makeCerts(t, dir)
	return p
}

// makeCerts makes a certificate of each role in dir, signed by p's CA.
func (p *tlsPKI) makeCerts(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for role, f := range map[mtls.Role]*mtls.Files{mtls.RoleAgent: &p.agent, mtls.RoleNode: &p.node, mtls.RoleClient: &p.client} {
		gridIn(t, dir, "tls", "cert", "create", "-"+string(role), "-ca="+p.ca, "-key="+p.caKey)
		cert, key := mtls.CertFileNames(role, "global", "grid")
		*f = mtls.Files{CAFile: p.ca, CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)}
	}
	p.servers = map[string]mtls.Files{}
	for _, ip := range serverIPs {
		name := "server-" + ip
		gridIn(t, dir, "tls", "cert", "create", "-server", "-name="+name, "-ca="+p.ca, "-key="+p.caKey)
		cert, key := mtls.ServerCertFileNames(name, "global", "grid")
		p.servers[ip] = mtls.Files{CAFile: p.ca, CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)}
	}
	p.server = p.servers[serverIPs[0]]
}

// serverTLS is the TLS flags of the server at ip: its own certificate.
func (p *tlsPKI) serverTLS(ip string) []string { return tlsArgs(p.servers[ip]) }

// replaceWith puts next's certificates in the place of p's, as an operator rotating
// certificates would.
func (p *tlsPKI) replaceWith(t *testing.T, next *tlsPKI) {
	t.Helper()
	for ip, f := range p.servers {
		copyOver(t, next.servers[ip], f)
	}
	copyOver(t, next.agent, p.agent)
	copyOver(t, next.node, p.node)
}

func tlsArgs(f mtls.Files) []string {
	return []string{"-ca-file=" + f.CAFile, "-cert-file=" + f.CertFile, "-key-file=" + f.KeyFile}
}

func httpsAddress(ip string) string { return "-address=https://" + ip + ":7000" }

// tlsAPI is a Go client of a server's HTTPS API with the client certificate.
func (p *tlsPKI) tlsAPI(t *testing.T, ip string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "https://" + ip + ":7000",
		TLS: api.TLSConfig{CACert: p.ca, ClientCert: p.client.CertFile, ClientKey: p.client.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}

// servedSerial is the serial of the certificate addr presents.
func (p *tlsPKI) servedSerial(addr string) (string, error) {
	conf, err := mtls.APIClientConfig("127.0.0.1", p.ca, p.client.CertFile, p.client.KeyFile)
	if err != nil {
		return "", err
	}
	conf.VerifyConnection = nil // any role: only the serial matters here
	conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, conf)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// rpcAs dials addr with the certificate in f.
func rpcAs(t *testing.T, f mtls.Files, addr string, expect ...mtls.Role) *grpc.ClientConn {
	t.Helper()
	src, err := mtls.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(expect...))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// copyOver replaces the files of dst with those of src, as an operator rotating
// certificates would.
func copyOver(t *testing.T, src, dst mtls.Files) {
	t.Helper()
	for from, to := range map[string]string{src.CertFile: dst.CertFile, src.KeyFile: dst.KeyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitShipped waits until the event store is reachable and holds every event.
func waitShipped(t *testing.T, cl *api.Client, what string) {
	t.Helper()
	cliPoll.WaitFor(t, 30*time.Second, what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if !st.Events.StoreReachable || st.Events.ShippedSeq != st.Events.LastSeq || st.Events.LastSeq == 0 {
			return fmt.Errorf("events %+v", st.Events)
		}
		return nil
	})
}

// history is what refusals must not change: the nodes and the last event.
func history(t *testing.T, c *api.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nodes, err := c.Nodes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s %s pid=%d restarts=%d; ", n.ID, n.Status, n.PID, n.Restarts)
	}
	fmt.Fprintf(&b, "last_seq=%d agents=%d", st.Events.LastSeq, st.Agents.Total)
	return b.String()
}

// TestTLSGrid runs three servers, an agent and an event store with mutual TLS, made
// with `grid tls`: a node spawns; plaintext, a wrong CA, an expired certificate, an
// agent's certificate on the servers' internal service and a client's StopNode
// straight to the agent are refused with clear errors and change nothing; and
// certificates rotated with SIGHUP while the node runs lose nothing.
func TestTLSGrid(t *testing.T) {
	dir := t.TempDir()
	p := newTLSPKI(t, filepath.Join(dir, "pki"))
	t.Cleanup(func() { killProcessesMentioning(dir) })
	// The CLI's TLS, from the environment, as an operator would set it.
	t.Setenv(api.CACertEnv, p.ca)
	t.Setenv(api.ClientCertEnv, p.client.CertFile)
	t.Setenv(api.ClientKeyEnv, p.client.KeyFile)

	store := start(t, "event store", append([]string{"storage", "-bind=127.0.0.31", "-port=50052",
		"-data-dir=" + filepath.Join(dir, "events")}, tlsArgs(p.node)...)...)
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}, extra: []string{
		"-event-store=" + eventStoreAddr, "-verify-https-client",
		"-heartbeat-interval=300ms", "-agent-degraded-after=3s", "-agent-offline-after=6s",
	}, own: p.serverTLS}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	agentDir := filepath.Join(dir, "agent-001")
	agent := start(t, "agent-001", append([]string{"agent", "-bind=" + agentIP, "-name=agent-001",
		"-data-dir=" + agentDir, "-join=127.0.0.11", "-retry-interval=200ms", "-log-level=debug",
		"-node-cert-file=" + p.node.CertFile, "-node-key-file=" + p.node.KeyFile}, tlsArgs(p.agent)...)...)

	// The grid forms over TLS: Raft, gossip-found gRPC, the agent's registration.
	cl := p.tlsAPI(t, "127.0.0.12")
	cliPoll.WaitFor(t, 40*time.Second, "a leader and a healthy agent, over HTTPS", func() error {
		var agents []agentView
		if err := gridJSON(&agents, "agent", "status", httpsAddress("127.0.0.12")); err != nil {
			return err
		}
		if len(agents) != 1 || agents[0].Status != "healthy" {
			return fmt.Errorf("agents %+v", agents)
		}
		return nil
	})

	// A node spawns: the leader orders the agent over TLS, the agent starts the
	// node with the node certificate, checks it over TLS, and the events reach the
	// event store over TLS.
	var n nodeView
	if err := gridJSON(&n, "node", "spawn", httpsAddress("127.0.0.11"), "-agent=agent-001", "-port=50061"); err != nil {
		t.Fatal(err)
	}
	if n.Status != "running" || n.PID <= 0 {
		t.Fatalf("spawned %+v", n)
	}
	if _, err := gridpb.NewStorageClient(rpcAs(t, p.client, n.Endpoint, mtls.RoleNode)).Stats(context.Background(), &gridpb.StatsRequest{}); err != nil {
		t.Errorf("a client on the node: %v", err)
	}
	if err := healthy(n.Endpoint); err == nil {
		t.Error("the node answers plaintext")
	}
	waitShipped(t, cl, "events shipped to the TLS event store")
	before := history(t, cl)

	// Refusals, each with a clear error.
	other := newTLSPKI(t, filepath.Join(dir, "other"))
	expiredCert, expiredKey := expiredClient(t, p)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"plaintext HTTP", nil, []string{"-address=http://127.0.0.12:7000"}, "use an https:// address"},
		{"a wrong CA", []string{api.CACertEnv + "=" + other.ca}, nil, "is not signed by the CA in " + other.ca},
		{"a client certificate of another CA", []string{api.ClientCertEnv + "=" + other.client.CertFile, api.ClientKeyEnv + "=" + other.client.KeyFile}, nil, "it is not signed by the grid's CA"},
		{"an expired certificate", []string{api.ClientCertEnv + "=" + expiredCert, api.ClientKeyEnv + "=" + expiredKey}, nil, "the server refused the client certificate " + expiredCert + ": it has expired"},
		{"no client certificate", []string{api.ClientCertEnv + "=", api.ClientKeyEnv + "="}, nil, "the server requires a client certificate"},
		{"an agent's certificate", []string{api.ClientCertEnv + "=" + p.agent.CertFile, api.ClientKeyEnv + "=" + p.agent.KeyFile}, nil, "the HTTP API takes client and server certificates only, and this request's certificate is agent.global.grid"},
	} {
		args := append([]string{"node", "stop"}, tc.args...)
		if len(tc.args) == 0 {
			args = append(args, httpsAddress("127.0.0.12"))
		}
		cmd := exec.Command(gridBin, append(args, n.ID)...)
		cmd.Env = append(append(os.Environ(), "GRID_ADDR="), tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.HasPrefix(string(out), "Error: ") || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: %v: %s; want an error with %q", tc.name, err, out, tc.want)
		}
	}
	// The servers' internal service takes servers only: an agent's certificate
	// cannot apply a command.
	cmdBytes, err := fsm.Encode(&fsm.StopNode{ID: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = rpcAs(t, p.agent, "127.0.0.12:7001", mtls.RoleServer).Invoke(ctx, gridpb.Internal_Apply_FullMethodName,
		&gridpb.ApplyRequest{Command: cmdBytes}, new(gridpb.ApplyResponse))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is agent.global.grid") {
		t.Errorf("Internal.Apply with an agent's certificate: %v", err)
	}
	// Plaintext gRPC gets no further than the handshake.
	plain, err := grpc.NewClient("127.0.0.12:7001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	err = plain.Invoke(pctx, gridpb.Internal_Apply_FullMethodName, &gridpb.ApplyRequest{Command: cmdBytes}, new(gridpb.ApplyResponse))
	pcancel()
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("plaintext Internal.Apply: %v", err)
	}
	// An agent obeys servers only: a client's StopNode straight to it is refused.
	_, err = gridpb.NewAgentClient(rpcAs(t, p.client, agentIP+":8001", mtls.RoleAgent)).StopNode(ctx, &gridpb.StopNodeRequest{NodeId: n.ID})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is client.global.grid") {
		t.Errorf("StopNode with a client's certificate: %v", err)
	}
	if !alive(n.PID) {
		t.Fatal("a refused request stopped the node")
	}
	if after := history(t, cl); after != before {
		t.Errorf("refused requests changed the state or the history:\n before %s\n after  %s", before, after)
	}

	// Rotate every certificate, same CA, and SIGHUP every process while the node
	// runs: nothing restarts, nothing is lost, and new connections use the new
	// certificates.
	oldServer, err := p.servedSerial("127.0.0.11:7000")
	if err != nil {
		t.Fatal(err)
	}
	oldNode, err := p.servedSerial(n.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	next := &tlsPKI{dir: filepath.Join(dir, "pki-next"), ca: p.ca, caKey: p.caKey}
	next.makeCerts(t, next.dir)
	p.replaceWith(t, next)
	procs := []*proc{store, agent}
	for _, ip := range serverIPs {
		procs = append(procs, c.procs[ip])
	}
	for _, pr := range procs {
		if err := pr.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	for _, pr := range procs {
		cliPoll.WaitFor(t, 10*time.Second, pr.name+" reloads its certificates", func() error {
			if !strings.Contains(pr.out.String(), "TLS certificates reloaded") {
				return fmt.Errorf("not in its log yet")
			}
			return nil
		})
	}
	cliPoll.WaitFor(t, 10*time.Second, "the node to serve its new certificate", func() error {
		s, err := p.servedSerial(n.Endpoint)
		if err != nil {
			return err
		}
		if s == oldNode {
			return fmt.Errorf("still %s", s)
		}
		return nil
	})
	if s, err := p.servedSerial("127.0.0.11:7000"); err != nil || s == oldServer {
		t.Errorf("server 127.0.0.11 serves %s (%v), the old one was %s", s, err, oldServer)
	}
	for _, pr := range procs {
		select {
		case <-pr.done:
			t.Fatalf("%s exited on SIGHUP", pr.name)
		default:
		}
	}
	if !alive(n.PID) {
		t.Fatal("the node's process is gone after the reload")
	}
	if after := history(t, cl); after != before {
		t.Errorf("the reload changed the state or the history:\n before %s\n after  %s", before, after)
	}
	// The grid goes on with the new certificates: another node spawns and stops,
	// and every event reaches the store.
	var m nodeView
	if err := gridJSON(&m, "node", "spawn", httpsAddress("127.0.0.13"), "-agent=agent-001", "-port=50062"); err != nil {
		t.Fatal(err)
	}
	if m.Status != "running" {
		t.Fatalf("spawned after the reload: %+v", m)
	}
	if _, stderr, code := grid("node", "stop", httpsAddress("127.0.0.11"), m.ID); code != 0 {
		t.Fatalf("stop after the reload: %s", stderr)
	}
	waitShipped(t, cl, "every event shipped after the reload")
	if got := history(t, cl); !strings.Contains(got, fmt.Sprintf("%s running pid=%d restarts=0;", n.ID, n.PID)) {
		t.Errorf("the first node after the reload: %s", got)
	}
}

// expiredClient makes a client certificate, signed by p's CA, that expired an hour
// ago: `grid tls` makes none.
func expiredClient(t *testing.T, p *tlsPKI) (cert, key string) {
	t.Helper()
	caCert, err := os.ReadFile(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := mtls.CreateCert(caCert, caKey, mtls.CertOptions{Role: mtls.RoleClient,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(p.dir, "expired-client.pem"), filepath.Join(p.dir, "expired-client-key.pem")
	for path, data := range map[string][]byte{cert: c, key: k} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}
