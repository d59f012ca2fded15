package storage

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gridpb "github.com/sutragrid/grid/proto"
)

// FuzzRequests sends arbitrary requests of every kind to the service over a real
// store: none may panic or fail with anything but a client error, and whatever is
// accepted must leave the store consistent.
func FuzzRequests(f *testing.F) {
	seeds := []proto.Message{
		&gridpb.LearnConceptRequest{Id: "a", Content: []byte("x y"), Attributes: map[string]string{"k": "v"}, Timestamp: ts(epoch)},
		&gridpb.LearnBatchRequest{Concepts: []*gridpb.Concept{{Id: "b", Attributes: map[string]string{"k": "w"}}},
			Associations: []*gridpb.Association{{Source: "a", Target: "b", Type: "t"}}},
		&gridpb.QueryRequest{Filters: []*gridpb.Filter{{Attribute: "k", Values: []string{"v", "w"}}}, Order: gridpb.Order_ORDER_DESCENDING, Limit: 1},
		&gridpb.QueryRequest{PageToken: "AQAAAAAAAAAAAAAAAAAAAAA"},
		&gridpb.AggregateRequest{GroupBy: []string{"k"}, Bucket: "1h", Start: ts(epoch), End: ts(epoch + 1)},
		&gridpb.NeighborsRequest{Id: "a", Types: []string{"t"}},
		&gridpb.FindPathRequest{Source: "a", Target: "b", MaxDepth: 3},
		&gridpb.TextSearchRequest{Query: "x"},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	s, err := OpenStore(f.TempDir(), StoreOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	svc := &service{store: s, v: validator{maxContentBytes: 4096, now: time.Now}, logger: hclog.NewNullLogger()}
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		var err error
		switch kind % 8 {
		case 0:
			var m gridpb.LearnConceptRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.LearnConcept(ctx, &m)
			}
		case 1:
			var m gridpb.LearnBatchRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.LearnBatch(ctx, &m)
			}
		case 2:
			var m gridpb.QueryRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.Query(ctx, &m)
			}
		case 3:
			var m gridpb.AggregateRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.Aggregate(ctx, &m)
			}
		case 4:
			var m gridpb.NeighborsRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.Neighbors(ctx, &m)
			}
		case 5:
			var m gridpb.FindPathRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.FindPath(ctx, &m)
			}
		case 6:
			var m gridpb.TextSearchRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.TextSearch(ctx, &m)
			}
		case 7:
			var m gridpb.LearnAssociationRequest
			if proto.Unmarshal(data, &m) == nil {
				_, err = svc.LearnAssociation(ctx, &m)
			}
		}
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted:
		default:
			t.Fatalf("kind %d: %v", kind%8, err)
		}
		// The counters agree with the data.
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Aggregate(AggregateSpec{QuerySpec: QuerySpec{Start: MinTime, End: MaxTime}})
		if err != nil || int64(res.Total) != st.Concepts {
			t.Fatalf("aggregate total %d, stats %d, %v", res.Total, st.Concepts, err)
		}
	})
}
