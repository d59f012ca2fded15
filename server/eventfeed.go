package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/sutragrid/grid/events"
)

// eventFeed keeps the events this server's FSM derived most recently, and wakes those
// who wait for new ones: the shipper on the leader, and event streams on any server.
// It is a cache: the outbox (replicated) and the event store hold the truth.
type eventFeed struct {
	mu      sync.Mutex
	ring    []*events.Event // the last len(ring) events, by seq modulo len(ring)
	lastSeq uint64
	changed chan struct{} // closed and replaced on every publish
}

const feedSize = 8192

func newEventFeed() *eventFeed {
	return &eventFeed{ring: make([]*events.Event, feedSize), changed: make(chan struct{})}
}

// publish is the FSM's event hook: it runs inside Apply and must not block.
func (f *eventFeed) publish(evs []*events.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		f.ring[e.Seq%feedSize] = e
		if e.Seq > f.lastSeq {
			f.lastSeq = e.Seq
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// reset forgets everything, after a snapshot restore replaced the state.
func (f *eventFeed) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring = make([]*events.Event, feedSize)
	f.lastSeq = 0
	close(f.changed)
	f.changed = make(chan struct{})
}

// restored is the FSM's restore hook, after a snapshot replaced the whole state:
// Raft's own on a follower that catches up, or an operator's restore. The feed
// starts again from the outbox (which holds an operator restore's cluster_restored
// event), and the shipper re-reads its position from the state.
func (s *Server) restored() {
	s.feed.reset()
	s.restores.Add(1)
	st := s.fsm.State()
	meta, err := st.EventMeta()
	if err != nil {
		return
	}
	after := meta.ShippedSeq
	if meta.LastSeq > after+feedSize {
		after = meta.LastSeq - feedSize
	}
	if evs, err := st.Outbox(after, feedSize); err == nil && len(evs) > 0 {
		s.feed.publish(evs)
	}
}

// get returns the event with seq if the feed still holds it.
func (f *eventFeed) get(seq uint64) *events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.ring[seq%feedSize]; e != nil && e.Seq == seq {
		return e
	}
	return nil
}

// notify returns a channel that is closed at the next publish.
func (f *eventFeed) notify() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// handleDerivedEvents lists the events this server's own FSM derived that its feed
// still holds, with seq > after: an operator's (and the tests') way to compare what
// each server derived with what the event store holds.
func (s *Server) handleDerivedEvents(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	// This server's own position in the history and its digest (fsm/digest.go), so
	// that servers can be compared with each other and with the stores.
	if meta, err := s.fsm.State().EventMeta(); err == nil {
		w.Header().Set("X-Grid-Event-Last-Seq", strconv.FormatUint(meta.LastSeq, 10))
		w.Header().Set("X-Grid-Event-Digest", meta.Digest)
	}
	out := []*events.Event{}
	s.feed.mu.Lock()
	for seq := after + 1; seq <= s.feed.lastSeq; seq++ {
		if e := s.feed.ring[seq%feedSize]; e != nil && e.Seq == seq {
			out = append(out, e)
		}
	}
	s.feed.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
