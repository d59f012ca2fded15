package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// shipBatch bounds the events one LearnBatch carries.
const shipBatch = 1000

// ShipperStatus is the event pipeline as the leader's shipper last saw it.
type ShipperStatus struct {
	// Running is true while this server leads and an event store is configured.
	Running bool
	// Reachable is whether the last call to the event store succeeded.
	Reachable bool
	LastError string
	// LastShipped is when a batch was last stored.
	LastShipped time.Time
}

type shipperState struct {
	mu sync.Mutex
	st ShipperStatus
}

func (s *shipperState) update(f func(*ShipperStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
}

func (s *shipperState) get() ShipperStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// runShipper runs on the leader while it leads: it sends the outbox to the event
// store in seq order, in batches, and acknowledges each stored batch through Raft,
// which trims the outbox on every server. The store writes idempotently by event ID,
// so a batch resent after a failover or a lost acknowledgement is stored once.
func (s *Server) runShipper(ctx context.Context) {
	log := s.logger.Named("shipper")
	if s.config.EventStore == "" {
		log.Warn("no event store configured (-event-store): events wait in the outbox")
		return
	}
	conn, err := s.conns.get(s.config.EventStore)
	if err != nil {
		log.Error("event store address", "error", err)
		return
	}
	store := gridpb.NewStorageClient(conn)
	s.shipper.update(func(st *ShipperStatus) { st.Running = true })
	defer s.shipper.update(func(st *ShipperStatus) { st.Running = false })
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wake := s.feed.notify()
		shipped, err := s.shipOnce(ctx, store)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.Warn("shipping events failed; they wait in the outbox", "error", err, "retry_in", backoff)
			s.shipper.update(func(st *ShipperStatus) { st.Reachable, st.LastError = false, err.Error() })
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		case shipped > 0:
			backoff = 100 * time.Millisecond
			continue // more may wait
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// shipOnce sends one batch from the outbox and acknowledges it. It returns how many
// events it shipped.
func (s *Server) shipOnce(ctx context.Context, store gridpb.StorageClient) (int, error) {
	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		return 0, err
	}
	evs, err := state.Outbox(meta.ShippedSeq, shipBatch)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	req, err := eventBatch(evs)
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := store.LearnBatch(cctx, req); err != nil {
		return 0, fmt.Errorf("store events %d-%d: %w", evs[0].Seq, evs[len(evs)-1].Seq, err)
	}
	s.shipper.update(func(st *ShipperStatus) { st.Reachable, st.LastError, st.LastShipped = true, "", time.Now() })
	if _, err := s.Apply(cctx, &fsm.EventsShipped{UpTo: evs[len(evs)-1].Seq}); err != nil {
		return 0, fmt.Errorf("acknowledge events up to %d: %w", evs[len(evs)-1].Seq, err)
	}
	return len(evs), nil
}

// eventBatch lays events out in the event store: each event a concept with its JSON
// as content and its indexed attributes; each agent, node and the cluster a concept of
// its own, linked to its events by has_event; each event linked to its cause by
// caused_by.
func eventBatch(evs []*events.Event) (*gridpb.LearnBatchRequest, error) {
	req := &gridpb.LearnBatchRequest{}
	entities := map[string]bool{}
	for _, e := range evs {
		content, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		ts := timestamppb.New(e.Timestamp)
		req.Concepts = append(req.Concepts, &gridpb.Concept{
			Id: e.ID(), Content: content, Attributes: e.Attributes(), Timestamp: ts, Strength: 1, Confidence: 1,
		})
		for _, ent := range e.Entities() {
			if !entities[ent] {
				entities[ent] = true
				kind, name := events.EntityKind(ent)
				body, _ := json.Marshal(map[string]string{"kind": kind, "name": name})
				req.Concepts = append(req.Concepts, &gridpb.Concept{
					Id: ent, Content: body, Attributes: map[string]string{"kind": kind, "name": name},
					Timestamp: ts, Strength: 1, Confidence: 1,
				})
			}
			req.Associations = append(req.Associations, &gridpb.Association{
				Source: ent, Target: e.ID(), Type: events.AssocHasEvent, Confidence: 1, Timestamp: ts,
			})
		}
		if e.CausedBy != 0 {
			req.Associations = append(req.Associations, &gridpb.Association{
				Source: e.ID(), Target: events.EventID(e.CausedBy), Type: events.AssocCausedBy, Confidence: 1, Timestamp: ts,
			})
		}
	}
	return req, nil
}
