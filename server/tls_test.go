package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// tlsCluster is three servers with mutual TLS everywhere, HTTPS clients verified.
func tlsCluster(t *testing.T, pki *gridtest.PKI) (*testCluster, []mtls.Files) {
	t.Helper()
	var files []mtls.Files
	c := newClusterWith(t, 3, func(cfg *Config) {
		f := pki.RoleFiles(t, cfg.NodeName, mtls.RoleServer)
		src, err := mtls.LoadRole(f, mtls.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, cfg.VerifyHTTPSClient = src, true
		files = append(files, f)
	})
	return c, files
}

// httpsClient is an API client of s with the CA file and client certificate given.
func httpsClient(t testing.TB, s *Server, caFile string, client mtls.Files) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "https://" + s.HTTPAddr(),
		TLS: api.TLSConfig{CACert: caFile, ClientCert: client.CertFile, ClientKey: client.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rpcConn dials s's gRPC endpoint with creds.
func rpcConn(t testing.TB, s *Server, creds grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.RPCAddr(), creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestTLSClusterRefusesWhatItShould(t *testing.T) {
	pki := gridtest.NewPKI(t)
	c, _ := tlsCluster(t, pki)
	leader := c.leader()
	follower := followers(leader, c.servers)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	clientFiles := pki.RoleFiles(t, "client", mtls.RoleClient)
	agentSrc := pki.Source(t, "agent", mtls.RoleAgent)
	clientSrc := pki.Source(t, "client-src", mtls.RoleClient)
	// Raft ran over TLS: the cluster formed. The HTTPS API answers a client
	// certificate, on a follower that forwards to the leader over TLS gRPC too.
	if _, err := httpsClient(t, follower, pki.CAFile, clientFiles).Agents(ctx); err != nil {
		t.Fatalf("HTTPS with a client certificate: %v", err)
	}
	// What a refused request must leave alone: the state and the events (history, in
	// acl_test.go). Not the Raft log's index, which a change of leader moves (its
	// no-op entry, autopilot's configuration) on a loaded machine.
	before := history(t, leader)

	expired := pki.Files(t, "expired", mtls.CertOptions{Role: mtls.RoleClient,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	foreign := gridtest.NewPKI(t)
	agentFiles := pki.RoleFiles(t, "agent-http", mtls.RoleAgent)
	for _, tc := range []struct {
		name   string
		client *api.Client
		want   string
	}{
		{"plaintext HTTP", apiClient(t, follower), "the server speaks HTTPS, not HTTP"},
		{"no client certificate", httpsClient(t, follower, pki.CAFile, mtls.Files{}), "the server requires a client certificate"},
		{"a wrong CA", httpsClient(t, follower, foreign.CAFile, clientFiles), "is not signed by the CA in " + foreign.CAFile},
		{"an expired certificate", httpsClient(t, follower, pki.CAFile, expired), "the server refused the client certificate " + expired.CertFile + ": it has expired"},
		{"a certificate of another CA", httpsClient(t, follower, pki.CAFile, foreign.RoleFiles(t, "client", mtls.RoleClient)), "not signed by the grid's CA"},
		{"an agent's certificate", httpsClient(t, follower, pki.CAFile, agentFiles), "the HTTP API takes client and server certificates only, and this request's certificate is agent.global.grid"},
	} {
		t.Run("HTTP/"+tc.name, func(t *testing.T) {
			_, err := tc.client.SpawnNode(ctx, &api.SpawnRequest{Agent: "nobody", Port: 9000})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}

	cmd, err := fsm.Encode(&fsm.RegisterAgent{Name: "intruder", Address: deadAgentAddr, MaxNodes: 4})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(conn *grpc.ClientConn) error {
		return conn.Invoke(ctx, gridpb.Internal_Apply_FullMethodName, &gridpb.ApplyRequest{Command: cmd}, new(gridpb.ApplyResponse))
	}
	t.Run("gRPC/plaintext", func(t *testing.T) {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		defer ccancel()
		conn := rpcConn(t, leader, grpc.WithTransportCredentials(insecure.NewCredentials()))
		err := conn.Invoke(cctx, gridpb.Internal_Apply_FullMethodName, &gridpb.ApplyRequest{Command: cmd}, new(gridpb.ApplyResponse))
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Errorf("plaintext Apply: %v", err)
		}
	})
	for _, s := range []*Server{leader, follower} {
		t.Run("gRPC/agent certificate on Internal.Apply via "+s.Name(), func(t *testing.T) {
			err := apply(rpcConn(t, s, grpc.WithTransportCredentials(credentials.NewTLS(agentSrc.ClientConfig(mtls.RoleServer)))))
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is agent.global.grid") {
				t.Errorf("got %v", err)
			}
		})
	}
	t.Run("gRPC/client certificate on Servers.Register", func(t *testing.T) {
		conn := rpcConn(t, follower, grpc.WithTransportCredentials(credentials.NewTLS(clientSrc.ClientConfig(mtls.RoleServer))))
		_, err := gridpb.NewServersClient(conn).Register(ctx, &gridpb.RegisterRequest{Name: "intruder", Address: deadAgentAddr})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by an agent or a server only") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("gRPC/an agent's own calls pass", func(t *testing.T) {
		conn := rpcConn(t, follower, grpc.WithTransportCredentials(credentials.NewTLS(agentSrc.ClientConfig(mtls.RoleServer))))
		_, err := gridpb.NewServersClient(conn).Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "unknown-agent"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("heartbeat of an unknown agent: %v, want NotFound", err)
		}
	})
	if after := history(t, leader); after != before {
		t.Errorf("refused requests changed the state or the events: %v -> %v", before, after)
	}
	if a, _ := leader.State().Agent("intruder"); a != nil {
		t.Error("an intruder was registered")
	}
	// Legitimate writes still go through a follower.
	register(t, follower, "agent-001")
	waitAgent(t, c.servers, "agent-001", true)
}

func TestTLSReloadKeepsTheClusterGoing(t *testing.T) {
	pki := gridtest.NewPKI(t)
	c, files := tlsCluster(t, pki)
	leader := c.leader()
	clientFiles := pki.RoleFiles(t, "client", mtls.RoleClient)
	served := func(s *Server) string {
		t.Helper()
		conf, err := mtls.APIClientConfig("127.0.0.1", pki.CAFile, clientFiles.CertFile, clientFiles.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", s.HTTPAddr(), conf)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
	}
	for i, s := range c.servers {
		old := served(s)
		// Replace the files as an operator would, then reload (SIGHUP).
		next := pki.Files(t, s.Name()+"-next", mtls.CertOptions{Role: mtls.RoleServer, Server: s.Name()})
		copyFile(t, next.CertFile, files[i].CertFile)
		copyFile(t, next.KeyFile, files[i].KeyFile)
		if err := s.ReloadTLS(); err != nil {
			t.Fatal(err)
		}
		if now := served(s); now == old {
			t.Errorf("%s still serves certificate %s", s.Name(), old)
		}
	}
	// Raft, forwarding and the API work on, with the new certificates.
	if l := c.leader(); l != leader {
		t.Logf("leadership moved from %s to %s", leader.Name(), l.Name())
	}
	register(t, followers(c.leader(), c.servers)[0], "agent-after-reload")
	waitAgent(t, c.servers, "agent-after-reload", true)
	if _, err := httpsClient(t, c.servers[2], pki.CAFile, clientFiles).Agents(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A reload of broken files keeps the certificates in use.
	copyBytes(t, []byte("not a key"), files[0].KeyFile)
	if err := c.servers[0].ReloadTLS(); err == nil || !strings.Contains(err.Error(), "still using the previous certificates") {
		t.Errorf("reload of a broken key: %v", err)
	}
	if _, err := httpsClient(t, c.servers[0], pki.CAFile, clientFiles).Agents(context.Background()); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
	// The HTTP API over TLS: refused plaintext says why, as above; and a status
	// error reads like one.
	var se *api.StatusError
	_, err := apiClient(t, c.servers[1]).Agents(context.Background())
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Errorf("plaintext: %v", err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	copyBytes(t, data, to)
}

func copyBytes(t testing.TB, data []byte, to string) {
	t.Helper()
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
