package eventquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

// storageStore is the event store on a storage node, where each event is a concept
// events.EventID(seq) with its JSON as content and the attributes of
// events.Event.Attributes, and each effect links to its cause by caused_by.
type storageStore struct {
	c gridpb.StorageClient
}

// NewStorageStore returns the Store on the storage node that c calls. Each call is
// bounded by StoreTimeout.
func NewStorageStore(c gridpb.StorageClient) Store { return &storageStore{c: c} }

// storeError is a failed call to the event store, described for people.
type storeError struct{ err error }

func (e *storeError) Unwrap() error { return e.err }

func (e *storeError) Error() string {
	switch status.Code(e.err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return "event store unreachable: " + status.Convert(e.err).Message()
	}
	if st, ok := status.FromError(e.err); ok {
		return fmt.Sprintf("event store error: %s: %s", st.Code(), st.Message())
	}
	return "event store error: " + e.err.Error()
}

// call runs one call to the store, bounded by StoreTimeout.
func call[Req, Resp any](ctx context.Context, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	cctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	resp, err := f(cctx, req)
	if err != nil {
		return resp, &storeError{err}
	}
	return resp, nil
}

func (s *storageStore) Query(ctx context.Context, q StoreQuery, token string) (*StorePage, error) {
	req := &gridpb.QueryRequest{
		Filters:   filters(&q.Filter),
		Order:     gridpb.Order_ORDER_ASCENDING,
		Limit:     uint32(q.Limit),
		PageToken: token,
	}
	if q.Desc {
		req.Order = gridpb.Order_ORDER_DESCENDING
	}
	req.Start, req.End = timeRange(&q.Filter)
	resp, err := call(ctx, s.c.Query, req)
	if err != nil {
		return nil, err
	}
	page := &StorePage{Next: resp.GetNextPageToken()}
	for _, c := range resp.GetConcepts() {
		e, err := decodeConcept(c)
		if err != nil {
			page.Bad++
			continue
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}

func (s *storageStore) Event(ctx context.Context, seq uint64) (*events.Event, error) {
	resp, err := call(ctx, s.c.GetConcept, &gridpb.GetConceptRequest{Id: events.EventID(seq)})
	if status.Code(err) == codes.NotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeConcept(resp.GetConcept())
}

func (s *storageStore) Effects(ctx context.Context, seq uint64, limit int) ([]uint64, error) {
	resp, err := call(ctx, s.c.Neighbors, &gridpb.NeighborsRequest{
		Id: events.EventID(seq), Direction: gridpb.Direction_DIRECTION_IN,
		Types: []string{events.AssocCausedBy}, Limit: uint32(limit),
	})
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, n := range resp.GetNeighbors() {
		if q, ok := events.SeqOf(n.GetId()); ok {
			out = append(out, q)
		}
	}
	return out, nil
}

// holdsChunk is the most values one filter of a storage query may have.
const holdsChunk = 64

func (s *storageStore) Holds(ctx context.Context, seqs []uint64) ([]uint64, error) {
	var out []uint64
	for len(seqs) > 0 {
		n := min(len(seqs), holdsChunk)
		vals := make([]string, n)
		for i, q := range seqs[:n] {
			vals[i] = strconv.FormatUint(q, 10)
		}
		seqs = seqs[n:]
		req := &gridpb.QueryRequest{Filters: []*gridpb.Filter{
			{Attribute: "kind", Values: []string{events.KindEvent}},
			{Attribute: "seq", Values: vals},
		}, Limit: holdsChunk}
		resp, err := call(ctx, s.c.Query, req)
		if err != nil {
			return nil, err
		}
		for _, c := range resp.GetConcepts() {
			if q, ok := events.SeqOf(c.GetId()); ok {
				out = append(out, q)
			}
		}
	}
	return out, nil
}

func (s *storageStore) Count(ctx context.Context, q *CountQuery) (*Counts, error) {
	req := &gridpb.AggregateRequest{Filters: filters(&q.Filter), MaxGroups: uint32(q.MaxGroups)}
	req.Start, req.End = timeRange(&q.Filter)
	for _, d := range q.GroupBy {
		req.GroupBy = append(req.GroupBy, attribute(d))
	}
	if q.Bucket > 0 {
		name, ok := bucketName(q.Bucket)
		if !ok {
			return nil, fmt.Errorf("no time bucket of %s", q.Bucket)
		}
		req.Bucket = name
	}
	resp, err := call(ctx, s.c.Aggregate, req)
	if err != nil {
		return nil, err
	}
	c := &Counts{Total: resp.GetTotal(), Truncated: resp.GetTruncated()}
	for _, g := range resp.GetGroups() {
		out := Group{Values: g.GetValues(), Count: g.GetCount()}
		if q.Bucket > 0 {
			out.Bucket = g.GetBucket().AsTime()
		}
		c.Groups = append(c.Groups, out)
	}
	return c, nil
}

// attribute names the event store attribute of d.
func attribute(d Dimension) string {
	switch d {
	case ByAgent:
		return "agent_id"
	case ByNode:
		return "node_id"
	}
	return string(d)
}

// filters are the store's attribute filters for f: event concepts only, and those
// of f's lists that are not empty.
func filters(f *Filter) []*gridpb.Filter {
	out := []*gridpb.Filter{{Attribute: "kind", Values: []string{events.KindEvent}}}
	for _, l := range []struct {
		d    Dimension
		vals []string
	}{{ByAgent, f.Agents}, {ByNode, f.Nodes}, {ByType, strs(f.Types)}, {BySeverity, strs(f.Severities)}} {
		if len(l.vals) > 0 {
			out = append(out, &gridpb.Filter{Attribute: attribute(l.d), Values: l.vals})
		}
	}
	return out
}

// timeRange is f's time range as the store takes it; nil is unbounded.
func timeRange(f *Filter) (start, end *timestamppb.Timestamp) {
	if !f.Start.IsZero() {
		start = timestamppb.New(f.Start)
	}
	if !f.End.IsZero() {
		end = timestamppb.New(f.End)
	}
	return start, end
}

// decodeConcept reads an event back from its concept in the event store.
func decodeConcept(c *gridpb.Concept) (*events.Event, error) {
	var e events.Event
	if err := json.Unmarshal(c.GetContent(), &e); err != nil {
		return nil, fmt.Errorf("concept %s: decode event: %w", c.GetId(), err)
	}
	if seq, ok := events.SeqOf(c.GetId()); !ok || seq != e.Seq {
		return nil, fmt.Errorf("concept %s holds event %d", c.GetId(), e.Seq)
	}
	return &e, nil
}

// Faults of ReadRange: what a store answered that it should not have.
var (
	// ErrMissing: the store lacks an event it was asked for.
	ErrMissing = errors.New("event missing")
	// ErrGarbage: the store answered something that is not the event asked for.
	ErrGarbage = errors.New("garbage from the event store")
)

// ReadRange reads the events with seqs from..to from the event store on the storage
// node c calls, in seq order, each call bounded by StoreTimeout. It checks what comes
// back: an event the store lacks is an error that wraps ErrMissing, and one that does
// not decode, or holds another seq than its ID says, or comes twice, or was not asked
// for, wraps ErrGarbage. Leaders use it to copy history from one store to another.
func ReadRange(ctx context.Context, c gridpb.StorageClient, from, to uint64) ([]*events.Event, error) {
	if from == 0 || to < from {
		return nil, fmt.Errorf("read events %d-%d: not a range of seqs", from, to)
	}
	got := make(map[uint64]*events.Event, to-from+1)
	for lo := from; lo <= to; lo += holdsChunk {
		hi := min(lo+holdsChunk-1, to)
		vals := make([]string, 0, hi-lo+1)
		for q := lo; q <= hi; q++ {
			vals = append(vals, strconv.FormatUint(q, 10))
		}
		req := &gridpb.QueryRequest{Filters: []*gridpb.Filter{
			{Attribute: "kind", Values: []string{events.KindEvent}},
			{Attribute: "seq", Values: vals},
		}, Limit: holdsChunk}
		resp, err := call(ctx, c.Query, req)
		if err != nil {
			return nil, err
		}
		for _, cpt := range resp.GetConcepts() {
			e, err := decodeConcept(cpt)
			switch {
			case err != nil:
				return nil, fmt.Errorf("%w: %v", ErrGarbage, err)
			case e.Seq < lo || e.Seq > hi:
				return nil, fmt.Errorf("%w: asked for events %d-%d, it answered event %d", ErrGarbage, lo, hi, e.Seq)
			case got[e.Seq] != nil:
				return nil, fmt.Errorf("%w: event %d answered twice", ErrGarbage, e.Seq)
			}
			got[e.Seq] = e
		}
	}
	out := make([]*events.Event, 0, len(got))
	for q := from; q <= to; q++ {
		e := got[q]
		if e == nil {
			return nil, fmt.Errorf("%w: the store lacks event %d", ErrMissing, q)
		}
		out = append(out, e)
	}
	return out, nil
}
