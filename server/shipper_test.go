package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// sizeLimitedStore is an event store that refuses, as gRPC does, a LearnBatch larger
// than its limit, and records the event IDs of those it stores.
type sizeLimitedStore struct {
	gridpb.StorageClient // nil: only LearnBatch is called
	limit                int

	mu       sync.Mutex
	stored   []string
	refused  int
	largest  int
	requests int
}

func (s *sizeLimitedStore) LearnBatch(ctx context.Context, in *gridpb.LearnBatchRequest, _ ...grpc.CallOption) (*gridpb.LearnBatchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if n := proto.Size(in); n > s.limit {
		s.refused++
		return nil, status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, s.limit)
	}
	s.largest = max(s.largest, proto.Size(in))
	for _, c := range in.Concepts {
		if _, ok := events.SeqOf(c.Id); ok {
			s.stored = append(s.stored, c.Id)
		}
	}
	return &gridpb.LearnBatchResponse{}, nil
}

// testStoreKey adds an event store to s's state, for a shipper a test drives itself,
// and returns its key.
func testStoreKey(t testing.TB, s *Server) string {
	t.Helper()
	if _, err := s.Apply(context.Background(), &fsm.EventStoreAdd{Addr: "test-store:1"}); err != nil {
		t.Fatal(err)
	}
	return "test-store:1"
}

func TestShipperSplitsBatchesByBytes(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name string
		// limit is the store's; maxBytes the shipper's starting bound.
		limit, maxBytes int
		wantRefused     bool
	}{
		{"bound under the store's limit", 64 << 10, 32 << 10, false},
		{"store's limit under the bound", 70 << 10, 256 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "ship", t.TempDir(), 1)
			cfg.Logger = hclog.NewNullLogger()
			s := startServer(t, cfg) // no EventStore: the shipper does not run, the outbox fills
			(&testCluster{t: t, servers: []*Server{s}}).leader()
			ctx := context.Background()
			if _, err := s.Apply(ctx, &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr}); err != nil {
				t.Fatal(err)
			}
			for range n {
				if _, err := s.Apply(ctx, &fsm.SampleHeartbeat{Name: "a1", LastSeen: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			meta, err := s.State().EventMeta()
			if err != nil {
				t.Fatal(err)
			}
			store := &sizeLimitedStore{limit: tc.limit}
			sh := s.newShipping(testStoreKey(t, s), store)
			defer sh.close()
			sh.maxBytes = tc.maxBytes
			for sh.sent < meta.LastSeq {
				cur, _, _ := s.cursor(sh.key)
				if _, err := sh.ship(ctx, cur, func() error { return nil }); err != nil && !tooLarge(err) {
					t.Fatal(err)
				}
				if store.requests > 10*n {
					t.Fatalf("%d requests and still not shipped: sent %d of %d", store.requests, sh.sent, meta.LastSeq)
				}
			}
			if err := sh.drain(ctx); err != nil {
				t.Fatal(err)
			}
			// Exactly once, in order.
			if len(store.stored) != int(meta.LastSeq) {
				t.Fatalf("%d events stored, want %d", len(store.stored), meta.LastSeq)
			}
			for i, id := range store.stored {
				if want := events.EventID(uint64(i + 1)); id != want {
					t.Fatalf("stored[%d] = %s, want %s", i, id, want)
				}
			}
			if store.requests < 3 {
				t.Fatalf("%d requests: the outbox of %d events was not split", store.requests, meta.LastSeq)
			}
			if got := store.refused > 0; got != tc.wantRefused {
				t.Fatalf("%d batches refused as too large, want refusals %v", store.refused, tc.wantRefused)
			}
			if store.largest > min(tc.limit, tc.maxBytes) {
				t.Fatalf("a stored batch of %d bytes, over %d", store.largest, min(tc.limit, tc.maxBytes))
			}
			t.Logf("%d events in %d requests (%d refused), largest %d bytes, bound now %d",
				len(store.stored), store.requests, store.refused, store.largest, sh.maxBytes)
		})
	}
}
