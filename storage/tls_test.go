package storage

import (
	"context"
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

func TestTLSNodeTakesOnlyItsCallers(t *testing.T) {
	pki := gridtest.NewPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialAs := func(srv *Server, role mtls.Role) *grpc.ClientConn {
		t.Helper()
		src := pki.Source(t, "caller-"+string(role), role)
		conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(mtls.RoleNode, mtls.RoleServer))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	learn := func(conn *grpc.ClientConn, id string) error {
		_, err := gridpb.NewStorageClient(conn).LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: id})
		return err
	}

	// An event store: a node certificate, servers only (the default).
	_, store := startTestServer(t, func(c *Config) { c.TLS = pki.Source(t, "store", mtls.RoleNode) })
	if err := learn(dialAs(store, mtls.RoleServer), "from-server"); err != nil {
		t.Fatalf("a server writes to the event store: %v", err)
	}
	for _, r := range []mtls.Role{mtls.RoleAgent, mtls.RoleClient} {
		err := learn(dialAs(store, r), "from-"+string(r))
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is "+string(r)+".global.grid") {
			t.Errorf("%s writing to the event store: %v", r, err)
		}
	}
	// A node's certificate is for serving only: the handshake refuses it.
	if err := learn(dialAs(store, mtls.RoleNode), "from-node"); status.Code(err) != codes.Unavailable {
		t.Errorf("a node writing to the event store: %v", err)
	}
	// Anyone of the grid may ask its health.
	if _, err := healthpb.NewHealthClient(dialAs(store, mtls.RoleAgent)).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check by an agent: %v", err)
	}
	n, err := store.store.Stats()
	if err != nil || n.Concepts != 1 {
		t.Errorf("the store holds %+v (%v), want the server's concept only", n, err)
	}

	// A node an agent runs takes servers, agents and clients.
	_, node := startTestServer(t, func(c *Config) {
		c.TLS = pki.Source(t, "node", mtls.RoleNode)
		c.Callers = []mtls.Role{mtls.RoleServer, mtls.RoleAgent, mtls.RoleClient}
	})
	for _, r := range []mtls.Role{mtls.RoleServer, mtls.RoleAgent, mtls.RoleClient} {
		if err := learn(dialAs(node, r), "from-"+string(r)); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if err := learn(dialAs(node, mtls.RoleNode), "from-node"); err == nil {
		t.Errorf("another node: %v", err)
	}
}
