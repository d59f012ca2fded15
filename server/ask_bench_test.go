package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// BenchmarkAsk1M checks issue 9's performance target: "On an event store of
// 1,000,000 events: parsing alone p99 < 1 ms; a full answer (list, count grouped by
// agent over a day, cause) p99 < 50 ms through the HTTP API."
//
// It runs here, in package server, rather than in e2e: the server and the storage
// node run in this process, so `-cpuprofile` sees where a request's time goes on
// both sides of the gRPC call; the fill reuses the shipper's own encoding
// (eventBatch) and the snapshot archive's (writeArchive), unexported here; and the
// requests still cross real sockets: HTTP from api.Client to the server, gRPC from
// the server to a storage node on disk.
//
// The store is built once per run (fleet_bench_test.go: about 1,000,000 events of 20
// agents and 200 nodes over 30 days; a minute or two), then every sub-benchmark times
// only its requests. Each iteration runs the request through the HTTP API and, in
// the same iteration (alternating which goes first), the same query straight to the
// storage node over gRPC: its ceiling, what the event store itself needs, without the
// server. Each reports the p50 and p99 of both, in ms, and their ratios (ns/op is
// their sum and means nothing). Run it with -benchtime=Nx: p99 needs a few
// hundred samples. scripts/bench-ask runs it and prints the table.
//
// "Today" is the last whole UTC day of the history, and "now" its last second, so
// that the figures do not depend on the hour of the run; the ask questions pin now
// likewise.
//
// The ask-* sub-benchmarks time POST /v1/ask with the three questions of the target;
// they skip on a server that does not serve it yet.
//
// With GRID_BENCH_ASK_DIR=DIR the store is kept in DIR and reused by later runs (a
// profile then holds only the requests). GRID_BENCH_EVENTS=N builds N events
// instead of 1,000,000.
func BenchmarkAsk1M(b *testing.B) {
	if os.Getenv("GRID_BENCH_1M") == "" {
		b.Skip("set GRID_BENCH_1M=1 to build the 1,000,000-event store")
	}
	h := newAskBench(b)
	ctx := context.Background()
	day, now := h.fleet.Day, h.now
	since, until := day.Format(time.RFC3339), now.Format(time.RFC3339)

	// parsing alone, with the fleet's names (ask's BenchmarkInterpret parses the
	// contract's examples, with theirs).
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		qs := h.questions(0)
		measurePair(b, func(i int) error {
			in := ask.Interpret(qs[i%len(qs)].q, now, h.names)
			if in.Intent != qs[i%len(qs)].intent {
				return fmt.Errorf("%q: intent %s (%s), want %s", qs[i%len(qs)].q, in.Intent, in.Reason, qs[i%len(qs)].intent)
			}
			return nil
		}, nil)
	})

	// list: one agent's events over today, the newest 50.
	b.Run("list", func(b *testing.B) {
		want := 50
		if h.fleet.Events < 200_000 {
			want = -1 // a small fleet's agent may have had fewer in a day
		}
		measurePair(b, func(i int) error {
			l, err := h.cl.Events(ctx, api.EventQuery{Agents: []string{h.agent(i)}, Since: since, Until: until, Limit: 50})
			return benchExpectEvents(l, err, want)
		}, func(i int) error {
			return h.ceilQuery(ctx, 50, benchFilter("agent_id", h.agent(i)), day, now)
		})
	})

	// count: today's events, grouped by agent.
	b.Run("count", func(b *testing.B) {
		measurePair(b, func(int) error {
			c, err := h.cl.EventCounts(ctx, api.EventCountQuery{Since: since, Until: until, GroupBy: []string{"agent"}})
			return benchExpectGroups(c, err)
		}, func(int) error {
			return h.ceilAggregate(ctx, []string{"agent_id"}, nil, day, now)
		})
	})

	// cause: the latest node_crashed of a node, its detail (causes and effects), and
	// the context window before it: the agent's events and the cluster's.
	b.Run("cause", func(b *testing.B) {
		measurePair(b, func(i int) error {
			return h.chainAPI(ctx, h.node(i), events.NodeCrashed)
		}, func(i int) error {
			return h.ceilChain(ctx, h.node(i), events.NodeCrashed)
		})
	})

	// The same through POST /v1/ask, once it is on the branch.
	for k, name := range []string{"ask-history", "ask-count", "ask-cause"} {
		b.Run(name, func(b *testing.B) {
			h.skipWithoutAsk(b)
			measurePair(b, func(i int) error {
				q := h.questions(i)[k]
				resp, err := h.cl.Ask(ctx, &api.AskRequest{Question: q.q, Now: now.Format(time.RFC3339)})
				if err != nil {
					return fmt.Errorf("ask %q: %w", q.q, err)
				}
				if resp.Interpretation.Intent != q.intent || resp.Answer.Kind == api.AnswerNone || len(resp.Partial) > 0 {
					return fmt.Errorf("ask %q: intent %s, answer %s (%s), partial %q: %s",
						q.q, resp.Interpretation.Intent, resp.Answer.Kind, resp.Answer.Reason, resp.Partial, resp.Summary)
				}
				return nil
			}, func(i int) error {
				switch k {
				case 0: // the agent's events today, and their counts by type
					if err := h.ceilQuery(ctx, 100, benchFilter("agent_id", h.agent(6)), day, now); err != nil {
						return err
					}
					return h.ceilAggregate(ctx, []string{"type"}, benchFilter("agent_id", h.agent(6)), day, now)
				case 1: // today's crashes by agent
					return h.ceilAggregate(ctx, []string{"agent_id"}, benchFilter("type", string(events.NodeCrashed)), day, now)
				}
				// the node's latest restart, its causes and effects, the window before it
				return h.ceilChain(ctx, h.node(i), events.NodeRestarted)
			})
		})
	}
}

// askBench is a server whose event store is the fleet's, and the fleet.
type askBench struct {
	fleet *benchFleet
	srv   *Server
	cl    *api.Client
	store gridpb.StorageClient
	// now is the last second of fleet.Day: the benchmarks' "now".
	now time.Time
	// names are the agents and nodes the state knows, as ask takes them.
	names ask.Names
}

func newAskBench(b testing.TB) *askBench {
	f := loadOrBuildFleet(b)
	// A copy of the fleet's store: this benchmark's restore adds an event to it.
	dir := filepath.Join(b.TempDir(), "store")
	if err := cloneStoreDir(filepath.Join(f.dir, "store"), dir); err != nil {
		b.Fatal(err)
	}
	addr, store, stop, err := startBenchStorageNode(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stop() })
	settleBenchStore(store)

	cfg := testConfig(b, "ask", b.TempDir(), 1)
	cfg.Logger = hclog.NewNullLogger()
	cfg.EventStores = []string{addr}
	// No agent heartbeats here: the agents keep the status the history left them in,
	// rather than going offline under the benchmark (which would derive events).
	cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = 1000*time.Hour, 1000*time.Hour
	s := startServer(b, cfg)
	(&testCluster{t: b, servers: []*Server{s}}).leader()
	h := &askBench{fleet: f, srv: s, cl: apiClient(b, s), store: store, now: f.Day.Add(24*time.Hour - time.Second)}

	ctx := context.Background()
	archive, err := os.Open(filepath.Join(f.dir, "state.tar"))
	if err != nil {
		b.Fatal(err)
	}
	defer archive.Close()
	gridtest.WaitFor(b, 30*time.Second, "the fleet's state restored", func() error {
		if _, err := archive.Seek(0, 0); err != nil {
			return err
		}
		return h.cl.SnapshotRestore(ctx, archive)
	})
	// The restore carries this server's event pipeline forward (fsm.CarryForward): the
	// fleet's seqs continue with the restore's own cluster_restored event, which the
	// shipper then stores after the fleet's; acknowledging it covers the fleet's too,
	// which the store already holds.
	restored := f.Events + 1
	gridtest.WaitFor(b, 30*time.Second, "the restore's event shipped", func() error {
		meta, err := s.State().EventMeta()
		if err != nil {
			return err
		}
		if meta.LastSeq != restored || meta.ShippedSeq != restored {
			return fmt.Errorf("event counters: last seq %d, shipped %d; want %d (the fleet's %d and cluster_restored)",
				meta.LastSeq, meta.ShippedSeq, restored, f.Events)
		}
		return nil
	})
	// The store holds exactly those events, and the server reads them all.
	all, err := h.cl.EventCounts(ctx, api.EventCountQuery{})
	if err != nil || all.Total != restored || all.Partial != "" {
		b.Fatalf("GET /v1/events/aggregate counts %+v (%v), want %d events (a reused %s from another run? remove it)",
			all, err, restored, fleetDirEnv)
	}

	agents, err := s.State().Agents()
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range agents {
		h.names.Agents = append(h.names.Agents, a.Name)
	}
	nodes, err := s.State().Nodes("")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		h.names.Nodes = append(h.names.Nodes, ask.Node{ID: n.ID, Name: n.DisplayName(), Agent: n.Agent})
	}
	h.names = h.names.Indexed() // as the server holds them
	fmt.Fprintf(os.Stderr, "server restored %d agents and %d nodes; event store of %d events; today is %s\n",
		len(agents), len(nodes), f.Events, f.Day.Format(time.DateOnly))
	return h
}

// settleBenchStore waits until the store's size on disk stops changing, at most a
// minute: the compactions that a fill leaves running are no part of the figures.
func settleBenchStore(store gridpb.StorageClient) {
	var last uint64
	still := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && still < 4; time.Sleep(500 * time.Millisecond) {
		st, err := store.Stats(context.Background(), &gridpb.StatsRequest{})
		if err != nil {
			return
		}
		if st.GetDiskBytes() == last {
			still++
		} else {
			last, still = st.GetDiskBytes(), 0
		}
	}
}

type benchQuestion struct {
	q      string
	intent ask.Intent
}

// questions are the three questions of the target, about agent-007 and, rotating
// with i, a node of the fleet.
func (h *askBench) questions(i int) []benchQuestion {
	return []benchQuestion{
		{"what happened on " + h.agent(6) + " today", ask.IntentHistory},
		{"how many crashes per agent today", ask.IntentCount},
		{"why did " + h.node(i).Name + " restart", ask.IntentCause},
	}
}

func (h *askBench) agent(i int) string { return h.fleet.Agents[i%len(h.fleet.Agents)] }

func (h *askBench) node(i int) benchFleetNode { return h.fleet.Nodes[i%len(h.fleet.Nodes)] }

// skipWithoutAsk skips a benchmark of POST /v1/ask on a server without it.
func (h *askBench) skipWithoutAsk(b *testing.B) {
	_, err := h.cl.Ask(context.Background(), &api.AskRequest{Question: "how many crashes per agent today", Now: h.now.Format(time.RFC3339)})
	if api.IsNotFound(err) && strings.Contains(err.Error(), "no such endpoint") {
		b.Skip("POST /v1/ask is not served on this branch yet: ", err)
	}
}

// benchClusterTypes are the cluster's events, which a cause's context window includes.
var benchClusterTypes = []events.Type{events.ClusterHealthy, events.ClusterDegraded, events.ClusterCritical}

// chainAPI answers "why" through the HTTP API: the node's latest event of type t
// (the anchor), its detail, and the window before it on its agent and the cluster.
func (h *askBench) chainAPI(ctx context.Context, n benchFleetNode, t events.Type) error {
	l, err := h.cl.Events(ctx, api.EventQuery{Nodes: []string{n.Name}, Types: []events.Type{t}, Limit: 1})
	if err := benchExpectEvents(l, err, 1); err != nil {
		return err
	}
	anchor := l.Events[0]
	d, err := h.cl.Event(ctx, anchor.Seq)
	if err != nil {
		return err
	}
	if d.Partial != "" {
		return fmt.Errorf("GET /v1/event/%d: partial: %s", anchor.Seq, d.Partial)
	}
	since := anchor.Timestamp.Add(-ask.DefaultAnchorWindow).Format(time.RFC3339Nano)
	until := anchor.Timestamp.Add(time.Nanosecond).Format(time.RFC3339Nano)
	w, err := h.cl.Events(ctx, api.EventQuery{Agents: []string{n.Agent}, Since: since, Until: until})
	if err := benchExpectEvents(w, err, -1); err != nil {
		return err
	}
	c, err := h.cl.Events(ctx, api.EventQuery{Types: benchClusterTypes, Since: since, Until: until})
	return benchExpectEvents(c, err, -1)
}

// ceilChain is chainAPI straight to the storage node: the calls the server makes,
// without the server.
func (h *askBench) ceilChain(ctx context.Context, n benchFleetNode, t events.Type) error {
	q, err := h.store.Query(ctx, &gridpb.QueryRequest{
		Filters: slices.Concat(benchFilter("kind", events.KindEvent), benchFilter("node_id", n.ID), benchFilter("type", string(t))),
		Order:   gridpb.Order_ORDER_DESCENDING, Limit: 1,
	})
	if err != nil || len(q.GetConcepts()) != 1 {
		return fmt.Errorf("Query anchor: %d concepts, %v", len(q.GetConcepts()), err)
	}
	anchor := q.GetConcepts()[0]
	if _, err := h.store.GetConcept(ctx, &gridpb.GetConceptRequest{Id: anchor.GetId()}); err != nil {
		return err
	}
	// Its causes (a restart's crash), then its effects (a crash's restart).
	causes, err := h.store.Neighbors(ctx, &gridpb.NeighborsRequest{Id: anchor.GetId(), Direction: gridpb.Direction_DIRECTION_OUT,
		Types: []string{events.AssocCausedBy}, Limit: 1})
	if err != nil {
		return err
	}
	effects, err := h.store.Neighbors(ctx, &gridpb.NeighborsRequest{Id: anchor.GetId(), Direction: gridpb.Direction_DIRECTION_IN,
		Types: []string{events.AssocCausedBy}, Limit: 10000})
	if err != nil {
		return err
	}
	for _, nb := range append(causes.GetNeighbors(), effects.GetNeighbors()...) {
		if _, err := h.store.GetConcept(ctx, &gridpb.GetConceptRequest{Id: nb.GetId()}); err != nil {
			return err
		}
	}
	at := anchor.GetTimestamp().AsTime()
	from, until := at.Add(-ask.DefaultAnchorWindow), at.Add(time.Nanosecond)
	if err := h.ceilQuery(ctx, 100, benchFilter("agent_id", n.Agent), from, until); err != nil {
		return err
	}
	types := make([]string, len(benchClusterTypes))
	for i, t := range benchClusterTypes {
		types[i] = string(t)
	}
	return h.ceilQuery(ctx, 100, benchFilter("type", types...), from, until)
}

// ceilQuery is the store query of a listing: event concepts that match filters in
// [start, end), the newest limit.
func (h *askBench) ceilQuery(ctx context.Context, limit int, filters []*gridpb.Filter, start, end time.Time) error {
	resp, err := h.store.Query(ctx, &gridpb.QueryRequest{
		Filters: append(benchFilter("kind", events.KindEvent), filters...),
		Start:   timestamppb.New(start), End: timestamppb.New(end),
		Order: gridpb.Order_ORDER_DESCENDING, Limit: uint32(limit),
	})
	if err != nil {
		return err
	}
	if len(resp.GetConcepts()) == 0 && limit == 50 {
		return fmt.Errorf("Query: no concepts")
	}
	return nil
}

// ceilAggregate is the store aggregate of a count: event concepts that match filters
// in [start, end), grouped by groupBy.
func (h *askBench) ceilAggregate(ctx context.Context, groupBy []string, filters []*gridpb.Filter, start, end time.Time) error {
	resp, err := h.store.Aggregate(ctx, &gridpb.AggregateRequest{
		Filters: append(benchFilter("kind", events.KindEvent), filters...),
		Start:   timestamppb.New(start), End: timestamppb.New(end), GroupBy: groupBy,
	})
	if err != nil {
		return err
	}
	if resp.GetTotal() == 0 {
		return fmt.Errorf("Aggregate: no events")
	}
	return nil
}

func benchFilter(attr string, values ...string) []*gridpb.Filter {
	return []*gridpb.Filter{{Attribute: attr, Values: values}}
}

// benchExpectEvents checks a listing: no error, whole, and want events (-1: any).
func benchExpectEvents(l *api.EventList, err error, want int) error {
	switch {
	case err != nil:
		return err
	case l.Partial != "":
		return fmt.Errorf("partial listing: %s", l.Partial)
	case want >= 0 && len(l.Events) != want:
		return fmt.Errorf("listed %d events, want %d", len(l.Events), want)
	}
	return nil
}

func benchExpectGroups(c *api.EventCounts, err error) error {
	switch {
	case err != nil:
		return err
	case c.Partial != "":
		return fmt.Errorf("partial counts: %s", c.Partial)
	case len(c.Groups) < fleetAgents || c.Total == 0:
		return fmt.Errorf("counted %d events in %d groups, want a group per agent", c.Total, len(c.Groups))
	}
	return nil
}

// measurePair runs figure and, if not nil, its ceiling once per iteration, the
// first of the two alternating, and reports the p50 and p99 of each in ms and the
// ratios of the p50s and of the p99s.
func measurePair(b *testing.B, figure, ceiling func(i int) error) {
	fig := make([]time.Duration, 0, b.N)
	ceil := make([]time.Duration, 0, b.N)
	timed := func(f func(int) error, i int, into *[]time.Duration) {
		t0 := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(t0))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ceiling != nil && i%2 == 1 {
			timed(ceiling, i, &ceil)
		}
		timed(figure, i, &fig)
		if ceiling != nil && i%2 == 0 {
			timed(ceiling, i, &ceil)
		}
	}
	b.StopTimer()
	p50, p99 := benchPercentiles(fig)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	if ceiling != nil {
		c50, c99 := benchPercentiles(ceil)
		b.ReportMetric(c50, "ceil-p50-ms")
		b.ReportMetric(c99, "ceil-p99-ms")
		b.ReportMetric(p50/c50, "p50-ratio")
		b.ReportMetric(p99/c99, "p99-ratio")
	}
}

// benchPercentiles returns the median and the 99th percentile of ds, in ms.
func benchPercentiles(ds []time.Duration) (p50, p99 float64) {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	return ms(ds[len(ds)/2]), ms(ds[len(ds)*99/100])
}

// TestAskBenchSetup runs BenchmarkAsk1M's setup on a small fleet (10,000 events): its
// state restored into a real server over a copy of the fleet's store, and the
// benchmark's three questions answered through the HTTP API. The benchmark runs only
// by hand (scripts/bench-ask); this keeps it from breaking unnoticed.
func TestAskBenchSetup(t *testing.T) {
	t.Setenv(fleetEventsEnv, "10000")
	t.Setenv(fleetDirEnv, "")
	h := newAskBench(t)
	ctx := context.Background()
	for _, q := range h.questions(1) {
		resp, err := h.cl.Ask(ctx, &api.AskRequest{Question: q.q, Now: h.now.Format(time.RFC3339)})
		if err != nil {
			t.Fatalf("ask %q: %v", q.q, err)
		}
		if resp.Interpretation.Intent != q.intent || resp.Answer.Kind == api.AnswerNone || len(resp.Partial) > 0 {
			t.Errorf("ask %q: intent %s, answer %s (%s), partial %q: %s",
				q.q, resp.Interpretation.Intent, resp.Answer.Kind, resp.Answer.Reason, resp.Partial, resp.Summary)
		}
	}
}
