package storage

import (
	"context"
	"testing"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
)

// countKeys counts the keys with a one-byte table tag.
func countKeys(t *testing.T, s *Store, tag byte) int {
	t.Helper()
	it, err := s.iter([]byte{tag}, []byte{tag + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func TestExpireBefore(t *testing.T) {
	s := openTestStore(t)
	// Two writes, so two text segments: one all old, one all new.
	cs, as := eventBatch(0, 50, time.Minute)
	mustWrite(t, s, cs, as)
	cs, as = eventBatch(50, 50, time.Minute)
	mustWrite(t, s, cs, as)
	if n := countKeys(t, s, tagSegment); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}

	cutoff := epoch + 50*int64(time.Minute)
	n, err := s.ExpireBefore(context.Background(), cutoff)
	if err != nil || n != 50 {
		t.Fatalf("ExpireBefore: %d, %v", n, err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Left: 50 agent -> event associations, and the causes of events 51 to 99.
	if st.Concepts != 50 || st.Associations != 99 || st.Oldest != cutoff {
		t.Fatalf("stats: %+v", st)
	}
	for _, c := range []struct {
		tag  byte
		want int
	}{
		{tagConcept, 50}, {tagTime, 50}, {tagAttr, 200}, {tagOut, 99}, {tagIn, 99}, {tagSegment, 1}, {tagDocs, 1},
	} {
		if got := countKeys(t, s, c.tag); got != c.want {
			t.Errorf("%c keys: %d, want %d", c.tag, got, c.want)
		}
	}
	if _, err := s.Get(eventID(49)); err != ErrNotFound {
		t.Fatalf("expired concept: %v", err)
	}
	// The oldest kept concept keeps its agent and its effect, and loses its cause.
	if ns, _ := s.Neighbors(eventID(50), Both, nil, 100); len(ns) != 2 || ns[0].ID != eventID(51) || ns[1].ID != "agent-010" {
		t.Fatalf("neighbors of the oldest kept concept: %+v", ns)
	}
	res, err := s.Aggregate(AggregateSpec{QuerySpec: QuerySpec{Start: MinTime, End: MaxTime}, GroupBy: []string{"agent_id"}})
	if err != nil || res.Total != 50 {
		t.Fatalf("aggregate after expiry: %+v %v", res, err)
	}
	if rs, _ := s.Search("agent", 1000); len(rs) != 50 {
		t.Fatalf("search finds %d concepts, want 50", len(rs))
	}

	// Again: nothing more to do.
	if n, err := s.ExpireBefore(context.Background(), cutoff); err != nil || n != 0 {
		t.Fatalf("second ExpireBefore: %d, %v", n, err)
	}
}

func TestRetentionRunsInBackground(t *testing.T) {
	now := epoch + 100*int64(time.Minute)
	client, _ := startTestServer(t, func(c *Config) {
		c.Retention = 30 * time.Minute
		c.RetentionInterval = 5 * time.Millisecond
		c.Now = func() time.Time { return time.Unix(0, now) }
	})
	ctx := context.Background()
	cs, as := eventBatch(0, 100, time.Minute)
	if _, err := client.LearnBatch(ctx, toProtoBatch(cs, as)); err != nil {
		t.Fatal(err)
	}
	// Concepts before minute 70 go; wait for retention to get there.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := client.Stats(ctx, &gridpb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Concepts == 30 {
			if st.Oldest.AsTime().UnixNano() != epoch+70*int64(time.Minute) || st.RetentionSeconds != 1800 {
				t.Fatalf("stats: %v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not run: %d concepts", st.Concepts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := client.Query(ctx, &gridpb.QueryRequest{Limit: 1000})
	if err != nil || len(resp.Concepts) != 30 || resp.Concepts[0].Id != eventID(70) {
		t.Fatalf("query after retention: %d concepts, %v", len(resp.Concepts), err)
	}
}
