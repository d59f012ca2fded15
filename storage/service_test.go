package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"

	"github.com/sutragrid/grid/auth"
)

func TestServiceWritesAndReads(t *testing.T) {
	client, srv := startTestServer(t, nil)
	ctx := context.Background()

	resp, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{
		Id: "c1", Content: []byte("hello world"), Attributes: map[string]string{"type": "greeting"},
		Timestamp: ts(epoch), Strength: 0.5, Confidence: 0.75,
	})
	if err != nil || !resp.Created {
		t.Fatalf("LearnConcept: %v %v", resp, err)
	}
	resp, err = client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "c1", Content: []byte("other")})
	if err != nil || resp.Created {
		t.Fatalf("LearnConcept again: %v %v", resp, err)
	}
	got, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	want := &gridpb.Concept{Id: "c1", Content: []byte("hello world"), Attributes: map[string]string{"type": "greeting"},
		Timestamp: ts(epoch), Strength: 0.5, Confidence: 0.75}
	if !proto.Equal(got.Concept, want) {
		t.Fatalf("GetConcept: %v, want %v", got.Concept, want)
	}
	_, err = client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetConcept of unknown ID: %v", err)
	}

	// A concept without a timestamp gets the time it arrived.
	before := time.Now()
	if _, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "c2"}); err != nil {
		t.Fatal(err)
	}
	c2, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: "c2"})
	if err != nil || c2.Concept.Timestamp.AsTime().Before(before) {
		t.Fatalf("c2: %v %v", c2, err)
	}

	a, err := client.LearnAssociation(ctx, &gridpb.LearnAssociationRequest{Source: "c1", Target: "c2", Type: "next", Timestamp: ts(epoch)})
	if err != nil || !a.Created {
		t.Fatalf("LearnAssociation: %v %v", a, err)
	}
	ns, err := client.Neighbors(ctx, &gridpb.NeighborsRequest{Id: "c2"})
	if err != nil || len(ns.Neighbors) != 1 || ns.Neighbors[0].Id != "c1" ||
		ns.Neighbors[0].Direction != gridpb.Direction_DIRECTION_IN || ns.Neighbors[0].Association.Type != "next" {
		t.Fatalf("Neighbors: %v %v", ns, err)
	}
	p, err := client.FindPath(ctx, &gridpb.FindPathRequest{Source: "c2", Target: "c1"})
	if err != nil || !p.Found || strings.Join(p.Path, ",") != "c2,c1" || len(p.Associations) != 1 {
		t.Fatalf("FindPath: %v %v", p, err)
	}
	sr, err := client.TextSearch(ctx, &gridpb.TextSearchRequest{Query: "WORLD"})
	if err != nil || len(sr.Results) != 1 || sr.Results[0].Concept.Id != "c1" {
		t.Fatalf("TextSearch: %v %v", sr, err)
	}

	st, err := client.Stats(ctx, &gridpb.StatsRequest{})
	if err != nil || st.Concepts != 2 || st.Associations != 1 || st.NodeId != srv.NodeID() || st.DiskBytes == 0 {
		t.Fatalf("Stats: %v %v", st, err)
	}
}

func TestServiceQueryPaging(t *testing.T) {
	client, _ := startTestServer(t, nil)
	ctx := context.Background()
	cs, as := eventBatch(0, 250, time.Minute)
	res, err := client.LearnBatch(ctx, toProtoBatch(cs, as))
	if err != nil || res.ConceptsCreated != 250 || res.AssociationsCreated != 499 {
		t.Fatalf("LearnBatch: %v %v", res, err)
	}
	// Resending the batch (as a shipper does after a failover) stores nothing twice.
	res, err = client.LearnBatch(ctx, toProtoBatch(cs, as))
	if err != nil || res.ConceptsExisting != 250 || res.AssociationsExisting != 499 || res.ConceptsCreated != 0 {
		t.Fatalf("LearnBatch again: %v %v", res, err)
	}

	// The event store's query: one agent's events, newest first, a page at a time.
	req := &gridpb.QueryRequest{
		Start:   ts(epoch + int64(10*time.Minute)),
		End:     ts(epoch + int64(240*time.Minute)),
		Filters: []*gridpb.Filter{{Attribute: "agent_id", Values: []string{"agent-002"}}},
		Order:   gridpb.Order_ORDER_DESCENDING,
		Limit:   4,
	}
	var got []string
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("too many pages")
		}
		resp, err := client.Query(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Concepts {
			got = append(got, c.Id)
			if c.Attributes["agent_id"] != "agent-002" {
				t.Fatalf("%s has agent %s", c.Id, c.Attributes["agent_id"])
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	// agent-002's events are i%20 == 2, in [10, 240): 222, 202, ..., 22.
	var want []string
	for i := 222; i >= 22; i -= 20 {
		want = append(want, eventID(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}

	// A token is tied to its query.
	req.PageToken = ""
	first, err := client.Query(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.PageToken = first.NextPageToken
	req.Order = gridpb.Order_ORDER_ASCENDING
	if _, err := client.Query(ctx, req); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "page_token") {
		t.Fatalf("token of another query: %v", err)
	}

	agg, err := client.Aggregate(ctx, &gridpb.AggregateRequest{GroupBy: []string{"severity"}, Bucket: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, g := range agg.Groups {
		sum += g.Count
		if len(g.Values) != 1 || g.Bucket == nil || g.Bucket.AsTime().Minute() != 0 {
			t.Fatalf("group %v", g)
		}
	}
	if agg.Total != 250 || sum != 250 {
		t.Fatalf("aggregate total %d, sum %d", agg.Total, sum)
	}
}

func TestServiceRejectsBadInput(t *testing.T) {
	client, _ := startTestServer(t, func(c *Config) { c.MaxContentBytes = 1000 })
	ctx := context.Background()
	long := strings.Repeat("x", MaxIDBytes+1)
	valid := &gridpb.Concept{Id: "ok"}
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"empty id", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{})
			return err
		}, "id"},
		{"long id", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: long})
			return err
		}, "id"},
		{"big content", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "a", Content: make([]byte, 1001)})
			return err
		}, "content"},
		{"empty attribute name", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "a", Attributes: map[string]string{"": "x"}})
			return err
		}, "attributes"},
		{"bad timestamp", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "a", Timestamp: &timestamppb.Timestamp{Nanos: -1}})
			return err
		}, "timestamp"},
		{"ancient timestamp", func() error {
			_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: "a", Timestamp: ts(-1 << 62)})
			return err
		}, "timestamp"},
		{"association without type", func() error {
			_, err := client.LearnAssociation(ctx, &gridpb.LearnAssociationRequest{Source: "a", Target: "b"})
			return err
		}, "type"},
		{"association without target", func() error {
			_, err := client.LearnAssociation(ctx, &gridpb.LearnAssociationRequest{Source: "a", Type: "t"})
			return err
		}, "target"},
		{"batch: bad concept", func() error {
			_, err := client.LearnBatch(ctx, &gridpb.LearnBatchRequest{Concepts: []*gridpb.Concept{valid, {Id: ""}}})
			return err
		}, "concepts[1].id"},
		{"batch: bad association", func() error {
			_, err := client.LearnBatch(ctx, &gridpb.LearnBatchRequest{Associations: []*gridpb.Association{{Source: "a", Target: long, Type: "t"}}})
			return err
		}, "associations[0].target"},
		{"get: empty id", func() error {
			_, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{})
			return err
		}, "id"},
		{"query: end before start", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Start: ts(epoch + 1), End: ts(epoch)})
			return err
		}, "end"},
		{"query: empty range", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Start: ts(epoch), End: ts(epoch)})
			return err
		}, "end"},
		{"query: filter without values", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Filters: []*gridpb.Filter{{Attribute: "type"}}})
			return err
		}, "filters[0].values"},
		{"query: filter without attribute", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Filters: []*gridpb.Filter{{Values: []string{"x"}}}})
			return err
		}, "filters[0].attribute"},
		{"query: limit", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Limit: MaxLimit + 1})
			return err
		}, "limit"},
		{"query: unknown order", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{Order: 7})
			return err
		}, "order"},
		{"query: garbage token", func() error {
			_, err := client.Query(ctx, &gridpb.QueryRequest{PageToken: "!!"})
			return err
		}, "page_token"},
		{"aggregate: unknown bucket", func() error {
			_, err := client.Aggregate(ctx, &gridpb.AggregateRequest{Bucket: "2m"})
			return err
		}, "bucket"},
		{"aggregate: empty group_by", func() error {
			_, err := client.Aggregate(ctx, &gridpb.AggregateRequest{GroupBy: []string{""}})
			return err
		}, "group_by[0]"},
		{"neighbors: unknown direction", func() error {
			_, err := client.Neighbors(ctx, &gridpb.NeighborsRequest{Id: "a", Direction: 9})
			return err
		}, "direction"},
		{"path: too deep", func() error {
			_, err := client.FindPath(ctx, &gridpb.FindPathRequest{Source: "a", Target: "b", MaxDepth: MaxPathDepth + 1})
			return err
		}, "max_depth"},
		{"search: no words", func() error {
			_, err := client.TextSearch(ctx, &gridpb.TextSearchRequest{Query: " ! "})
			return err
		}, "query"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, c.field+":") {
				t.Fatalf("message %q does not name field %q", msg, c.field)
			}
		})
	}
	// Nothing bad was stored, and the batch with one bad concept stored none.
	if _, err := client.GetConcept(ctx, &gridpb.GetConceptRequest{Id: "ok"}); status.Code(err) != codes.NotFound {
		t.Fatalf("part of a refused batch was stored: %v", err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	_, srv := startTestServer(t, nil)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	for _, name := range []string{"", "grid.storage.v1.Storage"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v", name, resp, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range resp.GetListServicesResponse().GetService() {
		found = found || s.Name == "grid.storage.v1.Storage"
	}
	if !found {
		t.Fatalf("reflection does not list the storage service: %v", resp)
	}
	stream.CloseSend()
}

func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	startTestServer(t, func(c *Config) { c.DataDir = dir })
	cfg := DefaultConfig()
	cfg.Port, cfg.DataDir = 0, dir
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second server on the same data dir: %v", err)
	}
}

func TestNodeIDIsKept(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Port, cfg.DataDir = 0, dir
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := s1.NodeID()
	s1.Close()
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s2.NodeID() != id {
		t.Fatalf("node ID changed from %s to %s", id, s2.NodeID())
	}
	s2.Close()
	cfg.NodeID = "someone-else"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("other node ID: %v", err)
	}
}

// refuseWrites refuses LearnConcept.
type refuseWrites struct{}

func (refuseWrites) Authorize(_ context.Context, a auth.Access) error {
	if strings.HasSuffix(a.Endpoint, "/LearnConcept") {
		return errors.New("no writes")
	}
	return nil
}

func TestAuthorizeHook(t *testing.T) {
	client, _ := startTestServer(t, func(c *Config) {
		c.Authorizer = refuseWrites{}
	})
	_, err := client.LearnConcept(context.Background(), &gridpb.LearnConceptRequest{Id: "a"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("LearnConcept: %v", err)
	}
	if _, err := client.Stats(context.Background(), &gridpb.StatsRequest{}); err != nil {
		t.Fatalf("Stats: %v", err)
	}
}

func TestLargePagesEndEarly(t *testing.T) {
	// Ten concepts of 1 MiB: a page of 100 would not fit gRPC's default 4 MiB, so
	// pages end early, and paging still returns everything.
	client, _ := startTestServer(t, nil)
	ctx := context.Background()
	big := make([]byte, DefaultMaxContentBytes)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	for i := 0; i < 10; i++ {
		_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: eventID(i), Content: big, Timestamp: ts(epoch + int64(i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	req := &gridpb.QueryRequest{Limit: 100}
	var got, pages int
	for {
		resp, err := client.Query(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Concepts) == 0 || len(resp.Concepts) > 3 {
			t.Fatalf("page of %d concepts", len(resp.Concepts))
		}
		got += len(resp.Concepts)
		pages++
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	if got != 10 || pages != 4 {
		t.Fatalf("%d concepts in %d pages", got, pages)
	}
	if _, err := client.TextSearch(ctx, &gridpb.TextSearchRequest{Query: "abcdefghijklmnopqrstuvwxyzabcdef", Limit: 100}); err != nil {
		t.Fatalf("TextSearch of large concepts: %v", err)
	}
}
