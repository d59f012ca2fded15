package eventquery

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

// recordingClient is a storage client that records the requests it gets and
// answers with what the test set. Calls it does not implement panic.
type recordingClient struct {
	gridpb.StorageClient
	reqs []proto.Message
	err  error

	concepts  []*gridpb.Concept
	next      string
	neighbors []*gridpb.Neighbor
	aggregate *gridpb.AggregateResponse
}

func (c *recordingClient) Query(_ context.Context, in *gridpb.QueryRequest, _ ...grpc.CallOption) (*gridpb.QueryResponse, error) {
	c.reqs = append(c.reqs, in)
	return &gridpb.QueryResponse{Concepts: c.concepts, NextPageToken: c.next}, c.err
}

func (c *recordingClient) GetConcept(_ context.Context, in *gridpb.GetConceptRequest, _ ...grpc.CallOption) (*gridpb.GetConceptResponse, error) {
	c.reqs = append(c.reqs, in)
	if c.err != nil {
		return nil, c.err
	}
	return &gridpb.GetConceptResponse{Concept: c.concepts[0]}, nil
}

func (c *recordingClient) Neighbors(_ context.Context, in *gridpb.NeighborsRequest, _ ...grpc.CallOption) (*gridpb.NeighborsResponse, error) {
	c.reqs = append(c.reqs, in)
	return &gridpb.NeighborsResponse{Neighbors: c.neighbors}, c.err
}

func (c *recordingClient) Aggregate(_ context.Context, in *gridpb.AggregateRequest, _ ...grpc.CallOption) (*gridpb.AggregateResponse, error) {
	c.reqs = append(c.reqs, in)
	return c.aggregate, c.err
}

// concept lays e out as the shipper does.
func concept(t *testing.T, e *events.Event) *gridpb.Concept {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return &gridpb.Concept{Id: e.ID(), Content: b, Attributes: e.Attributes(), Timestamp: timestamppb.New(e.Timestamp)}
}

func checkRequests(t *testing.T, name string, got []proto.Message, want ...proto.Message) {
	t.Helper()
	if !slices.EqualFunc(got, want, proto.Equal) {
		t.Errorf("%s: requests\n%v\nwant\n%v", name, got, want)
	}
}

var kindEvent = &gridpb.Filter{Attribute: "kind", Values: []string{"event"}}

func TestStorageQuery(t *testing.T) {
	h := history()
	c := &recordingClient{next: "p2", concepts: []*gridpb.Concept{
		concept(t, h[0]),
		{Id: events.EventID(2), Content: []byte("{")},              // not JSON
		{Id: events.EventID(9), Content: concept(t, h[2]).Content}, // another event's
		concept(t, h[3]),
	}}
	s := NewStorageStore(c)
	p, err := s.Query(context.Background(), StoreQuery{Filter: Filter{
		Agents: []string{"a1", "a2"}, Nodes: []string{"n1"}, Types: []events.Type{events.AgentDegraded},
		Severities: []events.Severity{events.SeverityWarning}, Start: base, End: base.Add(time.Hour),
	}, Desc: true, Limit: 5}, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if seqs(p.Events) != "[1 4]" || p.Bad != 2 || p.Next != "p2" || p.Events[1].Type != events.AgentDegraded {
		t.Errorf("page %+v", p)
	}
	checkRequests(t, "filtered", c.reqs, &gridpb.QueryRequest{
		Filters: []*gridpb.Filter{kindEvent,
			{Attribute: "agent_id", Values: []string{"a1", "a2"}},
			{Attribute: "node_id", Values: []string{"n1"}},
			{Attribute: "type", Values: []string{"agent_degraded"}},
			{Attribute: "severity", Values: []string{"warning"}},
		},
		Start: timestamppb.New(base), End: timestamppb.New(base.Add(time.Hour)),
		Order: gridpb.Order_ORDER_DESCENDING, Limit: 5, PageToken: "p1",
	})

	c.reqs = nil
	if _, err := s.Query(context.Background(), StoreQuery{Limit: 100}, ""); err != nil {
		t.Fatal(err)
	}
	checkRequests(t, "all", c.reqs, &gridpb.QueryRequest{Filters: []*gridpb.Filter{kindEvent}, Order: gridpb.Order_ORDER_ASCENDING, Limit: 100})
}

// TestStorageErrors: the store's errors say what went wrong for people, and a
// missing event is ErrNotFound.
func TestStorageErrors(t *testing.T) {
	for _, tc := range []struct {
		err      error
		msg      string
		notFound bool
	}{
		{status.Error(codes.NotFound, "no concept"), "event not found", true},
		{status.Error(codes.Unavailable, "connection refused"), "event store unreachable: connection refused", false},
		{status.Error(codes.DeadlineExceeded, "too slow"), "event store unreachable: too slow", false},
		{status.Error(codes.Internal, "disk on fire"), "event store error: Internal: disk on fire", false},
		{errors.New("odd"), "event store error: odd", false},
	} {
		_, err := NewStorageStore(&recordingClient{err: tc.err}).Event(context.Background(), 3)
		if err == nil || err.Error() != tc.msg || errors.Is(err, ErrNotFound) != tc.notFound {
			t.Errorf("%v: %v, want %q (not found: %v)", tc.err, err, tc.msg, tc.notFound)
		}
	}
}

func TestStorageEventAndEffects(t *testing.T) {
	h := causal()
	c := &recordingClient{concepts: []*gridpb.Concept{concept(t, h[1])}, neighbors: []*gridpb.Neighbor{
		{Id: events.EventID(2)}, {Id: "agent:a1"}, {Id: events.EventID(5)},
	}}
	s := NewStorageStore(c)
	e, err := s.Event(context.Background(), 2)
	if err != nil || e.Seq != 2 || e.CausedBy != 1 {
		t.Errorf("event 2: %+v, %v", e, err)
	}
	effects, err := s.Effects(context.Background(), 1, 10)
	if err != nil || !slices.Equal(effects, []uint64{2, 5}) {
		t.Errorf("effects of 1: %v, %v", effects, err)
	}
	checkRequests(t, "event and effects", c.reqs,
		&gridpb.GetConceptRequest{Id: events.EventID(2)},
		&gridpb.NeighborsRequest{Id: events.EventID(1), Direction: gridpb.Direction_DIRECTION_IN, Types: []string{"caused_by"}, Limit: 10})

	// A concept that holds another event than its ID says is not that event.
	c.concepts = []*gridpb.Concept{{Id: events.EventID(3), Content: c.concepts[0].Content}}
	if e, err := s.Event(context.Background(), 3); err == nil {
		t.Errorf("event 3 from the concept of 2: %+v", e)
	}
}

// TestStorageHolds asks about seqs in queries of at most 64 values each.
func TestStorageHolds(t *testing.T) {
	h := history()
	c := &recordingClient{concepts: []*gridpb.Concept{concept(t, h[0]), concept(t, h[1])}}
	var ask []uint64
	for q := uint64(1); q <= 130; q++ {
		ask = append(ask, q)
	}
	held, err := NewStorageStore(c).Holds(context.Background(), ask)
	if err != nil || len(held) != 6 || held[0] != 1 || held[1] != 2 {
		t.Errorf("held %v, %v", held, err)
	}
	var want []proto.Message
	for _, chunk := range [][2]int{{1, 64}, {65, 128}, {129, 130}} {
		var vals []string
		for q := chunk[0]; q <= chunk[1]; q++ {
			vals = append(vals, strconv.Itoa(q))
		}
		want = append(want, &gridpb.QueryRequest{Filters: []*gridpb.Filter{kindEvent, {Attribute: "seq", Values: vals}}, Limit: 64})
	}
	checkRequests(t, "holds", c.reqs, want...)
}

func TestStorageCount(t *testing.T) {
	c := &recordingClient{aggregate: &gridpb.AggregateResponse{Total: 9, Truncated: true, Groups: []*gridpb.Group{
		{Values: []string{"a1", "error"}, Bucket: timestamppb.New(base), Count: 5},
		{Values: []string{"", "info"}, Bucket: timestamppb.New(base.Add(time.Hour)), Count: 1},
	}}}
	q := &CountQuery{Filter: Filter{Types: []events.Type{events.NodeCrashed}, Start: base},
		GroupBy: []Dimension{ByAgent, BySeverity}, Bucket: time.Hour, MaxGroups: 2}
	got, err := NewStorageStore(c).Count(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups(q, got); g != "12:00 agent=a1 severity=error:5 13:00 agent= severity=info:1 /9 truncated" {
		t.Errorf("counts %s", g)
	}
	checkRequests(t, "count", c.reqs, &gridpb.AggregateRequest{
		Filters: []*gridpb.Filter{kindEvent, {Attribute: "type", Values: []string{"node_crashed"}}},
		Start:   timestamppb.New(base), GroupBy: []string{"agent_id", "severity"}, Bucket: "1h", MaxGroups: 2,
	})

	// Without buckets, groups have none, whatever the store sends.
	c.reqs, q.Bucket, q.GroupBy = nil, 0, []Dimension{ByNode}
	c.aggregate = &gridpb.AggregateResponse{Total: 1, Groups: []*gridpb.Group{{Values: []string{"n1"}, Count: 1}}}
	if got, err := NewStorageStore(c).Count(context.Background(), q); err != nil || !got.Groups[0].Bucket.IsZero() {
		t.Errorf("counts without buckets: %+v, %v", got, err)
	}
	if r := c.reqs[0].(*gridpb.AggregateRequest); r.Bucket != "" || !slices.Equal(r.GroupBy, []string{"node_id"}) {
		t.Errorf("request without buckets %v", r)
	}
}
