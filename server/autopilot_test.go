package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
)

// quorumWatch polls the leader's Raft configuration while a test changes the grid:
// it records every voter set it sees, and fails the test if a configuration ever
// has fewer running voters than its quorum, or the grid stops taking writes.
type quorumWatch struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]bool // IDs of the servers running now
	servers []*Server
	// seen records, per server ID, the suffrages it was seen with.
	seen    map[string]map[raft.ServerSuffrage]bool
	broken  []string
	writes  atomic.Int64
	stop    chan struct{}
	stopped sync.WaitGroup
}

func watchQuorum(t *testing.T, servers []*Server) *quorumWatch {
	w := &quorumWatch{t: t, running: map[string]bool{}, seen: map[string]map[raft.ServerSuffrage]bool{}, stop: make(chan struct{})}
	for _, s := range servers {
		w.add(s)
	}
	w.stopped.Add(2)
	go w.pollConfigs()
	go w.write()
	return w
}

func (w *quorumWatch) add(s *Server) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[s.ID()] = true
	w.servers = append(w.servers, s)
}

func (w *quorumWatch) kill(s *Server) {
	w.mu.Lock()
	w.running[s.ID()] = false
	w.mu.Unlock()
	if err := s.stop(false); err != nil {
		w.t.Logf("abrupt stop of %s: %v", s.Name(), err)
	}
}

func (w *quorumWatch) live() []*Server {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*Server
	for _, s := range w.servers {
		if w.running[s.ID()] {
			out = append(out, s)
		}
	}
	return out
}

func (w *quorumWatch) pollConfigs() {
	defer w.stopped.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		for _, s := range w.live() {
			if !s.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			f := s.raft.GetConfiguration()
			err := waitFuture(ctx, s.ctx, f)
			cancel()
			if err != nil {
				continue
			}
			w.check(f.Configuration())
		}
	}
}

func (w *quorumWatch) check(cfg raft.Configuration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	voters, up := 0, 0
	for _, srv := range cfg.Servers {
		id := string(srv.ID)
		if w.seen[id] == nil {
			w.seen[id] = map[raft.ServerSuffrage]bool{}
		}
		w.seen[id][srv.Suffrage] = true
		if srv.Suffrage == raft.Voter {
			voters++
			if w.running[id] {
				up++
			}
		}
	}
	if up <= voters/2 {
		w.broken = append(w.broken, fmt.Sprintf("%d of %d voters running: %+v", up, voters, cfg.Servers))
	}
}

// write registers agents one after another, through whichever server runs, for as
// long as the watch lasts: each must succeed (Apply waits out an election).
func (w *quorumWatch) write() {
	defer w.stopped.Done()
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		live := w.live()
		s := live[i%len(live)]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := s.Apply(ctx, registerCmd(fmt.Sprintf("w-%d", i)))
		cancel()
		if err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			w.mu.Lock()
			w.broken = append(w.broken, fmt.Sprintf("write %d via %s: %v", i, s.Name(), err))
			w.mu.Unlock()
		}
		w.writes.Add(1)
	}
}

// finish stops the watch and fails the test if quorum was ever lost.
func (w *quorumWatch) finish() {
	close(w.stop)
	w.stopped.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.broken {
		w.t.Errorf("quorum lost: %s", b)
	}
	if w.writes.Load() == 0 {
		w.t.Errorf("no write was made while the grid changed")
	}
}

func (w *quorumWatch) seenAs(id string, s raft.ServerSuffrage) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[id][s]
}

// raftServers returns the leader's Raft configuration by ID.
func raftServers(t testing.TB, s *Server) map[string]raft.ServerSuffrage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := s.raft.GetConfiguration()
	if err := waitFuture(ctx, s.ctx, f); err != nil {
		t.Fatalf("configuration of %s: %v", s.Name(), err)
	}
	out := map[string]raft.ServerSuffrage{}
	for _, srv := range f.Configuration().Servers {
		out[string(srv.ID)] = srv.Suffrage
	}
	return out
}

// TestAutopilotReplacesDeadServer kills one server of five for good and starts a new
// one with a fresh data dir: autopilot removes the dead one only once the new one
// joined, the new one joins as a non-voter and is promoted after the stabilization
// time, and quorum holds throughout.
func TestAutopilotReplacesDeadServer(t *testing.T) {
	c := newClusterWith(t, 5, func(cfg *Config) {
		// Only a replacement may cause a removal here.
		cfg.Autopilot.DeadServerCleanupAfter = 0
	})
	leader := c.leader()
	gridtest.WaitFor(t, 15*time.Second, "five voters", func() error {
		if got := voters(t, leader); len(got) != 5 {
			return fmt.Errorf("voters %v", got)
		}
		return nil
	})
	w := watchQuorum(t, c.servers)
	victim := followers(leader, c.servers)[0]
	w.kill(victim)

	// Gossip and autopilot see it dead, yet it stays: no replacement has joined.
	gridtest.WaitFor(t, 20*time.Second, "autopilot to judge "+victim.Name()+" failed", func() error {
		l := c.leader(w.live()...)
		h, err := apiClient(t, l).AutopilotHealth(context.Background())
		if err != nil {
			return err
		}
		for _, srv := range h.Servers {
			if srv.ID == victim.ID() {
				if srv.SerfStatus != "failed" || srv.Healthy {
					return fmt.Errorf("victim %+v", srv)
				}
				if h.Healthy || h.FailureTolerance != 1 {
					return fmt.Errorf("grid healthy=%v tolerance=%d, want unhealthy with 1", h.Healthy, h.FailureTolerance)
				}
				return nil
			}
		}
		return fmt.Errorf("victim not in health %+v", h.Servers)
	})
	if _, ok := raftServers(t, c.leader(w.live()...))[victim.ID()]; !ok {
		t.Fatalf("%s was removed before a replacement joined", victim.Name())
	}

	cfg := testConfig(t, "s6", t.TempDir(), 0)
	cfg.Join = []string{c.leader(w.live()...).GossipAddr()}
	fresh := startServer(t, cfg)
	w.add(fresh)

	gridtest.WaitFor(t, 45*time.Second, "the dead server removed and the new one a voter", func() error {
		got := raftServers(t, c.leader(w.live()...))
		if _, ok := got[victim.ID()]; ok {
			return fmt.Errorf("%s still in raft: %v", victim.Name(), got)
		}
		if got[fresh.ID()] != raft.Voter {
			return fmt.Errorf("%s not a voter: %v", fresh.Name(), got)
		}
		if len(got) != 5 {
			return fmt.Errorf("configuration %v, want 5 servers", got)
		}
		return nil
	})
	gridtest.WaitFor(t, 20*time.Second, "autopilot to judge the grid healthy", func() error {
		h, err := apiClient(t, c.leader(w.live()...)).AutopilotHealth(context.Background())
		if err != nil {
			return err
		}
		if !h.Healthy || h.FailureTolerance != 2 || len(h.Servers) != 5 || len(h.Voters) != 5 {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})
	w.finish()
	if !w.seenAs(fresh.ID(), raft.Nonvoter) {
		t.Errorf("%s was never seen as a non-voter before its promotion", fresh.Name())
	}
}

// TestAutopilotRemovesDeadServerAfterCleanupTime: with no replacement, a dead server
// goes once it has been failed for -autopilot-dead-server-cleanup-after.
func TestAutopilotRemovesDeadServerAfterCleanupTime(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) {
		cfg.Autopilot.DeadServerCleanupAfter = 2 * time.Second
	})
	leader := c.leader()
	gridtest.WaitFor(t, 15*time.Second, "three voters", func() error {
		if got := voters(t, leader); len(got) != 3 {
			return fmt.Errorf("voters %v", got)
		}
		return nil
	})
	w := watchQuorum(t, c.servers)
	victim := followers(leader, c.servers)[0]
	w.kill(victim)
	gridtest.WaitFor(t, 30*time.Second, victim.Name()+" removed", func() error {
		got := raftServers(t, c.leader(w.live()...))
		if _, ok := got[victim.ID()]; ok {
			return fmt.Errorf("still in raft: %v", got)
		}
		return nil
	})
	w.finish()
	if got := voters(t, c.leader(w.live()...)); len(got) != 2 || slices.Contains(got, victim.ID()) {
		t.Fatalf("voters %v, want the two running servers", got)
	}
}

// TestAutopilotConfigReplicated: a configuration set through one server is what every
// server reads, and what a new leader uses.
func TestAutopilotConfigReplicated(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.leader()
	follower := followers(leader, c.servers)[0]
	ctx := context.Background()
	// The first leader stored its flags.
	var seeded *api.AutopilotConfiguration
	gridtest.WaitFor(t, 10*time.Second, "the seeded configuration", func() error {
		got, err := apiClient(t, follower).AutopilotConfiguration(ctx)
		if err != nil {
			return err
		}
		if got.ModifyIndex == 0 {
			return fmt.Errorf("not stored yet: %+v", got)
		}
		seeded = got
		return nil
	})
	if !seeded.CleanupDeadServers || time.Duration(seeded.ServerStabilizationTime) != time.Second {
		t.Fatalf("seeded %+v, want the flags", seeded)
	}

	want := *seeded
	want.MinQuorum, want.MaxTrailingLogs = 3, 99
	want.ServerStabilizationTime = api.Duration(7 * time.Second)
	set, err := apiClient(t, follower).AutopilotCASConfiguration(ctx, &want, seeded.ModifyIndex)
	if err != nil {
		t.Fatal(err)
	}
	if set.MinQuorum != 3 || set.ModifyIndex <= seeded.ModifyIndex {
		t.Fatalf("stored %+v", set)
	}
	// A check-and-set on the old index loses.
	_, err = apiClient(t, follower).AutopilotCASConfiguration(ctx, &want, seeded.ModifyIndex)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 409 {
		t.Fatalf("stale check-and-set: %v, want HTTP 409", err)
	}

	if err := leader.stop(false); err != nil {
		t.Logf("abrupt stop: %v", err)
	}
	rest := followers(leader, c.servers)
	next := c.leader(rest...)
	for _, s := range rest {
		gridtest.WaitFor(t, 10*time.Second, "the configuration on "+s.Name(), func() error {
			got, err := s.AutopilotConfig()
			if err != nil {
				return err
			}
			if got.MinQuorum != 3 || got.MaxTrailingLogs != 99 || got.ServerStabilizationTime != 7*time.Second {
				return fmt.Errorf("%+v", got)
			}
			return nil
		})
	}
	// The new leader's autopilot runs with it, not with its flags.
	if got := next.pilot.AutopilotConfig(); got.MinQuorum != 3 || got.ServerStabilizationTime != 7*time.Second {
		t.Fatalf("new leader's autopilot uses %+v", got)
	}
}

func registerCmd(name string) *fsm.RegisterAgent {
	return &fsm.RegisterAgent{Name: name, Address: deadAgentAddr, MaxNodes: 1}
}

// TestAutopilotConfigEndpoint: what PUT /v1/operator/autopilot/configuration refuses,
// and what it stores.
func TestAutopilotConfigEndpoint(t *testing.T) {
	s := startServer(t, testConfig(t, "solo", t.TempDir(), 1))
	(&testCluster{t: t, servers: []*Server{s}}).leader()
	url := "http://" + s.HTTPAddr() + "/v1/operator/autopilot/configuration"
	var stored api.AutopilotConfiguration
	gridtest.WaitFor(t, 10*time.Second, "the seeded configuration", func() error {
		got, err := apiClient(t, s).AutopilotConfiguration(context.Background())
		if err != nil || got.ModifyIndex == 0 {
			return fmt.Errorf("%+v, %v", got, err)
		}
		stored = *got
		return nil
	})
	good := `{"cleanup_dead_servers":false,"dead_server_cleanup_after":"5m","last_contact_threshold":"1s","max_trailing_logs":10,"min_quorum":1,"server_stabilization_time":"0s"}`
	cases := []struct {
		name, query, body string
		wantCode          int
		wantBody          string
	}{
		{"unknown field", "", `{"cleanup":true}`, http.StatusBadRequest, "unknown field"},
		{"not a duration", "", `{"last_contact_threshold":"soon"}`, http.StatusBadRequest, "invalid duration"},
		{"zero last contact", "", `{"last_contact_threshold":"0s"}`, http.StatusBadRequest, "last_contact_threshold must be positive"},
		{"negative stabilization", "", `{"last_contact_threshold":"1s","server_stabilization_time":"-1s"}`, http.StatusBadRequest, "server_stabilization_time must not be negative"},
		{"bad cas", "?cas=x", good, http.StatusBadRequest, "cas must be a Raft index"},
		{"stale cas", fmt.Sprintf("?cas=%d", stored.ModifyIndex+100), good, http.StatusConflict, "check-and-set"},
		{"cas on the index read", fmt.Sprintf("?cas=%d", stored.ModifyIndex), good, http.StatusOK, `"dead_server_cleanup_after": "5m0s"`},
		{"plain write", "", good, http.StatusOK, `"min_quorum": 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, url+tc.query, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("PUT%s %s: %d %s, want %d with %q", tc.query, tc.body, resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
	got, err := s.AutopilotConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got.CleanupDeadServers || got.DeadServerCleanupAfter != 5*time.Minute || got.MinQuorum != 1 || got.CreateIndex != stored.CreateIndex {
		t.Fatalf("stored %+v", got)
	}
	if got := s.pilot.AutopilotConfig(); got.CleanupDeadServers || got.Ext != 5*time.Minute {
		t.Fatalf("autopilot runs with %+v", got)
	}
}

// TestMayRemove is Grid's rule on top of autopilot's: a failed server goes once a
// server that joined after it failed is alive, or once it has been failed for the
// cleanup time; a server gossip does not know goes by time only.
func TestMayRemove(t *testing.T) {
	now := time.Now()
	failedAt := now.Add(-time.Minute)
	state := func(newStatus autopilot.NodeStatus) *autopilot.State {
		return &autopilot.State{Servers: map[raft.ServerID]*autopilot.ServerState{
			"new": {Server: autopilot.Server{ID: "new", NodeStatus: newStatus}},
		}}
	}
	cases := []struct {
		name         string
		status       autopilot.NodeStatus // of the dead server
		failed       bool                 // this leader saw it not alive
		joinedAt     time.Time            // when "new" joined; zero: never
		st           *autopilot.State
		cleanupAfter time.Duration
		want         bool
		why          string
	}{
		{"replaced", autopilot.NodeFailed, true, now, state(autopilot.NodeAlive), 0, true, "replaced by new"},
		{"a left server is replaced too", autopilot.NodeLeft, true, now, state(autopilot.NodeAlive), 0, true, "replaced by new"},
		{"the replacement is not alive", autopilot.NodeFailed, true, now, state(autopilot.NodeFailed), 0, false, ""},
		{"the replacement is not in raft yet", autopilot.NodeFailed, true, now, &autopilot.State{}, 0, false, ""},
		{"joined before the failure", autopilot.NodeFailed, true, failedAt.Add(-time.Second), state(autopilot.NodeAlive), 0, false, ""},
		{"no replacement, waiting for one", autopilot.NodeFailed, true, time.Time{}, state(autopilot.NodeAlive), 0, false, ""},
		{"no replacement, cleanup time passed", autopilot.NodeFailed, true, time.Time{}, state(autopilot.NodeAlive), 30 * time.Second, true, "failed for over 30s"},
		{"no replacement, cleanup time to come", autopilot.NodeFailed, true, time.Time{}, state(autopilot.NodeAlive), time.Hour, false, ""},
		{"unknown to gossip: not by a replacement", autopilot.NodeUnknown, true, now, state(autopilot.NodeAlive), 0, false, ""},
		{"unknown to gossip: by time", autopilot.NodeUnknown, true, now, state(autopilot.NodeAlive), 30 * time.Second, true, "failed for over 30s"},
		{"not seen failed by this leader", autopilot.NodeFailed, false, now, state(autopilot.NodeAlive), 30 * time.Second, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &pilot{failedSince: map[raft.ServerID]time.Time{}, joinedAt: map[raft.ServerID]time.Time{}}
			if tc.failed {
				p.failedSince["dead"] = failedAt
			}
			if !tc.joinedAt.IsZero() {
				p.joinedAt["new"] = tc.joinedAt
			}
			got, why := p.mayRemove(&autopilot.Server{ID: "dead", NodeStatus: tc.status}, tc.st, tc.cleanupAfter)
			if got != tc.want || why != tc.why {
				t.Fatalf("mayRemove = %v %q, want %v %q", got, why, tc.want, tc.why)
			}
		})
	}
}
