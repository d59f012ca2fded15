package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"
)

// Benchmarks run against a real node over gRPC on loopback, with event-shaped data
// (helpers_test.go): ~250-byte JSON content, four attributes, two associations per
// concept. Every write is durable (fsynced) before it is acknowledged.
//
// The benchmarks on a store of 1,000,000 concepts build it once (about half a minute)
// and run only with GRID_BENCH_1M=1; scripts/bench-storage runs everything.

// throughput reports items/s and the CPU time the whole process (client, server and
// store) spent per item since start: on a shared machine, CPU per item is the steadier
// figure; two cores' worth of it bounds what a dedicated 2-core machine can do.
func throughput(b *testing.B, items int, start time.Time, cpu0 time.Duration) {
	b.ReportMetric(float64(items)/time.Since(start).Seconds(), "concepts/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(items), "cpu-µs/concept")
	}
}

// benchClients dials n connections to srv.
func benchClients(b *testing.B, srv *Server, n int) []gridpb.StorageClient {
	var cs []gridpb.StorageClient
	for i := 0; i < n; i++ {
		conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		cs = append(cs, gridpb.NewStorageClient(conn))
	}
	return cs
}

// BenchmarkLearnBatch sends batches of 1,000 concepts (and 2,000 associations) from
// a few concurrent clients, as a shipper with several batches in flight would.
func BenchmarkLearnBatch(b *testing.B) {
	for _, clients := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			_, srv := startTestServer(b, nil)
			cs := benchClients(b, srv, clients)
			const size = 1000
			reqs := make([]*gridpb.LearnBatchRequest, b.N)
			for i := range reqs {
				concepts, assocs := eventBatch(i*size, size, time.Millisecond)
				reqs[i] = toProtoBatch(concepts, assocs)
			}
			var next atomic.Int64
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Add(1)
				go func(c gridpb.StorageClient) {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= len(reqs) {
							return
						}
						res, err := c.LearnBatch(context.Background(), reqs[i])
						if err != nil || res.ConceptsCreated != size {
							b.Errorf("LearnBatch: %v %v", res, err)
							return
						}
					}
				}(c)
			}
			wg.Wait()
			throughput(b, b.N*size, start, cpu0)
		})
	}
}

// BenchmarkLearnConcept16 sends single concepts from 16 concurrent clients.
func BenchmarkLearnConcept16(b *testing.B) {
	_, srv := startTestServer(b, nil)
	cs := benchClients(b, srv, 4)
	reqs := make([]*gridpb.LearnConceptRequest, b.N)
	for i := range reqs {
		c := eventConcept(i, epoch+int64(i)*int64(time.Millisecond))
		p := toProtoConcept(&c)
		reqs[i] = &gridpb.LearnConceptRequest{Id: p.Id, Content: p.Content, Attributes: p.Attributes,
			Timestamp: p.Timestamp, Strength: p.Strength, Confidence: p.Confidence}
	}
	var next atomic.Int64
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(c gridpb.StorageClient) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				if _, err := c.LearnConcept(context.Background(), reqs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}(cs[w%len(cs)])
	}
	wg.Wait()
	throughput(b, b.N, start, cpu0)
}

// The 1M store: events 0.864 s apart, so 10 days of 100,000 events each.
const (
	bench1MConcepts = 1_000_000
	bench1MStep     = 864 * time.Millisecond
)

var (
	bench1MOnce   sync.Once
	bench1MServer *Server
	bench1MDir    string
	bench1MErr    error
)

// store1M returns a node holding the 1M store, building it on first use.
func store1M(b *testing.B) (*Server, gridpb.StorageClient) {
	if os.Getenv("GRID_BENCH_1M") == "" {
		b.Skip("set GRID_BENCH_1M=1 to run benchmarks on a store of 1,000,000 concepts")
	}
	bench1MOnce.Do(func() {
		bench1MDir, bench1MErr = os.MkdirTemp("", "grid-bench-1m-")
		if bench1MErr != nil {
			return
		}
		cfg := DefaultConfig()
		cfg.Port, cfg.DataDir = 0, bench1MDir
		bench1MServer, bench1MErr = New(cfg)
		if bench1MErr != nil {
			return
		}
		go bench1MServer.grpc.Serve(bench1MServer.lis)
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		const size = 1000
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					from := int(next.Add(size)) - size
					if from >= bench1MConcepts {
						return
					}
					cs, as := eventBatch(from, size, bench1MStep)
					if _, err := bench1MServer.store.Write(cs, as); err != nil {
						bench1MErr = err
						return
					}
				}
			}()
		}
		wg.Wait()
		if bench1MErr == nil {
			bench1MErr = bench1MServer.store.Flush()
		}
		fmt.Fprintf(os.Stderr, "built a store of %d concepts in %s\n", bench1MConcepts, time.Since(start).Round(time.Second))
		// Reads are measured on the store at rest, not competing with the compactions
		// that the build leaves running.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if bench1MServer.store.db.Metrics().Compact.NumInProgress == 0 {
				break
			}
		}
	})
	if bench1MErr != nil {
		b.Fatal(bench1MErr)
	}
	return bench1MServer, benchClients(b, bench1MServer, 1)[0]
}

func closeStore1M() {
	if bench1MServer != nil {
		bench1MServer.Close()
	}
	if bench1MDir != "" {
		os.RemoveAll(bench1MDir)
	}
}

// measure runs op b.N times and reports the median and 99th percentile latency.
func measure(b *testing.B, op func(i int)) {
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		op(i)
		lat[i] = time.Since(t)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func day1M(d int) (*timestamppb.Timestamp, *timestamppb.Timestamp) {
	start := epoch + int64(d)*int64(24*time.Hour)
	return ts(start), ts(start + int64(24*time.Hour))
}

// BenchmarkQuery1M: one agent's events in a day, newest first, 100 per page: the
// event store's "what happened on agent X today".
func BenchmarkQuery1M(b *testing.B) {
	cases := []struct {
		name    string
		filters func(i int) []*gridpb.Filter
	}{
		{"agent", func(i int) []*gridpb.Filter {
			return []*gridpb.Filter{{Attribute: "agent_id", Values: []string{fmt.Sprintf("agent-%03d", i%testAgents)}}}
		}},
		{"agent+type", func(i int) []*gridpb.Filter {
			return []*gridpb.Filter{
				{Attribute: "agent_id", Values: []string{fmt.Sprintf("agent-%03d", i%testAgents)}},
				{Attribute: "type", Values: []string{"spawn_failed", "node_crashed", "stop_failed"}},
			}
		}},
		{"none", func(int) []*gridpb.Filter { return nil }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			_, client := store1M(b)
			rng := rand.New(rand.NewPCG(1, 2))
			measure(b, func(i int) {
				start, end := day1M(rng.IntN(10))
				resp, err := client.Query(context.Background(), &gridpb.QueryRequest{
					Start: start, End: end, Filters: c.filters(i),
					Order: gridpb.Order_ORDER_DESCENDING, Limit: 100,
				})
				if err != nil || len(resp.Concepts) != 100 {
					b.Fatalf("Query: %d results, %v", len(resp.GetConcepts()), err)
				}
			})
		})
	}
}

// BenchmarkAggregate1M counts a day's events by type (100,000 of them), and for
// comparison all 1,000,000, and one agent's day.
func BenchmarkAggregate1M(b *testing.B) {
	cases := []struct {
		name string
		req  func(rng *rand.Rand) *gridpb.AggregateRequest
		want uint64
	}{
		{"day-by-type", func(rng *rand.Rand) *gridpb.AggregateRequest {
			start, end := day1M(rng.IntN(10))
			return &gridpb.AggregateRequest{Start: start, End: end, GroupBy: []string{"type"}}
		}, 100_000},
		{"day-by-type-hourly", func(rng *rand.Rand) *gridpb.AggregateRequest {
			start, end := day1M(rng.IntN(10))
			return &gridpb.AggregateRequest{Start: start, End: end, GroupBy: []string{"type"}, Bucket: "1h"}
		}, 100_000},
		{"day-agent-by-type", func(rng *rand.Rand) *gridpb.AggregateRequest {
			start, end := day1M(rng.IntN(10))
			return &gridpb.AggregateRequest{Start: start, End: end, GroupBy: []string{"type"},
				Filters: []*gridpb.Filter{{Attribute: "agent_id", Values: []string{"agent-004"}}}}
		}, 5000},
		{"all-by-type", func(*rand.Rand) *gridpb.AggregateRequest {
			return &gridpb.AggregateRequest{GroupBy: []string{"type"}}
		}, bench1MConcepts},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			_, client := store1M(b)
			rng := rand.New(rand.NewPCG(1, 2))
			measure(b, func(int) {
				resp, err := client.Aggregate(context.Background(), c.req(rng))
				if err != nil || resp.Total != c.want {
					b.Fatalf("Aggregate: total %d, want %d, %v", resp.GetTotal(), c.want, err)
				}
			})
		})
	}
}

// BenchmarkGetConcept1M reads random concepts.
func BenchmarkGetConcept1M(b *testing.B) {
	_, client := store1M(b)
	rng := rand.New(rand.NewPCG(1, 2))
	measure(b, func(int) {
		if _, err := client.GetConcept(context.Background(), &gridpb.GetConceptRequest{Id: eventID(rng.IntN(bench1MConcepts))}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkTextSearch1M searches the 1M store's content for a rare and a common word.
func BenchmarkTextSearch1M(b *testing.B) {
	for _, q := range []string{"host-007 crashed", "spawn_failed"} {
		b.Run(q, func(b *testing.B) {
			_, client := store1M(b)
			measure(b, func(int) {
				if _, err := client.TextSearch(context.Background(), &gridpb.TextSearchRequest{Query: q, Limit: 10}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkStoreWrite is BenchmarkLearnBatch without gRPC: two writers calling
// Store.Write with batches of 1,000 concepts.
func BenchmarkStoreWrite(b *testing.B) {
	s := openTestStore(b)
	const size = 1000
	type batch struct {
		cs []Concept
		as []Association
	}
	batches := make([]batch, b.N)
	for i := range batches {
		batches[i].cs, batches[i].as = eventBatch(i*size, size, time.Millisecond)
	}
	var next atomic.Int64
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				if _, err := s.Write(batches[i].cs, batches[i].as); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	throughput(b, b.N*size, start, cpu0)
}
