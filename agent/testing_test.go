//go:build linux

package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// gridBinary is the real grid binary, built once for the package's tests: nodes run
// as `grid storage`, exactly as in production.
var gridBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grid-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gridBinary = filepath.Join(dir, "grid")
	if err := gridtest.BuildGrid(gridBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeServers is a test double of the servers' side of the contract: it records
// every call, knows the agents that registered, and can be told to forget them or to
// refuse reports for a while.
type fakeServers struct {
	gridpb.UnimplementedServersServer

	mu           sync.Mutex
	known        map[string]bool
	registers    []*gridpb.RegisterRequest
	heartbeats   int
	reports      []*gridpb.NodeReport
	refused      int // reports refused while refuseReport
	unregisters  []string
	refuseReport bool
	leader       string // the leader's name, in every answer
}

func (f *fakeServers) Register(_ context.Context, req *gridpb.RegisterRequest) (*gridpb.RegisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known[req.GetName()] = true
	f.registers = append(f.registers, req)
	return &gridpb.RegisterResponse{HeartbeatIntervalMs: 10_000, Leader: f.leader}, nil
}

func (f *fakeServers) Heartbeat(_ context.Context, req *gridpb.HeartbeatRequest) (*gridpb.HeartbeatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known[req.GetName()] {
		return nil, status.Errorf(codes.NotFound, "agent %s is not registered", req.GetName())
	}
	f.heartbeats++
	return &gridpb.HeartbeatResponse{Leader: f.leader}, nil
}

func (f *fakeServers) ReportNode(_ context.Context, r *gridpb.NodeReport) (*gridpb.ReportNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuseReport {
		f.refused++
		return nil, status.Error(codes.Unavailable, "no leader")
	}
	if !f.known[r.GetAgent()] {
		return nil, status.Errorf(codes.NotFound, "agent %s is not registered", r.GetAgent())
	}
	if r.GetNodeId() == "not-yours" {
		return nil, status.Errorf(codes.PermissionDenied, "node %s belongs to another agent", r.GetNodeId())
	}
	f.reports = append(f.reports, r)
	return &gridpb.ReportNodeResponse{}, nil
}

func (f *fakeServers) Unregister(_ context.Context, req *gridpb.UnregisterRequest) (*gridpb.UnregisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.known, req.GetName())
	f.unregisters = append(f.unregisters, req.GetName())
	return &gridpb.UnregisterResponse{}, nil
}

func (f *fakeServers) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = map[string]bool{}
}

// setLeader has the servers answer that server name leads.
func (f *fakeServers) setLeader(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = name
}

func (f *fakeServers) setRefuse(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuseReport = v
}

func (f *fakeServers) snapshot() (regs []*gridpb.RegisterRequest, heartbeats int, reports []*gridpb.NodeReport, unregs []string, refused int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*gridpb.RegisterRequest(nil), f.registers...), f.heartbeats,
		append([]*gridpb.NodeReport(nil), f.reports...), append([]string(nil), f.unregisters...), f.refused
}

// reportsOf returns the reports about one node, in the order received.
func (f *fakeServers) reportsOf(nodeID string) []*gridpb.NodeReport {
	_, _, all, _, _ := f.snapshot()
	var out []*gridpb.NodeReport
	for _, r := range all {
		if r.GetNodeId() == nodeID {
			out = append(out, r)
		}
	}
	return out
}

// testServer is a fake server: the Servers double on a gRPC port, and a gossip
// member that advertises it with the servers' tags.
type testServer struct {
	*fakeServers
	gossipAddr string
	grpc       *grpc.Server
	gossip     *gossip.Pool
}

var testServerCount atomic.Int64

func newTestServer(t *testing.T, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	return newTestServerWith(t, "", opts...)
}

// newTestServerWith is newTestServer whose gossip is encrypted with key, unless it
// is "", with a keyring in a temporary dir, and whose gRPC server takes opts.
func newTestServerWith(t *testing.T, key string, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	n := testServerCount.Add(1)
	fake := &fakeServers{known: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	gridpb.RegisterServersServer(g, fake)
	go g.Serve(ln)
	t.Cleanup(g.Stop)

	pool, err := gossip.Create(gossip.Config{
		Name:     fmt.Sprintf("server-%d", n),
		BindAddr: "127.0.0.1",
		Tags:     gossip.Tags{Role: gossip.RoleServer, ID: fmt.Sprintf("server-id-%d", n), Version: "test", RPCPort: ln.Addr().(*net.TCPAddr).Port},
		Base:     fastGossip(),
		Logger:   gridtest.Logger(t, "fake-gossip"),

		EncryptKey:  key,
		KeyringFile: filepath.Join(t.TempDir(), "local.keyring"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Shutdown() })
	return &testServer{fakeServers: fake, grpc: g, gossip: pool, gossipAddr: pool.LocalAddr()}
}

// join puts s in other's gossip pool.
func (s *testServer) join(t *testing.T, other *testServer) {
	t.Helper()
	if _, err := s.gossip.Join(other.gossipAddr); err != nil {
		t.Fatal(err)
	}
}

func fastGossip() *memberlist.Config {
	mc := memberlist.DefaultLocalConfig()
	mc.GossipInterval = 20 * time.Millisecond
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 2
	// Push/pull repairs what broadcasts missed: a member that joins while news of
	// another is still being retransmitted may otherwise never hear of it.
	mc.PushPullInterval = time.Second
	return mc
}

// testConfig returns the config of an agent joined to srv, with kernel-chosen ports.
func testConfig(t *testing.T, name, dataDir string, srv *testServer) *Config {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.DataDir = dataDir
	cfg.RPCPort, cfg.GossipPort, cfg.HTTPPort = 0, 0, 0
	cfg.Join = []string{srv.gossipAddr}
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.StorageBinary = gridBinary
	cfg.StartTimeout = 30 * time.Second
	cfg.GossipConfig = fastGossip()
	cfg.Logger = gridtest.Logger(t, name)
	return cfg
}

// startAgent starts an agent and shuts it down when the test ends; the nodes it
// leaves running are killed after that.
func startAgent(t *testing.T, cfg *Config) *Agent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("start agent: %v", err)
	}
	t.Cleanup(func() { killRecordedNodes(t, cfg.DataDir) })
	t.Cleanup(func() { a.Shutdown() })
	return a
}

// killRecordedNodes kills the nodes in an agent's state file, so that no storage
// process outlives the test.
func killRecordedNodes(t *testing.T, dataDir string) {
	st, err := loadState(dataDir)
	if err != nil {
		t.Logf("read agent state: %v", err)
		return
	}
	for _, n := range st.Nodes {
		if checkNodeProcess(n.PID, n.StartTime, n.NodeID) == nil {
			syscall.Kill(n.PID, syscall.SIGKILL)
		}
	}
}

func agentClient(t *testing.T, a *Agent) gridpb.AgentClient {
	t.Helper()
	return gridpb.NewAgentClient(dialAgent(t, a.RPCAddr()))
}

func dialAgent(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// fastPolicy restarts quickly, for tests.
func fastPolicy(attempts int) *gridpb.RestartPolicy {
	return &gridpb.RestartPolicy{Attempts: int32(attempts), IntervalMs: 60_000, DelayMs: 50, MaxDelayMs: 200}
}

// startNode starts a node through the agent's gRPC endpoint.
func startNode(t *testing.T, c gridpb.AgentClient, id string, port int, policy *gridpb.RestartPolicy) *gridpb.StartNodeResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := c.StartNode(ctx, &gridpb.StartNodeRequest{NodeId: id, Port: int32(port), StoragePath: "nodes-data/" + id, MemoryLimitMb: 64, Restart: policy})
	if err != nil {
		t.Fatalf("start node %s: %v", id, err)
	}
	return resp
}

// healthy reports whether a storage node serves its health check at addr.
func healthy(addr string) bool {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

func alive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != 'Z'
}

// events renders reports compactly for comparisons and failure messages.
func events(rs []*gridpb.NodeReport) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.GetEvent().String()
	}
	return out
}
