package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/storage"
)

// evStore is a real storage node serving as the event store, in process. It
// can be stopped and started again on the same port, with its data dir or a new one,
// and it can refuse writes from everyone but the test, to hold events in the outbox
// while the store answers reads.
type evStore struct {
	t    testing.TB
	dir  string
	addr string

	blockWrites atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// evWriterKey marks the test's own writes, which a write block lets through.
const evWriterKey = "x-grid-test-writer"

func startEvStore(t testing.TB) *evStore {
	t.Helper()
	es := &evStore{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	es.start()
	t.Cleanup(es.stop)
	return es
}

func (es *evStore) start() {
	es.t.Helper()
	_, port, err := net.SplitHostPort(es.addr)
	if err != nil {
		es.t.Fatal(err)
	}
	cfg := storage.DefaultConfig()
	cfg.DataDir = es.dir
	cfg.Port, _ = strconv.Atoi(port)
	cfg.Authorizer = auth.AuthorizerFunc(func(ctx context.Context, a auth.Access) error {
		if !strings.HasSuffix(a.Endpoint, "/LearnBatch") || !es.blockWrites.Load() {
			return nil
		}
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(evWriterKey)) > 0 {
			return nil
		}
		return status.Error(codes.Unavailable, "writes are paused by the test")
	})
	cfg.Logger = gridtest.Logger(es.t, "event-store")
	srv, err := storage.New(cfg)
	if err != nil {
		es.t.Fatalf("start event store: %v", err)
	}
	es.addr = srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	es.mu.Lock()
	es.cancel, es.done = cancel, done
	es.mu.Unlock()
}

// stop stops the store if it runs.
func (es *evStore) stop() {
	es.mu.Lock()
	cancel, done := es.cancel, es.done
	es.cancel, es.done = nil, nil
	es.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		es.t.Errorf("event store: %v", err)
	}
}

// client returns a client of the store whose writes pass a write block.
func (es *evStore) client(t testing.TB) (gridpb.StorageClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(es.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return gridpb.NewStorageClient(conn), metadata.AppendToOutgoingContext(context.Background(), evWriterKey, "1")
}

// newEvCluster starts n servers that ship to the event store at addr. Agents
// registered straight through Apply send no heartbeats, so the thresholds are far
// out of the tests' way: no event comes that the test did not cause.
func newEvCluster(t testing.TB, n int, addr string) *testCluster {
	t.Helper()
	return newClusterWith(t, n, func(cfg *Config) {
		cfg.EventStores = []string{addr}
		cfg.AgentDegradedAfter = time.Hour
		cfg.AgentOfflineAfter = time.Hour
	})
}

func evApply(t testing.TB, s *Server, cmd fsm.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Apply(ctx, cmd); err != nil {
		t.Fatalf("apply %s: %v", cmd.Type(), err)
	}
}

func evSetStatus(t testing.TB, s *Server, name string, st fsm.AgentStatus) {
	t.Helper()
	evApply(t, s, &fsm.SetAgentStatus{Name: name, Status: st, LastSeen: time.Now()})
}

func evMeta(t testing.TB, s *Server) fsm.EventMeta {
	t.Helper()
	m, err := s.State().EventMeta()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// evWaitShipped waits until the event store holds every event the leader derived.
func evWaitShipped(t testing.TB, leader *Server) {
	t.Helper()
	gridtest.WaitFor(t, 20*time.Second, "every event shipped", func() error {
		m := evMeta(t, leader)
		if m.LastSeq == 0 || m.ShippedSeq != m.LastSeq {
			return fmt.Errorf("last seq %d, shipped %d", m.LastSeq, m.ShippedSeq)
		}
		return nil
	})
}

func evSeqs(evs []api.Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = strconv.FormatUint(e.Seq, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// evListAll pages through a listing with limit per page and returns the pages' seqs.
func evListAll(t testing.TB, cl *api.Client, q api.EventQuery) []string {
	t.Helper()
	var pages []string
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatalf("listing %+v does not end", q)
		}
		l, err := cl.Events(context.Background(), q)
		if err != nil {
			t.Fatalf("list %+v: %v", q, err)
		}
		if l.Partial != "" {
			t.Errorf("list %+v: partial: %s", q, l.Partial)
		}
		pages = append(pages, evSeqs(l.Events))
		if l.NextPageToken == "" {
			return pages
		}
		q.PageToken = l.NextPageToken
	}
}

type evListCase struct {
	name string
	q    api.EventQuery
	want string // the seqs, in order
}

func evCheckLists(t *testing.T, cl *api.Client, cases []evListCase) {
	t.Helper()
	for _, tc := range cases {
		l, err := cl.Events(context.Background(), tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := evSeqs(l.Events); got != tc.want {
			t.Errorf("%s: seqs %s, want %s", tc.name, got, tc.want)
		}
		if l.Partial != "" {
			t.Errorf("%s: partial: %s", tc.name, l.Partial)
		}
	}
}

// evSeed derives seven events, and returns a time between the third and the
// fourth:
//
//	1 agent_registered a1   2 cluster_healthy   3 agent_registered a2
//	4 agent_degraded a1     5 cluster_degraded
//	6 agent_recovered a1    7 cluster_healthy
func evSeed(t *testing.T, s *Server) time.Time {
	t.Helper()
	register(t, s, "a1")
	register(t, s, "a2")
	mid := time.Now()
	evSetStatus(t, s, "a1", fsm.AgentDegraded)
	evSetStatus(t, s, "a1", fsm.AgentHealthy)
	want := []events.Type{events.AgentRegistered, events.ClusterHealthy, events.AgentRegistered,
		events.AgentDegraded, events.ClusterDegraded, events.AgentRecovered, events.ClusterHealthy}
	gridtest.WaitFor(t, 10*time.Second, "seven events", func() error {
		if m := evMeta(t, s); m.LastSeq != uint64(len(want)) {
			return fmt.Errorf("last seq %d", m.LastSeq)
		}
		return nil
	})
	for i, typ := range want {
		if e := s.feed.get(uint64(i + 1)); e == nil || e.Type != typ {
			t.Fatalf("event %d is %+v, want %s", i+1, e, typ)
		}
	}
	return mid
}

func TestEventsListFilters(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	mid := evSeed(t, s)
	evWaitShipped(t, s)
	// Every event is in the store alone now.
	if out, _ := s.State().Outbox(0, 100); len(out) != 0 {
		t.Fatalf("outbox holds %d events after shipping", len(out))
	}
	cl := apiClient(t, s)
	midStr := mid.Format(time.RFC3339Nano)
	evCheckLists(t, cl, []evListCase{
		{"newest first by default", api.EventQuery{}, "[7 6 5 4 3 2 1]"},
		{"oldest first", api.EventQuery{Ascending: true}, "[1 2 3 4 5 6 7]"},
		{"one agent", api.EventQuery{Agents: []string{"a1"}}, "[6 4 1]"},
		{"two agents", api.EventQuery{Agents: []string{"a1", "a2"}, Ascending: true}, "[1 3 4 6]"},
		{"types", api.EventQuery{Types: []events.Type{events.ClusterHealthy, events.ClusterDegraded}}, "[7 5 2]"},
		{"agent and type", api.EventQuery{Agents: []string{"a1"}, Types: []events.Type{events.AgentDegraded}}, "[4]"},
		{"no match", api.EventQuery{Agents: []string{"nobody"}}, "[]"},
		{"since a time", api.EventQuery{Since: midStr}, "[7 6 5 4]"},
		{"until a time", api.EventQuery{Until: midStr}, "[3 2 1]"},
		{"since a duration", api.EventQuery{Since: "1h"}, "[7 6 5 4 3 2 1]"},
		{"until a duration", api.EventQuery{Until: "1h"}, "[]"},
		{"limit", api.EventQuery{Limit: 2}, "[7 6]"},
		{"limit oldest first", api.EventQuery{Limit: 2, Ascending: true}, "[1 2]"},
	})

	// The content is the event as derived.
	l, err := cl.Events(context.Background(), api.EventQuery{Types: []events.Type{events.AgentDegraded}})
	if err != nil || len(l.Events) != 1 {
		t.Fatalf("list: %v %+v", err, l)
	}
	if e := l.Events[0]; e.AgentID != "a1" || e.Description == "" || e.Timestamp.Before(mid) || e.LastSeen == nil {
		t.Errorf("event %+v", e)
	}

	// Pages continue where the last one ended, in either order, with filters.
	for _, tc := range []struct {
		q    api.EventQuery
		want string
	}{
		{api.EventQuery{Limit: 3}, "[7 6 5] [4 3 2] [1]"},
		{api.EventQuery{Limit: 3, Ascending: true}, "[1 2 3] [4 5 6] [7]"},
		{api.EventQuery{Limit: 2, Agents: []string{"a1"}}, "[6 4] [1]"},
		{api.EventQuery{Limit: 7}, "[7 6 5 4 3 2 1]"},
	} {
		if got := strings.Join(evListAll(t, cl, tc.q), " "); got != tc.want {
			t.Errorf("pages of %+v: %s, want %s", tc.q, got, tc.want)
		}
	}

	// Bad requests are refused with 400. eventquery's TestParseList has every way to
	// be wrong; these are one of each kind.
	first, err := cl.Events(context.Background(), api.EventQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	evExpect400(t, s, "/v1/events",
		"type=agent_exploded", "limit=0", "since="+url.QueryEscape(midStr)+"&until="+url.QueryEscape(midStr),
		"page_token=garbage", "agent=a1&page_token="+first.NextPageToken, "agents=a1")
}

// evExpect400 checks that GET path?q is refused with 400 for each q.
func evExpect400(t *testing.T, s *Server, path string, queries ...string) {
	t.Helper()
	for _, q := range queries {
		resp, err := http.Get("http://" + s.HTTPAddr() + path + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s?%s: %d, want 400", path, q, resp.StatusCode)
		}
	}
}

// TestEventsMergeOutboxAndStore lists events while some are in the store alone, some
// in both the store and the outbox (stored, not yet acknowledged) and some in the
// outbox alone: each is listed once, in order, and pages continue across the three.
func TestEventsMergeOutboxAndStore(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	register(t, s, "a1")
	register(t, s, "a2")
	evWaitShipped(t, s) // 1-3 in the store

	es.blockWrites.Store(true)
	evSetStatus(t, s, "a1", fsm.AgentDegraded) // 4, 5
	evSetStatus(t, s, "a1", fsm.AgentHealthy)  // 6, 7
	waiting, err := s.State().Outbox(0, 100)
	if err != nil || len(waiting) != 4 || waiting[0].Seq != 4 {
		t.Fatalf("outbox %v, %v: want events 4-7", waiting, err)
	}
	// Store 4 and 5 as a shipper would just before it lost its leadership.
	batch, err := eventBatch(waiting[:2])
	if err != nil {
		t.Fatal(err)
	}
	sc, ctx := es.client(t)
	if _, err := sc.LearnBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if m := evMeta(t, s); m.ShippedSeq != 3 {
		t.Fatalf("shipped seq %d, want 3 while writes are blocked", m.ShippedSeq)
	}

	cl := apiClient(t, s)
	check := func() {
		t.Helper()
		evCheckLists(t, cl, []evListCase{
			{"all", api.EventQuery{}, "[7 6 5 4 3 2 1]"},
			{"all oldest first", api.EventQuery{Ascending: true}, "[1 2 3 4 5 6 7]"},
			{"one agent", api.EventQuery{Agents: []string{"a1"}}, "[6 4 1]"},
			{"cluster", api.EventQuery{Types: []events.Type{events.ClusterHealthy, events.ClusterDegraded}, Ascending: true}, "[2 5 7]"},
			{"limit", api.EventQuery{Limit: 4}, "[7 6 5 4]"},
		})
		for _, tc := range []struct {
			q    api.EventQuery
			want string
		}{
			{api.EventQuery{Limit: 2}, "[7 6] [5 4] [3 2] [1]"},
			{api.EventQuery{Limit: 3, Ascending: true}, "[1 2 3] [4 5 6] [7]"},
			{api.EventQuery{Limit: 1, Agents: []string{"a1"}, Ascending: true}, "[1] [4] [6]"},
		} {
			if got := strings.Join(evListAll(t, cl, tc.q), " "); got != tc.want {
				t.Errorf("pages of %+v: %s, want %s", tc.q, got, tc.want)
			}
		}
	}
	check()
	es.blockWrites.Store(false)
	evWaitShipped(t, s)
	check()
}

// TestEventsWhileStoreIsDown: events wait in the outbox while the event store is
// down; a listing shows them and says it is partial; once the store is back they are
// shipped and the listing is whole again.
func TestEventsWhileStoreIsDown(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	register(t, s, "a1") // 1, 2
	evWaitShipped(t, s)

	es.stop()
	register(t, s, "a2") // 3
	register(t, s, "a3") // 4
	cl := apiClient(t, s)
	ctx := context.Background()
	for _, tc := range []evListCase{
		{"all", api.EventQuery{}, "[4 3]"},
		{"one agent", api.EventQuery{Agents: []string{"a3"}}, "[4]"},
		{"oldest first, limited", api.EventQuery{Ascending: true, Limit: 1}, "[3]"},
	} {
		l, err := cl.Events(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := evSeqs(l.Events); got != tc.want {
			t.Errorf("%s: seqs %s, want %s", tc.name, got, tc.want)
		}
		if !strings.HasPrefix(l.Partial, "event store unreachable: ") {
			t.Errorf("%s: partial %q, want it to say the event store is unreachable", tc.name, l.Partial)
		}
	}
	if m := evMeta(t, s); m.ShippedSeq != 2 {
		t.Fatalf("shipped seq %d while the store is down, want 2", m.ShippedSeq)
	}
	// One event can still be shown: it waits in the outbox.
	if d, err := cl.Event(ctx, 4); err != nil || d.Event.AgentID != "a3" {
		t.Fatalf("show 4: %+v, %v", d, err)
	}

	es.start() // same dir, same port
	evWaitShipped(t, s)
	gridtest.WaitFor(t, 10*time.Second, "a whole listing", func() error {
		l, err := cl.Events(ctx, api.EventQuery{})
		if err != nil {
			return err
		}
		if got := evSeqs(l.Events); got != "[4 3 2 1]" || l.Partial != "" {
			return fmt.Errorf("seqs %s, partial %q", got, l.Partial)
		}
		return nil
	})
}

// evGroups renders counts as "type=agent_registered:2 …/total", with the
// group_by values in the order of by.
func evGroups(c *api.EventCounts, by ...string) string {
	var parts []string
	for _, g := range c.Groups {
		var vals []string
		for _, d := range by {
			vals = append(vals, d+"="+g.Values[d])
		}
		parts = append(parts, fmt.Sprintf("%s:%d", strings.Join(vals, " "), g.Count))
	}
	return strings.Join(parts, " ") + fmt.Sprintf(" /%d", c.Total)
}

// TestEventCounts counts events in the store alone, in both the store and the
// outbox (stored, not yet acknowledged) and in the outbox alone: each once; then,
// with the store down, those in the outbox, saying the counts are partial.
func TestEventCounts(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	register(t, s, "a1")
	register(t, s, "a2")
	evWaitShipped(t, s) // 1-3 in the store
	es.blockWrites.Store(true)
	evSetStatus(t, s, "a1", fsm.AgentDegraded) // 4, 5
	evSetStatus(t, s, "a1", fsm.AgentHealthy)  // 6, 7
	waiting, err := s.State().Outbox(0, 100)
	if err != nil || len(waiting) != 4 {
		t.Fatalf("outbox %v, %v: want events 4-7", waiting, err)
	}
	batch, err := eventBatch(waiting[:2]) // 4 and 5 in both
	if err != nil {
		t.Fatal(err)
	}
	sc, ctx := es.client(t)
	if _, err := sc.LearnBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	cl := apiClient(t, s)
	for _, tc := range []struct {
		q    api.EventCountQuery
		want string
	}{
		{api.EventCountQuery{}, ":7 /7"},
		{api.EventCountQuery{GroupBy: []string{"type"}},
			"type=agent_registered:2 type=cluster_healthy:2 type=agent_degraded:1 type=agent_recovered:1 type=cluster_degraded:1 /7"},
		{api.EventCountQuery{GroupBy: []string{"severity", "agent"}, Since: "1h"},
			"severity=info agent=:2 severity=info agent=a1:2 severity=info agent=a2:1 severity=warning agent=:1 severity=warning agent=a1:1 /7"},
		{api.EventCountQuery{GroupBy: []string{"type"}, Agents: []string{"a1"}, Severities: []events.Severity{events.SeverityWarning}},
			"type=agent_degraded:1 /1"},
		{api.EventCountQuery{GroupBy: []string{"type"}, MaxGroups: 1}, "type=agent_registered:2 /7"},
	} {
		got, err := cl.EventCounts(context.Background(), tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if s := evGroups(got, tc.q.GroupBy...); s != tc.want || got.Partial != "" || got.Truncated != (tc.q.MaxGroups == 1) {
			t.Errorf("%+v: %s (truncated %v, partial %q), want %s", tc.q, s, got.Truncated, got.Partial, tc.want)
		}
	}

	// Buckets: each group starts at the hour of its events, in UTC.
	all, err := cl.Events(context.Background(), api.EventQuery{Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, e := range all.Events {
		want[e.Timestamp.UTC().Truncate(time.Hour).Format(time.RFC3339)+" "+string(e.Severity())]++
	}
	got, err := cl.EventCounts(context.Background(), api.EventCountQuery{GroupBy: []string{"severity"}, Bucket: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got.Groups {
		if g.Bucket == nil {
			t.Fatalf("group %+v without a bucket", g)
		}
		k := g.Bucket.Format(time.RFC3339) + " " + g.Values["severity"]
		if want[k] != g.Count {
			t.Errorf("bucket %s: %d events, want %d", k, g.Count, want[k])
		}
		delete(want, k)
	}
	if len(want) > 0 || got.Total != 7 {
		t.Errorf("buckets missing: %v; total %d", want, got.Total)
	}

	evExpect400(t, s, "/v1/events/aggregate", "group_by=colour", "bucket=2h", "severity=fatal", "limit=5")

	es.stop()
	got, err = cl.EventCounts(context.Background(), api.EventCountQuery{GroupBy: []string{"type"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := evGroups(got, "type"); s != "type=agent_degraded:1 type=agent_recovered:1 type=cluster_degraded:1 type=cluster_healthy:1 /4" ||
		!strings.HasPrefix(got.Partial, "event store unreachable: ") {
		t.Errorf("store down: %s, partial %q", s, got.Partial)
	}
}

// evSpawnAndStart derives spawn_requested and then spawn_succeeded, its effect, and
// returns their seqs.
func evSpawnAndStart(t *testing.T, s *Server) (requested, succeeded uint64) {
	t.Helper()
	evApply(t, s, &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: t.TempDir()})
	evApply(t, s, &fsm.SpawnNode{ID: "n1", Agent: "a1", Port: 5000})
	requested = evMeta(t, s).LastSeq
	evApply(t, s, &fsm.NodeStarted{ID: "n1", PID: 4242})
	succeeded = evMeta(t, s).LastSeq
	if e := s.feed.get(requested); e == nil || e.Type != events.SpawnRequested {
		t.Fatalf("event %d is %+v, want spawn_requested", requested, e)
	}
	if e := s.feed.get(succeeded); e == nil || e.Type != events.SpawnSucceeded || e.CausedBy != requested {
		t.Fatalf("event %d is %+v, want spawn_succeeded caused by %d", succeeded, e, requested)
	}
	return requested, succeeded
}

func TestEventShowCausesAndEffects(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	cl := apiClient(t, s)
	ctx := context.Background()

	es.blockWrites.Store(true) // the first look finds the events in the outbox
	req, ok := evSpawnAndStart(t, s)
	check := func(where string) {
		t.Helper()
		d, err := cl.Event(ctx, ok)
		if err != nil {
			t.Fatalf("%s: show %d: %v", where, ok, err)
		}
		if d.Event.Seq != ok || d.Event.Type != events.SpawnSucceeded || d.Event.PID != 4242 ||
			evSeqs(d.Causes) != fmt.Sprintf("[%d]", req) || d.Causes[0].Type != events.SpawnRequested ||
			len(d.Effects) != 0 || d.Partial != "" {
			t.Errorf("%s: show %d: %+v", where, ok, d)
		}
		d, err = cl.Event(ctx, req)
		if err != nil {
			t.Fatalf("%s: show %d: %v", where, req, err)
		}
		if d.Event.Type != events.SpawnRequested || len(d.Causes) != 0 ||
			evSeqs(d.Effects) != fmt.Sprintf("[%d]", ok) || d.Effects[0].NodeID != "n1" || d.Partial != "" {
			t.Errorf("%s: show %d: %+v", where, req, d)
		}
	}
	s.feed.reset()
	check("in the outbox")

	es.blockWrites.Store(false)
	evWaitShipped(t, s)
	check("in the feed and the store")
	// Without the feed, everything comes from the store: the events, the cause, and
	// the effect through the caused_by association.
	s.feed.reset()
	check("in the store")

	// Unknown and malformed seqs.
	if _, err := cl.Event(ctx, 999); !api.IsNotFound(err) {
		t.Errorf("show 999: %v, want 404", err)
	}
	for _, p := range []string{"abc", "0", "-1"} {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/event/" + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /v1/event/%s: %d, want 400", p, resp.StatusCode)
		}
	}

	// With the store down, an event that left both the feed and the outbox cannot be
	// shown: 503, not 404.
	es.stop()
	_, err := cl.Event(ctx, ok)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Message, "event store unreachable") {
		t.Errorf("show %d with the store down: %v, want 503 naming the event store", ok, err)
	}
}

// evStream follows an event stream in the background.
type evStream struct {
	items  chan api.StreamItem
	cancel context.CancelFunc
	done   chan error
}

func evOpenStream(t *testing.T, cl *api.Client, since uint64, hasSince bool) *evStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &evStream{items: make(chan api.StreamItem, 1024), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- cl.StreamEvents(ctx, since, hasSince, func(it api.StreamItem) error {
			select {
			case r.items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(r.close)
	return r
}

func (r *evStream) close() {
	r.cancel()
	<-r.done
	r.done <- context.Canceled // close is idempotent
}

func (r *evStream) next(t *testing.T) api.StreamItem {
	t.Helper()
	select {
	case it := <-r.items:
		return it
	case err := <-r.done:
		r.done <- err
		t.Fatalf("stream ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no stream item for 20s")
	}
	return api.StreamItem{}
}

// nextFinal returns the next item that is not a retrying gap: the stream may meet a
// store that restarted before the server's connection to it has recovered.
func (r *evStream) nextFinal(t *testing.T) api.StreamItem {
	t.Helper()
	for {
		if it := r.next(t); it.Gap == nil || !it.Gap.Retrying {
			return it
		}
	}
}

// expectStart expects the item that tells where the stream starts.
func (r *evStream) expectStart(t *testing.T, after uint64) {
	t.Helper()
	it := r.next(t)
	if it.Event != nil || it.Gap != nil || it.Seq != after {
		t.Fatalf("first item %+v, want the start after %d", it, after)
	}
}

// expectEvents expects the events first..last, in order, and nothing else.
func (r *evStream) expectEvents(t *testing.T, first, last uint64) {
	t.Helper()
	for seq := first; seq <= last; seq++ {
		it := r.next(t)
		if it.Event == nil || it.Event.Seq != seq || it.Seq != seq {
			t.Fatalf("stream item %+v (gap %+v), want event %d", it, it.Gap, seq)
		}
	}
}

// expectNothingBuffered checks that no item has arrived beyond those expected.
func (r *evStream) expectNothingBuffered(t *testing.T) {
	t.Helper()
	select {
	case it := <-r.items:
		t.Fatalf("unexpected stream item %+v", it)
	default:
	}
}

func TestEventStreamResumesAndFollows(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 3, es.addr)
	leader := c.leader()
	follower := followers(leader, c.servers)[0]
	register(t, leader, "a1") // 1, 2
	register(t, leader, "a2") // 3
	gridtest.WaitFor(t, 10*time.Second, "the follower to evApply event 3", func() error {
		if m := evMeta(t, follower); m.LastSeq != 3 {
			return fmt.Errorf("last seq %d", m.LastSeq)
		}
		return nil
	})
	cl := apiClient(t, follower)

	// Resume right after 1: the stream replays 2 and 3, then follows.
	r := evOpenStream(t, cl, 1, true)
	r.expectStart(t, 1)
	r.expectEvents(t, 2, 3)
	// Without since_seq, only new events.
	fresh := evOpenStream(t, cl, 0, false)
	fresh.expectStart(t, 3)

	register(t, leader, "a3")                      // 4
	evSetStatus(t, leader, "a3", fsm.AgentOffline) // 5, 6
	r.expectEvents(t, 4, 6)
	fresh.expectEvents(t, 4, 6)
	// From 0, everything, once.
	all := evOpenStream(t, cl, 0, true)
	all.expectStart(t, 0)
	all.expectEvents(t, 1, 6)
	r.expectNothingBuffered(t)

	// Raw: SSE framing, Last-Event-ID wins over since_seq, keepalive comments aside.
	req, _ := http.NewRequest(http.MethodGet, "http://"+follower.HTTPAddr()+"/v1/event/stream?since_seq=1", nil)
	req.Header.Set("Last-Event-ID", "5")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 6 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v (after %q)", err, lines)
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
	}
	if lines[0] != "id: 5" || lines[1] != "" || lines[2] != "id: 6" || lines[3] != "event: cluster_degraded" ||
		!strings.HasPrefix(lines[4], `data: {"seq":6,"type":"cluster_degraded",`) || lines[5] != "" {
		t.Errorf("stream text:\n%s", strings.Join(lines, "\n"))
	}

	// A bad since_seq is refused before the stream starts.
	bad, err := http.Get("http://" + follower.HTTPAddr() + "/v1/event/stream?since_seq=x")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("since_seq=x: %d, want 400", bad.StatusCode)
	}
}

// TestEventStreamFromStoreAndGaps: events that left the feed and the outbox are read
// from the event store, in order; events the store no longer holds are reported as
// gaps, and the stream goes on after them.
func TestEventStreamFromStoreAndGaps(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	evSeed(t, s) // 1-7
	evWaitShipped(t, s)
	cl := apiClient(t, s)

	// The feed forgot (as after a restore, or on a busy cluster): the store has them.
	s.feed.reset()
	r := evOpenStream(t, cl, 2, true)
	r.expectStart(t, 2)
	r.expectEvents(t, 3, 7)
	register(t, s, "a3") // 8, live
	r.expectEvents(t, 8, 8)
	r.close()

	// A new, empty event store takes the old one's place: events 1-8 are gone.
	evWaitShipped(t, s)
	es.stop()
	es.dir = t.TempDir()
	es.start()
	s.feed.reset()
	r = evOpenStream(t, cl, 5, true)
	r.expectStart(t, 5)
	for seq := uint64(6); seq <= 8; seq++ {
		it := r.nextFinal(t)
		if it.Gap == nil || it.Gap.Seq != seq || it.Gap.Retrying || it.Seq != seq ||
			!strings.Contains(it.Gap.Error, "no longer in the event store") {
			t.Fatalf("item %+v (gap %+v), want a final gap for %d", it, it.Gap, seq)
		}
	}
	register(t, s, "a4") // 9
	r.expectEvents(t, 9, 9)
}

// TestEventStreamWaitsForStore: an event the store cannot deliver while it is down is
// reported as a retrying gap, then delivered in its place once the store is back.
func TestEventStreamWaitsForStore(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	evSeed(t, s)
	evWaitShipped(t, s)
	cl := apiClient(t, s)

	es.stop()
	s.feed.reset()
	r := evOpenStream(t, cl, 3, true)
	r.expectStart(t, 3)
	it := r.next(t)
	if it.Gap == nil || it.Gap.Seq != 4 || !it.Gap.Retrying || it.Seq != 3 ||
		!strings.Contains(it.Gap.Error, "event store unreachable") {
		t.Fatalf("item %+v (gap %+v), want a retrying gap for 4", it, it.Gap)
	}
	es.start()
	for seq := uint64(4); seq <= 7; seq++ {
		if it := r.nextFinal(t); it.Event == nil || it.Event.Seq != seq {
			t.Fatalf("item %+v (gap %+v), want event %d", it, it.Gap, seq)
		}
	}
	r.expectNothingBuffered(t)
}

// TestEventStreamSkipsAfterRetrying: when the store stays down longer than the
// stream retries, each missing event is reported as skipped, and new events follow.
func TestEventStreamSkipsAfterRetrying(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 1, es.addr)
	s := c.leader()
	evSeed(t, s)
	evWaitShipped(t, s)
	es.stop()
	s.feed.reset()

	st := &eventStreamer{s: s, recheck: 20 * time.Millisecond, keepalive: time.Hour,
		retryEvery: 20 * time.Millisecond, retryFor: 200 * time.Millisecond}
	hs := httptest.NewServer(http.HandlerFunc(st.serve))
	t.Cleanup(hs.Close)
	cl, err := api.NewClient(&api.Config{Address: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := evOpenStream(t, cl, 5, true)
	r.expectStart(t, 5)
	it := r.next(t)
	if it.Gap == nil || it.Gap.Seq != 6 || !it.Gap.Retrying {
		t.Fatalf("item %+v (gap %+v), want a retrying gap for 6", it, it.Gap)
	}
	for seq := uint64(6); seq <= 7; seq++ {
		it := r.next(t)
		if it.Gap == nil || it.Gap.Seq != seq || it.Gap.Retrying || it.Seq != seq ||
			!strings.Contains(it.Gap.Error, "skipped after retrying") {
			t.Fatalf("item %+v (gap %+v), want a final gap for %d", it, it.Gap, seq)
		}
	}
	register(t, s, "a3") // 8, from the feed
	r.expectEvents(t, 8, 8)
}
