package gossip

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/internal/gridtest"
)

func TestJoinAddrs(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"10.0.0.1"}, []string{"10.0.0.1:7946"}},
		{[]string{"10.0.0.1:8000"}, []string{"10.0.0.1:8000"}},
		{[]string{"host.example"}, []string{"host.example:7946"}},
		{[]string{"::1"}, []string{"[::1]:7946"}},
		{[]string{"[::1]:8000", "a"}, []string{"[::1]:8000", "a:7946"}},
	} {
		if got := joinAddrs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("joinAddrs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryWait(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		max  time.Duration
		want []time.Duration // after the 1st, 2nd, … failed attempt
	}{
		{"default", DefaultRetryInterval, []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s}},
		{"max not a power of two", 5 * s, []time.Duration{1 * s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"max of a second", s, []time.Duration{s, s, s}},
		{"max under a second", 50 * time.Millisecond, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []time.Duration
			for attempt := 1; attempt <= len(tc.want); attempt++ {
				got = append(got, retryWait(attempt, tc.max))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
	// The doubling stops at the cap, so a join that has failed for days neither
	// overflows nor spins.
	if got := retryWait(1_000_000, DefaultRetryInterval); got != DefaultRetryInterval {
		t.Fatalf("wait after a million attempts %v", got)
	}
}

// fastConfig is memberlist tuned to detect failures within a second on loopback,
// yet slow enough for -race on two busy cores.
func fastConfig() *memberlist.Config {
	mc := memberlist.DefaultLocalConfig()
	mc.GossipInterval = 20 * time.Millisecond
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 2
	// Push/pull repairs what broadcasts missed: a member that joins while news of
	// another is still being retransmitted may otherwise never hear of it.
	mc.PushPullInterval = time.Second
	mc.TCPTimeout = 200 * time.Millisecond
	return mc
}

// testConfig is a member on 127.0.0.1 with a kernel-chosen port and fast gossip.
func testConfig(t *testing.T, name string, tags Tags, join ...string) Config {
	return Config{Name: name, BindAddr: "127.0.0.1", Tags: tags, Base: fastConfig(), Join: join,
		RetryInterval: 20 * time.Millisecond, RetryMax: 3, Logger: gridtest.Logger(t, name)}
}

func create(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// waitFor polls cond every 10ms, for up to 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	gridtest.Poller{Interval: 10 * time.Millisecond}.WaitUntil(t, 20*time.Second, what, cond)
}

func statusOf(p *Pool, name string) string {
	m, _ := p.Members().Get(name)
	return m.Status
}

func TestPoolJoinLeaveAndFail(t *testing.T) {
	s1 := create(t, testConfig(t, "s1", Tags{Role: RoleServer, ID: "id1", RPCPort: 1}))
	if statusOf(s1, "s1") != StatusAlive {
		t.Fatalf("local member not in the table: %+v", s1.Members().List())
	}
	s2 := create(t, testConfig(t, "s2", Tags{Role: RoleServer, ID: "id2"}, s1.LocalAddr()))
	a1 := create(t, testConfig(t, "a1", Tags{Role: RoleAgent}, s1.LocalAddr()))
	fatal := make(chan error, 1)
	for _, p := range []*Pool{s2, a1} {
		p.JoinLoop(context.Background(), fatal)
	}
	waitFor(t, "three alive members", func() bool {
		return statusOf(s1, "s2") == StatusAlive && statusOf(s1, "a1") == StatusAlive && statusOf(a1, "s2") == StatusAlive
	})
	if m, ok := a1.Members().ServerByID("id1"); !ok || m.Tags.RPCPort != 1 || m.HostPort(int(m.Port)) != s1.LocalAddr() {
		t.Fatalf("agent sees server s1 as %+v, %v", m, ok)
	}
	if ip := s1.LocalIP().String(); ip != "127.0.0.1" || !strings.HasPrefix(s1.LocalAddr(), ip+":") {
		t.Fatalf("local IP %s, address %s", ip, s1.LocalAddr())
	}

	// A graceful leave shows as left, a crash as failed.
	if err := s2.Leave(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = s2.Shutdown()
	_ = a1.Shutdown()
	waitFor(t, "s2 left and a1 failed", func() bool {
		return statusOf(s1, "s2") == StatusLeft && statusOf(s1, "a1") == StatusFailed
	})
	select {
	case err := <-fatal:
		t.Fatalf("fatal after a join: %v", err)
	default:
	}
}

// TestReap: failed and left members are forgotten once their timeout passes.
func TestReap(t *testing.T) {
	cfg := testConfig(t, "s1", Tags{Role: RoleServer, ID: "id1"})
	cfg.ReapInterval = 100 * time.Millisecond
	cfg.ReconnectTimeout = 500 * time.Millisecond
	cfg.TombstoneTimeout = 500 * time.Millisecond
	s1 := create(t, cfg)
	left := create(t, testConfig(t, "left", Tags{Role: RoleServer, ID: "id2"}))
	failed := create(t, testConfig(t, "failed", Tags{Role: RoleAgent}))
	for _, p := range []*Pool{left, failed} {
		if _, err := p.Join(s1.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both alive", func() bool {
		return statusOf(s1, "left") == StatusAlive && statusOf(s1, "failed") == StatusAlive
	})

	// Record each status the two go through on their way out.
	var mu sync.Mutex
	seen := map[string]bool{}
	changed := s1.Members().Subscribe(nil)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for {
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
			mu.Lock()
			for _, name := range []string{"left", "failed"} {
				seen[name+" "+statusOf(s1, name)] = true
			}
			mu.Unlock()
		}
	}()
	if err := left.Leave(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = left.Shutdown()
	_ = failed.Shutdown()
	waitFor(t, "both reaped", func() bool {
		_, leftKnown := s1.Members().Get("left")
		_, failedKnown := s1.Members().Get("failed")
		return !leftKnown && !failedKnown
	})
	mu.Lock()
	defer mu.Unlock()
	if !seen["left left"] || !seen["failed failed"] {
		t.Errorf("statuses seen before the reap: %v", seen)
	}
	if _, ok := s1.Members().ServerByID("id2"); ok {
		t.Error("a reaped server is still found by ID")
	}
	if len(s1.Members().List()) != 1 {
		t.Errorf("members after the reap: %+v", s1.Members().List())
	}
}

// TestSnapshotRejoin: a member restarted with its snapshot rejoins the members it
// knew without being told where, unless it left and does not rejoin after a leave.
func TestSnapshotRejoin(t *testing.T) {
	for _, tc := range []struct {
		name             string
		leave            bool
		rejoinAfterLeave bool
		rejoins          bool
	}{
		{"after a crash", false, false, true},
		{"after a leave", true, false, false},
		{"after a leave, rejoining after leave", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s1 := create(t, testConfig(t, "s1", Tags{Role: RoleServer, ID: "id1"}))
			cfg := testConfig(t, "s2", Tags{Role: RoleServer, ID: "id2"})
			cfg.SnapshotPath = filepath.Join(t.TempDir(), "serf", "local.snapshot")
			cfg.RejoinAfterLeave = tc.rejoinAfterLeave
			s2, err := Create(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.Join(s1.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "s2 alive", func() bool { return statusOf(s1, "s2") == StatusAlive })
			if tc.leave {
				// serf's snapshotter records events on a goroutine of its own and
				// stops recording once a leave starts; nothing shows when it has
				// recorded s1, so give it a moment, as a member that ran for a while
				// has had.
				time.Sleep(500 * time.Millisecond)
				if err := s2.Leave(10 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			_ = s2.Shutdown()
			waitFor(t, "s2 gone", func() bool { return statusOf(s1, "s2") != StatusAlive })

			// Same snapshot and port (a restarted member keeps its address: memberlist
			// refuses a new address for a failed member's name), nothing to join.
			_, port, _ := net.SplitHostPort(s2.LocalAddr())
			cfg.Port, _ = strconv.Atoi(port)
			again := create(t, cfg)
			if !tc.rejoins {
				// Give a rejoin, if one were coming, the time it would take.
				time.Sleep(time.Second)
				if st := statusOf(again, "s1"); st != "" {
					t.Fatalf("s2 rejoined after a leave: it sees s1 %s", st)
				}
				return
			}
			waitFor(t, "s2 rejoined", func() bool {
				return statusOf(s1, "s2") == StatusAlive && statusOf(again, "s1") == StatusAlive
			})
		})
	}
}

func TestJoinLoopGivesUp(t *testing.T) {
	// An address nobody listens on: a port the kernel gave out, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name  string
		max   int
		fatal bool
	}{
		{"gives up after RetryMax", 2, true},
		{"retries until ctx ends", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "lonely", Tags{}, addr)
			cfg.RetryInterval, cfg.RetryMax = 10*time.Millisecond, tc.max
			p := create(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			fatal := make(chan error, 1)
			p.JoinLoop(ctx, fatal) // returns when it gives up or ctx ends
			select {
			case err := <-fatal:
				if !tc.fatal {
					t.Fatalf("unexpected fatal error: %v", err)
				}
				if want := "after " + strconv.Itoa(tc.max) + " attempts"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), addr) {
					t.Fatalf("error %q does not say %q and %s", err, want, addr)
				}
			default:
				if tc.fatal {
					t.Fatal("no fatal error after RetryMax attempts")
				}
				if ctx.Err() == nil {
					t.Fatal("JoinLoop returned before ctx ended")
				}
			}
		})
	}
}

func TestCreateDefaults(t *testing.T) {
	if _, err := Create(Config{}); err == nil {
		t.Fatal("Create without a name succeeded")
	}
	members := NewMembers()
	p := create(t, Config{Name: "d", BindAddr: "127.0.0.1", Base: fastConfig(), Members: members})
	want := Config{RetryInterval: DefaultRetryInterval, ReconnectInterval: DefaultReconnectInterval,
		ReconnectTimeout: DefaultReconnectTimeout, TombstoneTimeout: DefaultTombstoneTimeout, ReapInterval: DefaultReapInterval}
	got := Config{RetryInterval: p.config.RetryInterval, ReconnectInterval: p.config.ReconnectInterval,
		ReconnectTimeout: p.config.ReconnectTimeout, TombstoneTimeout: p.config.TombstoneTimeout, ReapInterval: p.config.ReapInterval}
	if p.Members() != members || !reflect.DeepEqual(got, want) || p.logger == nil {
		t.Fatalf("defaults not applied: %+v", p.config)
	}
	if p.KeyManager() == nil {
		t.Fatal("no key manager")
	}
	// Nothing to join: JoinLoop returns at once.
	p.JoinLoop(context.Background(), nil)
}
