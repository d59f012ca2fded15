package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
)

// TestConcurrentWritersAndReaders runs writers that overlap (the same concepts and
// associations written by several at once, as when a shipper resends after a
// failover) beside readers, then checks that everything was stored exactly once.
func TestConcurrentWritersAndReaders(t *testing.T) {
	client, srv := startTestServer(t, nil)
	ctx := context.Background()
	const (
		total      = 1200
		batchSize  = 100
		batchers   = 4
		singles    = 8
		singleSpan = 200
	)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	// Batch writers: each writes all batches, starting at a different one.
	for w := 0; w < batchers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := total / batchSize
			for k := 0; k < n; k++ {
				from := ((k + w*n/batchers) % n) * batchSize
				cs, as := eventBatch(from, batchSize, time.Second)
				if _, err := client.LearnBatch(ctx, toProtoBatch(cs, as)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	// Single writers: each writes the same range of concepts one at a time.
	for w := 0; w < singles; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < singleSpan; i++ {
				k := (i + w*25) % singleSpan
				c := eventConcept(k, epoch+int64(k)*int64(time.Second))
				req := toProtoConcept(&c)
				_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: req.Id, Content: req.Content,
					Attributes: req.Attributes, Timestamp: req.Timestamp, Strength: req.Strength, Confidence: req.Confidence})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	// Readers, until the writers are done.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func(r int) {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 4 {
				case 0:
					_, err = client.Query(ctx, &gridpb.QueryRequest{Filters: []*gridpb.Filter{{Attribute: "agent_id", Values: []string{"agent-001"}}}, Order: gridpb.Order_ORDER_DESCENDING, Limit: 50})
				case 1:
					_, err = client.Aggregate(ctx, &gridpb.AggregateRequest{GroupBy: []string{"type"}, Bucket: "1h"})
				case 2:
					_, err = client.Neighbors(ctx, &gridpb.NeighborsRequest{Id: "agent-003", Limit: 20})
				case 3:
					_, err = client.TextSearch(ctx, &gridpb.TextSearchRequest{Query: "spawn failed", Limit: 5})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(r)
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	st, err := client.Stats(ctx, &gridpb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Concepts != total || st.Associations != 2*total-1 {
		t.Fatalf("stats: %d concepts, %d associations; want %d, %d", st.Concepts, st.Associations, total, 2*total-1)
	}
	agg, err := client.Aggregate(ctx, &gridpb.AggregateRequest{GroupBy: []string{"agent_id"}})
	if err != nil || agg.Total != total || len(agg.Groups) != testAgents {
		t.Fatalf("aggregate: total %d, %d groups, %v", agg.GetTotal(), len(agg.GetGroups()), err)
	}
	for _, g := range agg.Groups {
		if g.Count != total/testAgents {
			t.Fatalf("agent %s has %d concepts, want %d", g.Values[0], g.Count, total/testAgents)
		}
	}
	s := srv.store
	for _, c := range []struct {
		tag  byte
		want int
	}{{tagConcept, total}, {tagTime, total}, {tagAttr, 4 * total}, {tagOut, 2*total - 1}, {tagIn, 2*total - 1}} {
		if got := countKeys(t, s, c.tag); got != c.want {
			t.Errorf("%c keys: %d, want %d", c.tag, got, c.want)
		}
	}
}
