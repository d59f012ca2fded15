package dial

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestPoolSharesOneConnectionPerAddress(t *testing.T) {
	_, addr := serveHealth(t)

	p := NewPool(nil)
	defer p.Close()
	a, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Get(addr)
	if a != b {
		t.Fatal("two connections for one address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(a).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health through the pooled connection: %v, %v", resp, err)
	}
}

// serveHealth serves the standard health service on a loopback port.
func serveHealth(t *testing.T) (*grpc.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return srv, ln.Addr().String()
}

func TestStopServerIdleIsGraceful(t *testing.T) {
	srv, _ := serveHealth(t)
	if !StopServer(srv, 10*time.Second) {
		t.Fatal("an idle server was stopped forcibly")
	}
}

func TestStopServerForcesAStuckCall(t *testing.T) {
	srv, addr := serveHealth(t)
	p := NewPool(nil)
	defer p.Close()
	conn, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	// Watch streams until the client hangs up: a call that never ends by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first health update: %v", err)
	}

	start := time.Now()
	if StopServer(srv, 200*time.Millisecond) {
		t.Fatal("stopped gracefully with a stream open")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("forced after %s, before the grace period ended", took)
	}
	if _, err := stream.Recv(); err == nil {
		t.Fatal("the stream survived the stop")
	}
}

func TestPoolLetsGoOfBrokenAndIdleConnections(t *testing.T) {
	_, addr := serveHealth(t)
	// Nothing listens on a port just closed: a connection there cannot connect.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	now := time.Now()
	p := NewPool(nil)
	p.now = func() time.Time { return now }
	defer p.Close()
	live, _ := p.Get(addr)
	broken, _ := p.Get(deadAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(live).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	broken.Connect()
	for broken.GetState() != connectivity.TransientFailure {
		if !broken.WaitForStateChange(ctx, broken.GetState()) {
			t.Fatal("the connection to a closed port never failed")
		}
	}

	// A sweep after BrokenAfter closes the broken connection; the ready one stays.
	now = now.Add(BrokenAfter + sweepEvery)
	again, _ := p.Get(addr)
	if again != live {
		t.Fatal("a ready connection was replaced")
	}
	if broken.GetState() != connectivity.Shutdown || p.Len() != 1 {
		t.Fatalf("broken connection %v, pool holds %d", broken.GetState(), p.Len())
	}
	// Asked for again, it is dialled anew.
	if fresh, _ := p.Get(deadAddr); fresh == broken {
		t.Fatal("the broken connection was handed out again")
	}
}
