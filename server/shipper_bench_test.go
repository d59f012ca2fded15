package server

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/storage"
)

// benchStore starts a real storage node in-process as the event store.
func benchStore(b *testing.B) (string, gridpb.StorageClient) {
	cfg := storage.DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.BindAddr = "127.0.0.1"
	cfg.Port = 0
	srv, err := storage.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done }) // Serve closes the store when ctx ends
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return srv.Addr().String(), gridpb.NewStorageClient(conn)
}

// fillOutbox derives n events (sampled heartbeats of 100 agents) through Raft.
func fillOutbox(b *testing.B, s *Server, n int) {
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := s.Apply(ctx, &fsm.RegisterAgent{Name: fmt.Sprintf("agent-%03d", i), Address: deadAgentAddr}); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				cmd := &fsm.SampleHeartbeat{Name: fmt.Sprintf("agent-%03d", i%100), LastSeen: time.Now()}
				if _, err := s.Apply(ctx, cmd); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkShipEvents measures events shipped from the outbox to durable in the event
// stores: a real one-server Raft cluster with an outbox of b.N events (derived through
// Raft beforehand, not timed), drained by the shipper's own steps (a check of the
// store, a LearnBatch of 1,000 to a real storage node, then an acknowledgement
// through Raft), to one store, and to two at once (each store its own shipper, as on
// a leader; events/s counts each event once, when both stores have it).
//
// Beside it is its ceiling (learnbatch-events/s): the same events as the shipper lays
// them out, in batches of shipBatch, sent with LearnBatch one after another straight
// into a fresh store of the same configuration: no Raft, no checks, and no encoding
// while timed. The two take turns, in rounds, each round's shipping ending when its
// acknowledgements are committed: on a shared machine the load changes from one
// second to the next, and a ratio of figures taken at different times says little.
func BenchmarkShipEvents(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("stores=%d", n), func(b *testing.B) { benchShip(b, n) })
	}
}

// outboxServer starts a one-server cluster without event stores (the shipper does
// not run) and fills its outbox with n events.
func outboxServer(b *testing.B, n int) *Server {
	cfg := testConfig(b, "ship", b.TempDir(), 1)
	cfg.Logger = hclog.NewNullLogger()
	s := startServer(b, cfg)
	(&testCluster{t: b, servers: []*Server{s}}).leader()
	fillOutbox(b, s, n)
	return s
}

// outboxRequests lays out the outbox of s as the shipper does, in batches of
// shipBatch, and returns the requests with the last seq each carries.
func outboxRequests(b *testing.B, s *Server) ([]*gridpb.LearnBatchRequest, []uint64) {
	var reqs []*gridpb.LearnBatchRequest
	var lasts []uint64
	for after := uint64(0); ; {
		evs, err := s.State().Outbox(after, shipBatch)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			return reqs, lasts
		}
		req, err := eventBatch(evs)
		if err != nil {
			b.Fatal(err)
		}
		after = evs[len(evs)-1].Seq
		reqs, lasts = append(reqs, req), append(lasts, after)
	}
}

func benchShip(b *testing.B, stores int) {
	s := outboxServer(b, b.N)
	meta, _ := s.State().EventMeta()
	reqs, lasts := outboxRequests(b, s)
	_, ceilingStore := benchStore(b)
	var shs []*shipping
	for i := range stores {
		_, store := benchStore(b)
		key := fmt.Sprintf("bench-store-%d:1", i)
		if _, err := s.Apply(context.Background(), &fsm.EventStoreAdd{Addr: key}); err != nil {
			b.Fatal(err)
		}
		sh := s.newShipping(key, store)
		defer sh.close()
		shs = append(shs, sh)
	}
	const rounds = 6
	var shipping, ceiling time.Duration
	next := 0 // the ceiling's next request
	b.ResetTimer()
	for round := 1; round <= rounds; round++ {
		upTo := meta.LastSeq * uint64(round) / rounds
		shipping += shipUpTo(b, s, shs, upTo)
		t0 := time.Now()
		for ; next < len(reqs) && lasts[next] <= upTo; next++ {
			if _, err := ceilingStore.LearnBatch(context.Background(), reqs[next]); err != nil {
				b.Fatal(err)
			}
		}
		ceiling += time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(meta.LastSeq)/shipping.Seconds(), "events/s")
	b.ReportMetric(float64(lasts[len(lasts)-1])/ceiling.Seconds(), "learnbatch-events/s")
	b.ReportMetric(100*ceiling.Seconds()/shipping.Seconds(), "%-of-learnbatch")
}

// shipUpTo has each shipper ship, as the shipper's loop does, until it sent every
// event up to upTo and its acknowledgements are committed, and returns how long
// that took.
func shipUpTo(b *testing.B, s *Server, shs []*shipping, upTo uint64) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for _, sh := range shs {
		wg.Go(func() {
			for sh.sent < upTo {
				// As the shipper's loop does: each batch after a check of the store.
				cur, _, _ := s.cursor(sh.key)
				if _, err := sh.step(context.Background(), cur); err != nil {
					b.Error(err)
					return
				}
			}
			if err := sh.drain(context.Background()); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkCommitToQueryable measures, under a steady light load (one writer, one
// command at a time), the time from a command's commit until its event can be read
// from the event store, with the shipper running as in production.
func BenchmarkCommitToQueryable(b *testing.B) {
	addr, store := benchStore(b)
	cfg := testConfig(b, "ship", b.TempDir(), 1)
	cfg.Logger = hclog.NewNullLogger()
	cfg.EventStores = []string{addr}
	s := startServer(b, cfg)
	(&testCluster{t: b, servers: []*Server{s}}).leader()
	ctx := context.Background()
	if _, err := s.Apply(ctx, &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr}); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Apply(ctx, &fsm.SampleHeartbeat{Name: "a1", LastSeen: time.Now()}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		meta, _ := s.State().EventMeta()
		id := events.EventID(meta.LastSeq)
		for {
			if _, err := store.GetConcept(ctx, &gridpb.GetConceptRequest{Id: id}); err == nil {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkEventListOneHour measures `grid event list -since=1h` (GET /v1/events with
// since=1h, newest 100) against an event store holding 1,000,000 events spread over ten
// days (so about 4,000 fall in the last hour). Filling the store takes a while, so the
// benchmark runs only with GRID_BENCH_1M=1 (scripts/bench-servers sets it).
func BenchmarkEventListOneHour(b *testing.B) {
	if os.Getenv("GRID_BENCH_1M") == "" {
		b.Skip("set GRID_BENCH_1M=1 to build the 1,000,000-event store")
	}
	addr, store := benchStore(b)
	const total, batch = 1_000_000, 1000
	now := time.Now().UTC()
	span := 10 * 24 * time.Hour
	types := []events.Type{events.SpawnRequested, events.SpawnSucceeded, events.NodeCrashed, events.NodeRestarted, events.StopRequested}
	for first := 1; first <= total; first += batch {
		evs := make([]*events.Event, 0, batch)
		for seq := first; seq < first+batch; seq++ {
			e := &events.Event{
				Seq: uint64(seq), Type: types[seq%len(types)],
				Timestamp: now.Add(-span + span/total*time.Duration(seq)),
				AgentID:   fmt.Sprintf("agent-%03d", seq%100), NodeID: fmt.Sprintf("node-%05d", seq%5000), Port: 50000 + seq%1000,
			}
			e.Description = events.Describe(e)
			evs = append(evs, e)
		}
		req, err := eventBatch(evs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.LearnBatch(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	cfg := testConfig(b, "list", b.TempDir(), 1)
	cfg.Logger = hclog.NewNullLogger()
	cfg.EventStores = []string{addr}
	s := startServer(b, cfg)
	(&testCluster{t: b, servers: []*Server{s}}).leader()
	cl := apiClient(b, s)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		list, err := cl.Events(ctx, api.EventQuery{Since: "1h"})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		if len(list.Events) != 100 {
			b.Fatalf("got %d events, want 100 (partial: %q)", len(list.Events), list.Partial)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
