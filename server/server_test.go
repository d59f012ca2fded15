package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

func TestBootstrapExpectThree(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	want := []string{c.servers[0].ID(), c.servers[1].ID(), c.servers[2].ID()}
	sort.Strings(want)
	for _, s := range c.servers {
		gridtest.WaitFor(t, 5*time.Second, "three voters on "+s.Name(), func() error {
			got := voters(t, s)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return errors.New("voters " + strings.Join(got, ","))
			}
			return nil
		})
	}
	// The HTTP API agrees, on a follower too.
	cfg, err := apiClient(t, followers(leader, c.servers)[0]).RaftConfiguration(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, srv := range cfg.Servers {
		if !srv.Voter || srv.Node == "" || srv.RaftProtocol != "3" {
			t.Errorf("server %+v: want a named voter speaking protocol 3", srv)
		}
		if srv.State == "leader" {
			leaders++
			if srv.ID != leader.ID() {
				t.Errorf("API reports leader %s, raft says %s", srv.ID, leader.ID())
			}
		}
	}
	if len(cfg.Servers) != 3 || leaders != 1 {
		t.Errorf("configuration %+v: want 3 servers and 1 leader", cfg.Servers)
	}
	// Servers come sorted by name, whatever order Raft keeps them in, with the last
	// index of the answering server's log: the bootstrap configuration's at least.
	if !sort.SliceIsSorted(cfg.Servers, func(i, j int) bool { return cfg.Servers[i].Node < cfg.Servers[j].Node }) {
		t.Errorf("servers not sorted by name: %+v", cfg.Servers)
	}
	if cfg.Index < 1 {
		t.Errorf("configuration index %d, want the last log index, 1 or more", cfg.Index)
	}
}

func TestSingleServerBootstrap(t *testing.T) {
	s := startServer(t, testConfig(t, "solo", t.TempDir(), 1))
	c := &testCluster{t: t, servers: []*Server{s}}
	c.leader()
	register(t, s, "agent-001")
	waitAgent(t, c.servers, "agent-001", true)
}

func TestFailoverAfterLeaderStops(t *testing.T) {
	c := newCluster(t, 3)
	old := c.leader()
	register(t, old, "before")
	if err := old.stop(false); err != nil {
		t.Logf("abrupt stop: %v", err)
	}
	rest := followers(old, c.servers)
	leader := c.leader(rest...)
	if leader == old {
		t.Fatal("stopped server still leads")
	}
	// The new leader has all committed state and takes writes, from either server.
	waitAgent(t, rest, "before", true)
	for _, s := range rest {
		register(t, s, "after-"+s.Name())
	}
	waitAgent(t, rest, "after-"+rest[0].Name(), true)
	waitAgent(t, rest, "after-"+rest[1].Name(), true)
}

func TestRestartKeepsStateAndDoesNotBootstrapAgain(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	register(t, leader, "a1")
	waitAgent(t, c.servers, "a1", true)

	// Stop a follower, write while it is down, then restart it on the same ports and
	// data dir: it must come back as the same voter and catch up.
	i := 0
	for c.servers[i] == leader {
		i++
	}
	old := c.servers[i]
	cfg := *old.config
	cfg.HTTPPort, cfg.RPCPort, cfg.RaftPort = portOf(old.HTTPAddr()), portOf(old.RPCAddr()), portOf(old.RaftAddr())
	cfg.GossipPort = portOf(old.GossipAddr())
	cfg.Join = []string{leader.GossipAddr()}
	cfg.Logger = gridtest.Logger(t, cfg.NodeName+"-restarted")
	if err := old.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	register(t, leader, "a2")

	restarted := startServer(t, &cfg)
	if !restarted.hadState {
		t.Fatal("restarted server found no raft state")
	}
	if restarted.ID() != old.ID() {
		t.Fatalf("server ID changed across restart: %s -> %s", old.ID(), restarted.ID())
	}
	c.servers[i] = restarted
	c.leader()
	waitAgent(t, c.servers, "a2", true)
	if got := voters(t, restarted); len(got) != 3 {
		t.Fatalf("restarted server sees voters %v, want 3", got)
	}
}

func TestBootstrapExpectMismatchRefuses(t *testing.T) {
	bufA, bufB := &gridtest.SyncBuffer{}, &gridtest.SyncBuffer{}
	cfgA := testConfig(t, "a", t.TempDir(), 2)
	cfgA.Logger = hclog.New(&hclog.LoggerOptions{Output: bufA, Level: hclog.Info})
	a := startServer(t, cfgA)
	cfgB := testConfig(t, "b", t.TempDir(), 3)
	cfgB.Logger = hclog.New(&hclog.LoggerOptions{Output: bufB, Level: hclog.Info})
	cfgB.Join = []string{a.GossipAddr()}
	b := startServer(t, cfgB)

	// Both see each other, both refuse, and so neither bootstraps.
	gridtest.WaitFor(t, 10*time.Second, "both servers to refuse", func() error {
		if !containsAll(bufA.String(), "refusing to bootstrap", "peer_bootstrap_expect=3") {
			return errors.New("a has not refused yet")
		}
		if !containsAll(bufB.String(), "refusing to bootstrap", "peer_bootstrap_expect=2") {
			return errors.New("b has not refused yet")
		}
		return nil
	})
	for _, s := range []*Server{a, b} {
		if got := voters(t, s); len(got) != 0 {
			t.Errorf("%s bootstrapped with %v despite the mismatch", s.Name(), got)
		}
	}
}

func TestFollowerForwardsWrite(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	for _, f := range followers(leader, c.servers) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		idx, err := f.Apply(ctx, &fsm.RegisterAgent{Name: "via-" + f.Name(), Hostname: "h", MaxNodes: 2})
		cancel()
		if err != nil {
			t.Fatalf("write via follower %s: %v", f.Name(), err)
		}
		if idx == 0 {
			t.Fatal("forwarded write returned index 0")
		}
		waitAgent(t, c.servers, "via-"+f.Name(), true)
	}
	// A command the FSM rejects comes back to the follower with its reason.
	f := followers(leader, c.servers)[0]
	_, err := f.Apply(context.Background(), &fsm.DeregisterAgent{Name: "nobody"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("deregister unknown agent via follower: got %v, want NotFound", err)
	}
}

func TestGarbageCommandsAreRejected(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	garbage := [][]byte{
		nil,
		{0xff},
		{byte(fsm.CmdRegisterAgent), 1, 0, 0, 0, 0, 0, 0, 0, 0, '{'},
		{byte(fsm.CmdRegisterAgent), 99, 0, 0, 0, 0, 0, 0, 0, 0, '{', '}'},
		{200, 1, 0, 0, 0, 0, 0, 0, 0, 0, '{', '}'},
		append([]byte{byte(fsm.CmdRegisterAgent), 1, 0, 0, 0, 0, 0, 0, 0, 0}, `{"name":"bad name!"}`...),
	}
	for _, g := range garbage {
		// Straight into the log: every server applies it and must survive.
		f := leader.raft.Apply(g, 5*time.Second)
		if err := f.Error(); err != nil {
			t.Fatalf("raft apply: %v", err)
		}
		if err, ok := f.Response().(error); !ok || !errors.Is(err, fsm.ErrInvalidCommand) {
			t.Errorf("apply %q: response %v, want ErrInvalidCommand", g, f.Response())
		}
		// Through a follower's RPC endpoint, which forwards it to the leader:
		// InvalidArgument. Forwarded once already, a follower does not forward it
		// again: Aborted (not the leader).
		conn, err := leader.conns.Get(followers(leader, c.servers)[0].RPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, err = gridpb.NewInternalClient(conn).Apply(context.Background(), &gridpb.ApplyRequest{Command: g})
		if code := status.Code(err); code != codes.InvalidArgument {
			t.Errorf("follower endpoint: got %v, want InvalidArgument from the leader", err)
		}
		fwd := metadata.AppendToOutgoingContext(context.Background(), forwardedKey, "1")
		_, err = gridpb.NewInternalClient(conn).Apply(fwd, &gridpb.ApplyRequest{Command: g})
		if code := status.Code(err); code != codes.Aborted {
			t.Errorf("follower endpoint, forwarded call: got %v, want Aborted (not the leader)", err)
		}
		_, err = leader.Apply(context.Background(), rawCommand(g))
		if code := status.Code(err); code != codes.InvalidArgument && !errors.Is(err, fsm.ErrInvalidCommand) {
			t.Errorf("leader Apply of %q: got %v, want InvalidArgument", g, err)
		}
	}
	// The cluster is still whole and still takes writes.
	for _, s := range c.servers {
		if s.raft.State() == raft.Shutdown {
			t.Fatalf("%s shut down", s.Name())
		}
	}
	register(t, followers(leader, c.servers)[1], "still-works")
	waitAgent(t, c.servers, "still-works", true)
}

// rawCommand smuggles pre-encoded bytes through the Command interface for the garbage
// test; its Validate lets everything through so that the FSM is what rejects it.
type rawCommand []byte

func (rawCommand) Type() fsm.CommandType { return 0 }
func (rawCommand) Validate() error       { return nil }

func TestSnapshotSaveAndRestore(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	register(t, leader, "keep-1")
	register(t, leader, "keep-2")
	waitAgent(t, c.servers, "keep-2", true)

	// Save through a follower: it forwards to the leader.
	cl := apiClient(t, followers(leader, c.servers)[0])
	ctx := context.Background()
	rc, err := cl.SnapshotSave(ctx)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	register(t, leader, "later")
	if _, err := leader.Apply(ctx, &fsm.DeregisterAgent{Name: "keep-1"}); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, c.servers, "later", true)

	// A corrupt archive is refused and changes nothing.
	bad := bytes.Replace(archive, []byte("keep-1"), []byte("keep-X"), 1)
	if bytes.Equal(bad, archive) {
		t.Fatal("archive does not hold agent keep-1")
	}
	err = cl.SnapshotRestore(ctx, bytes.NewReader(bad))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Fatalf("restore of corrupt archive: got %v, want HTTP 400", err)
	}
	waitAgent(t, c.servers, "later", true)

	if err := cl.SnapshotRestore(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	waitAgent(t, c.servers, "keep-1", true)
	waitAgent(t, c.servers, "keep-2", true)
	waitAgent(t, c.servers, "later", false)
	// And the cluster goes on taking writes after the restore.
	register(t, leader, "after-restore")
	waitAgent(t, c.servers, "after-restore", true)
}

func TestRemovePeerThroughFollower(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	fs := followers(leader, c.servers)
	victim := fs[1]
	_ = victim.stop(false)
	cl := apiClient(t, fs[0])
	ctx := context.Background()
	if err := cl.RaftRemovePeerByID(ctx, "no-such-id"); !api.IsNotFound(err) {
		t.Fatalf("remove unknown peer: got %v, want 404", err)
	}
	if err := cl.RaftRemovePeerByAddress(ctx, victim.RaftAddr()); err != nil {
		t.Fatalf("remove peer: %v", err)
	}
	gridtest.WaitFor(t, 5*time.Second, "two voters", func() error {
		if got := voters(t, fs[0]); len(got) != 2 {
			return errors.New("voters: " + strings.Join(got, ","))
		}
		return nil
	})
}

func TestMembersAndStatusEndpoints(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	cl := apiClient(t, c.servers[2])
	ctx := context.Background()
	gridtest.WaitFor(t, 5*time.Second, "three alive members", func() error {
		ms, err := cl.Members(ctx)
		if err != nil {
			return err
		}
		alive, leaders := 0, 0
		for _, m := range ms {
			if m.Status == StatusAlive && m.Role == RoleServer {
				alive++
			}
			if m.Leader {
				leaders++
				if m.Name != leader.Name() {
					return errors.New("wrong leader " + m.Name)
				}
			}
		}
		if alive != 3 || leaders != 1 {
			return errors.New("want 3 alive servers, 1 leader")
		}
		return nil
	})
	addr, err := cl.Leader(ctx)
	if err != nil || addr != leader.RaftAddr() {
		t.Fatalf("leader: %q, %v; want %s", addr, err, leader.RaftAddr())
	}
	peers, err := cl.Peers(ctx)
	if err != nil || len(peers) != 3 {
		t.Fatalf("peers: %v, %v", peers, err)
	}
	// A graceful leave shows as left.
	_ = c.servers[0].Shutdown()
	gridtest.WaitFor(t, 10*time.Second, "s1 to show as left", func() error {
		ms, err := cl.Members(ctx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == "s1" && m.Status == StatusLeft {
				return nil
			}
		}
		return errors.New("s1 not left")
	})
}
