package eventquery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sutragrid/grid/events"
)

// base is the time of the first event of the tests' histories.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// ev returns an event of type typ, at base plus min minutes.
func ev(seq uint64, typ events.Type, min int, agent string) *events.Event {
	return &events.Event{Seq: seq, Type: typ, Timestamp: base.Add(time.Duration(min) * time.Minute), AgentID: agent}
}

// history is the events the tests start from, as evSeed derives them in the server's
// tests:
//
//	1 agent_registered a1   2 cluster_healthy   3 agent_registered a2
//	4 agent_degraded a1     5 cluster_degraded
//	6 agent_recovered a1    7 cluster_healthy
func history() []*events.Event {
	return []*events.Event{
		ev(1, events.AgentRegistered, 0, "a1"), ev(2, events.ClusterHealthy, 0, ""),
		ev(3, events.AgentRegistered, 10, "a2"), ev(4, events.AgentDegraded, 70, "a1"),
		ev(5, events.ClusterDegraded, 70, ""), ev(6, events.AgentRecovered, 75, "a1"),
		ev(7, events.ClusterHealthy, 75, ""),
	}
}

// fakeOutbox is an outbox of events in seq order.
type fakeOutbox []*events.Event

func (o fakeOutbox) Outbox(after uint64, limit int) ([]*events.Event, error) {
	var out []*events.Event
	for _, e := range o {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (o fakeOutbox) OutboxEvent(seq uint64) (*events.Event, error) {
	for _, e := range o {
		if e.Seq == seq {
			return e, nil
		}
	}
	return nil, nil
}

// fakeStore is an event store in memory. Its pages hold pageSize events, so that
// tests page through it; err, when set, fails every call.
type fakeStore struct {
	mu       sync.Mutex
	evs      map[uint64]*events.Event
	bad      int // undecodable concepts, reported on the first page
	pageSize int
	err      error
	// onHolds, if set, runs after each call of Holds: a test's shipper at work.
	onHolds func(calls int)
	holds   int
	// queries counts the calls of Query.
	queries int
}

func newFakeStore(evs ...*events.Event) *fakeStore {
	s := &fakeStore{evs: map[uint64]*events.Event{}, pageSize: 2}
	s.add(evs...)
	return s
}

func (s *fakeStore) add(evs ...*events.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.evs[e.Seq] = e
	}
}

func (s *fakeStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// matching returns the stored events that f matches, in time order.
func (s *fakeStore) matching(f *Filter) []*events.Event {
	var out []*events.Event
	for _, e := range s.evs {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *events.Event) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out
}

func (s *fakeStore) Query(_ context.Context, q StoreQuery, token string) (*StorePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	if s.err != nil {
		return nil, s.err
	}
	all := s.matching(&q.Filter)
	if q.Desc {
		slices.Reverse(all)
	}
	from, _ := strconv.Atoi(token)
	n := min(q.Limit, s.pageSize)
	to := min(from+n, len(all))
	p := &StorePage{Events: all[from:to]}
	if from == 0 {
		p.Bad = s.bad
	}
	if to < len(all) {
		p.Next = strconv.Itoa(to)
	}
	return p, nil
}

func (s *fakeStore) Event(_ context.Context, seq uint64) (*events.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if e := s.evs[seq]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("event %d: %w", seq, ErrNotFound)
}

func (s *fakeStore) Effects(_ context.Context, seq uint64, limit int) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []uint64
	for _, e := range s.evs {
		if e.CausedBy == seq && len(out) < limit {
			out = append(out, e.Seq)
		}
	}
	return out, nil
}

func (s *fakeStore) Holds(_ context.Context, seqs []uint64) ([]uint64, error) {
	s.mu.Lock()
	s.holds++
	hook, calls, err := s.onHolds, s.holds, s.err
	var out []uint64
	for _, q := range seqs {
		if s.evs[q] != nil {
			out = append(out, q)
		}
	}
	s.mu.Unlock()
	if hook != nil {
		hook(calls)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Count counts as the storage node does, by its own simple means.
func (s *fakeStore) Count(_ context.Context, q *CountQuery) (*Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	groups := map[string]*Group{}
	c := &Counts{}
	for _, e := range s.matching(&q.Filter) {
		c.Total++
		var vals []string
		for _, d := range q.GroupBy {
			vals = append(vals, d.of(e))
		}
		var bucket time.Time
		if q.Bucket > 0 {
			ns := e.Timestamp.UnixNano()
			bucket = time.Unix(0, ns-ns%int64(q.Bucket)).UTC()
		}
		k := bucket.String() + "|" + strings.Join(vals, "|")
		if groups[k] == nil {
			groups[k] = &Group{Values: vals, Bucket: bucket}
		}
		groups[k].Count++
	}
	for _, g := range groups {
		c.Groups = append(c.Groups, *g)
	}
	slices.SortFunc(c.Groups, compareGroups)
	if len(c.Groups) > q.MaxGroups {
		c.Groups, c.Truncated = c.Groups[:q.MaxGroups], true
	}
	return c, nil
}

var errDown = errors.New("event store unreachable: connection refused")

// seqs renders events' seqs as "[7 6 5]".
func seqs(evs []*events.Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = strconv.FormatUint(e.Seq, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// view returns a view of a pipeline that derived evs, of which those up to shipped
// were acknowledged, and the rest wait in the outbox.
func view(evs []*events.Event, shipped uint64, store *fakeStore) *View {
	var out fakeOutbox
	v := &View{ShippedSeq: shipped}
	for _, e := range evs {
		v.LastSeq = max(v.LastSeq, e.Seq)
		if e.Seq > shipped {
			out = append(out, e)
		}
	}
	v.Outbox = out
	if store != nil { // a nil *fakeStore must stay a nil Store
		v.Store = store
	}
	return v
}
