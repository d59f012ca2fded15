package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/storage"
)

// shipBatch bounds the events one LearnBatch carries.
const shipBatch = 1000

// shipMaxBytes bounds the size of one LearnBatch as the shipper first sends it: a
// quarter of a store's default message limit (storage.DefaultMaxMessageMB). 1,000
// usual events take well under it; the bound splits a batch of unusually large ones,
// and its margin spares a store set somewhat below the default a refusal first. A
// store configured with a smaller -max-message-mb refuses a batch as too large; the
// shipper then halves its bound (down to minShipBytes, or one event) and sends the
// same events again.
const (
	shipMaxBytes = storage.DefaultMaxMessageMB << 20 / 4
	minShipBytes = 64 << 10
)

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
// store in seq order, in batches, and acknowledges stored batches through Raft, which
// trims the outbox on every server. The store writes idempotently by event ID, so a
// batch resent after a failover or a lost acknowledgement is stored once.
func (s *Server) runShipper(ctx context.Context) {
	log := s.logs.shipper
	if s.config.EventStore == "" {
		log.Warn("no event store configured (-event-store): events wait in the outbox")
		return
	}
	conn, err := s.storeConns.Get(s.config.EventStore)
	if err != nil {
		log.Error("event store address", "error", err)
		return
	}
	sh := s.newShipping(gridpb.NewStorageClient(conn))
	defer sh.close()
	s.shipper.update(func(st *ShipperStatus) { st.Running = true })
	defer s.shipper.update(func(st *ShipperStatus) { st.Running = false })
	// Once this server stops shipping, what the store holds is the replicated shipped
	// seq alone.
	defer s.metrics.sent.Store(0)
	backoff := 100 * time.Millisecond
	over := false
	restores := s.restores.Load()
	for ctx.Err() == nil {
		wake := s.feed.notify()
		if n := s.restores.Load(); n != restores {
			// A snapshot replaced the state: the position to ship from is the state's
			// shipped seq again, not what this shipper sent before. Events resent are
			// stored once (the store writes by event ID).
			restores = n
			sh.rewind()
			log.Info("snapshot restored: shipping from the state's position again")
		}
		over = s.reportOutboxBound(over)
		shipped, err := sh.ship(ctx)
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

// reportOutboxBound logs when the outbox crosses EventOutboxLimit, either way, and
// returns whether it is over now. Nothing is dropped: this is how an operator learns
// that the event store has been away for too long.
func (s *Server) reportOutboxBound(wasOver bool) bool {
	meta, err := s.fsm.State().EventMeta()
	if err != nil {
		return wasOver
	}
	waiting, limit := meta.LastSeq-meta.ShippedSeq, s.config.EventOutboxLimit
	over := waiting > limit
	switch {
	case over && !wasOver:
		s.logs.shipper.Error("event outbox is over its bound; events are kept, memory grows until the event store takes them",
			"waiting", waiting, "limit", limit)
	case !over && wasOver:
		s.logs.shipper.Info("event outbox is back under its bound", "waiting", waiting, "limit", limit)
	}
	return over
}

// shipping is one leader term's shipper. It sends batch after batch without waiting
// for each acknowledgement to commit: sent runs ahead of the replicated shipped seq,
// and a single background acknowledger commits the highest stored seq (acknowledging
// up to N covers everything before it).
type shipping struct {
	s     *Server
	store gridpb.StorageClient
	// sent is the last seq this shipper has stored; the outbox is read after it.
	sent uint64
	// maxBytes bounds a batch's encoded size: shipMaxBytes, less after a store
	// refused a batch as too large.
	maxBytes int
	acks     chan uint64 // holds at most the newest seq to acknowledge
	stop     context.CancelFunc
	ackWG    sync.WaitGroup
}

func (s *Server) newShipping(store gridpb.StorageClient) *shipping {
	ctx, cancel := context.WithCancel(s.ctx)
	sh := &shipping{s: s, store: store, maxBytes: shipMaxBytes, acks: make(chan uint64, 1), stop: cancel}
	sh.ackWG.Add(1)
	go func() {
		defer sh.ackWG.Done()
		sh.acknowledge(ctx)
	}()
	return sh
}

func (sh *shipping) close() {
	sh.stop()
	sh.ackWG.Wait()
}

// rewind forgets what this shipper sent ahead of the replicated shipped seq, so the
// next batch starts from the state's position.
func (sh *shipping) rewind() {
	sh.sent = 0
}

// ship sends the next batch of the outbox and queues its acknowledgement. It returns
// how many events it stored.
func (sh *shipping) ship(ctx context.Context) (int, error) {
	state := sh.s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		return 0, err
	}
	evs, err := state.Outbox(max(sh.sent, meta.ShippedSeq), shipBatch)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	req, err := sh.batch(evs)
	if err != nil {
		return 0, err
	}
	// The events actually sent: a prefix of the outbox's, when its bytes were many.
	evs = evs[:req.events]
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = sh.store.LearnBatch(cctx, req.LearnBatchRequest)
	sh.s.metrics.storeWrite.Observe(time.Since(start).Seconds())
	if err != nil {
		sh.s.metrics.storeFailures.Inc()
		if tooLarge(err) && sh.maxBytes > minShipBytes {
			// Nothing was stored: the same events go again, in smaller batches.
			sh.maxBytes = max(sh.maxBytes/2, minShipBytes)
			sh.s.logs.shipper.Warn("the event store refused a batch as too large; sending smaller batches",
				"bytes", req.bytes, "max_bytes", sh.maxBytes, "error", err)
		}
		return 0, fmt.Errorf("store events %d-%d: %w", evs[0].Seq, evs[len(evs)-1].Seq, err)
	}
	sh.sent = evs[len(evs)-1].Seq
	sh.s.metrics.sent.Store(sh.sent)
	sh.s.metrics.shipped.Add(float64(len(evs)))
	sh.s.shipper.update(func(st *ShipperStatus) { st.Reachable, st.LastError, st.LastShipped = true, "", time.Now() })
	// Replace any acknowledgement still queued: the newer one covers it.
	select {
	case <-sh.acks:
	default:
	}
	sh.acks <- sh.sent
	return len(evs), nil
}

// sizedBatch is a LearnBatch of the first events of a slice, and its size.
type sizedBatch struct {
	*gridpb.LearnBatchRequest
	events, bytes int
}

// batch lays out the longest prefix of evs (halving it) whose request fits in
// sh.maxBytes; one event is sent whatever its size, for the store to judge.
func (sh *shipping) batch(evs []*events.Event) (sizedBatch, error) {
	for n := len(evs); ; n = (n + 1) / 2 {
		req, err := eventBatch(evs[:n])
		if err != nil {
			return sizedBatch{}, err
		}
		size := proto.Size(req)
		if size <= sh.maxBytes || n == 1 {
			return sizedBatch{LearnBatchRequest: req, events: n, bytes: size}, nil
		}
	}
}

// tooLarge is whether a store refused a request for its size: gRPC's own refusal of a
// message over the store's -max-message-mb.
func tooLarge(err error) bool {
	return status.Code(err) == codes.ResourceExhausted && strings.Contains(status.Convert(err).Message(), "larger than max")
}

// acknowledge commits queued acknowledgements one at a time.
func (sh *shipping) acknowledge(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case upTo := <-sh.acks:
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := sh.s.Apply(actx, &fsm.EventsShipped{UpTo: upTo})
			cancel()
			if err != nil && ctx.Err() == nil {
				// The events stay in the outbox and the next acknowledgement covers them;
				// a new leader resends them, and the store keeps one copy.
				sh.s.logs.shipper.Warn("acknowledging shipped events failed", "up_to", upTo, "error", err)
			}
		}
	}
}

// drain waits until every queued acknowledgement is committed (benchmarks and tests).
func (sh *shipping) drain(ctx context.Context) error {
	for {
		meta, err := sh.s.fsm.State().EventMeta()
		if err != nil {
			return err
		}
		if meta.ShippedSeq >= sh.sent {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
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
