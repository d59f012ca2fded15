package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/eventquery"
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

// maxKnownEntities bounds the entities a shipper remembers a store holds; past it,
// batches of new entities are read back (correct, only slower).
const maxKnownEntities = 100_000

// shipping is one store's shipper for one leader term. It sends batch after batch
// without waiting for each acknowledgement to commit: sent runs ahead of the store's
// replicated cursor, and a single background acknowledger commits the highest stored
// seq (acknowledging up to N covers everything before it).
type shipping struct {
	s   *Server
	key string
	// fixed is the store to use, in tests and benchmarks; nil: the store's address
	// from the state, resolved on each step.
	fixed gridpb.StorageClient
	store gridpb.StorageClient
	// sent is the last seq this shipper has stored; the next batch starts after it.
	sent uint64
	// maxBytes bounds a batch's encoded size: shipMaxBytes, less after a store
	// refused a batch as too large.
	maxBytes int
	// unchecked says the store must be checked before the next batch (at the start,
	// and after it failed); checkedAt is when it last was.
	unchecked bool
	checkedAt time.Time
	// known are the entity concepts (agent:…, node:…, cluster) the store is known to
	// hold, so that a batch's count of concepts that existed tells whether any of its
	// events did (see learn).
	known map[string]bool
	// next, when not nil, receives the next batch from the outbox, laid out while
	// the one before it was being stored (prepare).
	next  chan prepared
	acks  chan uint64 // holds at most the newest seq to acknowledge
	stop  context.CancelFunc
	ackWG sync.WaitGroup
}

// newShipping starts the shipper of the store named key; store, if not nil, is the
// store to call instead of the one the state names.
func (s *Server) newShipping(key string, store gridpb.StorageClient) *shipping {
	ctx, cancel := context.WithCancel(s.ctx)
	sh := &shipping{s: s, key: key, fixed: store, store: store, maxBytes: shipMaxBytes,
		unchecked: true, known: map[string]bool{}, acks: make(chan uint64, 1), stop: cancel}
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

// rewind forgets what this shipper sent ahead of the store's replicated cursor, so
// the next batch starts from the state's position, and has the store checked again.
func (sh *shipping) rewind() {
	sh.sent, sh.unchecked, sh.next = 0, true, nil
	clear(sh.known)
}

// step checks the store when a check is due, then ships the next batch. It returns
// how many events it stored; an error that is a *storeFault says what is wrong with
// a store.
func (sh *shipping) step(ctx context.Context, cur fsm.StoreCursor) (int, error) {
	if sh.fixed == nil {
		c, _, err := sh.s.storeClient(cur)
		if err != nil {
			return 0, err
		}
		sh.store = c
	}
	// The store is checked before each batch: a store restarted with its data lost
	// answers the next batch as if nothing happened. Every storeCheckInterval the
	// check also samples older events.
	if sh.unchecked || time.Since(sh.checkedAt) > storeCheckInterval {
		if err := sh.check(ctx, cur, true); err != nil {
			return 0, err
		}
		sh.unchecked, sh.checkedAt = false, time.Now()
		return sh.ship(ctx, cur, func() error { return nil })
	}
	// The usual check runs while the batch is being stored, rather than before it: the
	// batch counts as shipped, and is acknowledged, only once both succeeded. (A batch
	// stored into a store that fails its check is harmless: writes are idempotent,
	// and never overwrite an event.)
	checked := make(chan error, 1)
	go func() { checked <- sh.check(ctx, cur, false) }()
	wait := sync.OnceValue(func() error { return <-checked })
	n, err := sh.ship(ctx, cur, wait)
	if cerr := wait(); cerr != nil {
		return 0, cerr // what the check found comes first
	}
	return n, err
}

// ship sends the next batch after the store's position and queues its
// acknowledgement once checked says the store passed its check. The events come from
// the outbox, or, when the store is behind what the outbox still holds, from another
// store (backfill).
func (sh *shipping) ship(ctx context.Context, cur fsm.StoreCursor, checked func() error) (int, error) {
	state := sh.s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		return 0, err
	}
	after := max(sh.sent, cur.Acked)
	if after >= meta.LastSeq {
		sh.s.stores.update(sh.key, func(st *StoreStatus) { st.reached(); st.Backfilling = "" })
		return 0, nil
	}
	var evs []*events.Event
	var req sizedBatch
	if after < meta.ShippedSeq {
		if evs, err = sh.backfill(ctx, cur, after+1, meta); err == nil && len(evs) > 0 {
			req, err = layoutBatch(evs, sh.maxBytes)
		}
	} else {
		sh.s.stores.update(sh.key, func(st *StoreStatus) { st.Backfilling = "" })
		evs, req, err = sh.outboxBatch(state, after, meta.LastSeq)
	}
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	// The events actually sent: a prefix, when their bytes were many.
	evs = evs[:req.events]
	if last := evs[len(evs)-1].Seq; last < meta.LastSeq && after >= meta.ShippedSeq {
		sh.prepare(last)
	}
	if err := sh.learn(ctx, req, evs); err != nil {
		return 0, err
	}
	if err := checked(); err != nil {
		return 0, err
	}
	sh.sent = evs[len(evs)-1].Seq
	sh.s.metrics.sent.Store(max(sh.s.metrics.sent.Load(), sh.sent))
	sh.s.metrics.shipped.Add(float64(len(evs)))
	sh.s.stores.update(sh.key, func(st *StoreStatus) { st.reached(); st.LastShipped = time.Now() })
	// Replace any acknowledgement still queued: the newer one covers it.
	select {
	case <-sh.acks:
	default:
	}
	sh.acks <- sh.sent
	return len(evs), nil
}

// learn stores one batch. When the store says some of the batch's events existed
// already (a batch resent after a failover, or another history's events under the
// same IDs), it reads them back: an event ID holding other content is a fault.
func (sh *shipping) learn(ctx context.Context, req sizedBatch, evs []*events.Event) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := sh.store.LearnBatch(cctx, req.LearnBatchRequest)
	sh.s.metrics.storeWrite.Observe(time.Since(start).Seconds())
	if err != nil {
		sh.s.metrics.storeFailures.Inc()
		if tooLarge(err) && sh.maxBytes > minShipBytes {
			// Nothing was stored: the same events go again, in smaller batches.
			sh.maxBytes = max(sh.maxBytes/2, minShipBytes)
			sh.s.logs.shipper.Warn("an event store refused a batch as too large; sending smaller batches",
				"store", sh.key, "bytes", req.bytes, "max_bytes", sh.maxBytes, "error", err)
		}
		return fmt.Errorf("store events %d-%d: %w", evs[0].Seq, evs[len(evs)-1].Seq, err)
	}
	// Concepts that existed are either entities the store had, or events: those are
	// read back and compared.
	existed, expected := int(resp.GetConceptsExisting()), 0
	for _, c := range req.Concepts {
		if _, isEvent := events.SeqOf(c.Id); !isEvent && sh.known[c.Id] {
			expected++
		}
	}
	for _, c := range req.Concepts {
		if _, isEvent := events.SeqOf(c.Id); !isEvent && len(sh.known) < maxKnownEntities {
			sh.known[c.Id] = true
		}
	}
	if existed <= expected {
		return nil // every event was new to the store
	}
	return sh.compare(ctx, evs)
}

// compare reads evs back from the store and checks that it holds each as it is.
func (sh *shipping) compare(ctx context.Context, evs []*events.Event) error {
	stored, err := eventquery.ReadRange(ctx, sh.store, evs[0].Seq, evs[len(evs)-1].Seq)
	if err != nil {
		return readFault(sh.key, err, "reading back events it said it had")
	}
	for i, e := range evs {
		if !sameEvent(e, stored[i]) {
			return &storeFault{key: sh.key, conflict: true,
				msg: fmt.Sprintf("holds other content under event %d's ID (%s); wipe its data dir to have it backfilled", e.Seq, events.EventID(e.Seq))}
		}
	}
	return nil
}

// sameEvent reports whether two events are the same, as their JSON says.
func sameEvent(a, b *events.Event) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// backfill reads the events from `from` on from another store that has them, as many
// as one batch, up to the shipped seq (the outbox holds the rest).
func (sh *shipping) backfill(ctx context.Context, cur fsm.StoreCursor, from uint64, meta fsm.EventMeta) ([]*events.Event, error) {
	sources := sh.s.backfillSources(cur.Key(), from, meta.Stores)
	if len(sources) == 0 {
		return nil, sh.noSource(cur, from, meta)
	}
	var errs []string
	for _, src := range sources {
		to := min(from+shipBatch-1, meta.ShippedSeq, src.Acked)
		if src.LostFrom > 0 && src.LostFrom <= to && src.LostTo >= from {
			continue // the source lacks part of the range itself
		}
		c, _, err := sh.s.storeClient(src)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		evs, err := eventquery.ReadRange(ctx, c, from, to)
		if err == nil {
			sh.s.stores.update(sh.key, func(st *StoreStatus) { st.Backfilling = src.Key() })
			return evs, nil
		}
		if errors.Is(err, eventquery.ErrMissing) || errors.Is(err, eventquery.ErrGarbage) {
			// The source is at fault, not this store: record it against the source.
			if f, ok := asFault(readFault(src.Key(), err, "backfilling "+cur.Key())); ok {
				sh.s.recordFault(ctx, src.Key(), f)
			}
		}
		errs = append(errs, fmt.Sprintf("%s: %v", src.Key(), err))
	}
	return nil, &sourceError{fmt.Errorf("backfill events from %d: no store could give them: %s", from, strings.Join(errs, "; "))}
}

// sourceError is a backfill that found no store to copy from: the store being
// backfilled is not at fault, and not down.
type sourceError struct{ error }

func (e *sourceError) Unwrap() error { return e.error }

// backfillSources returns the stores other than key that should hold seq from, the
// ones seen reachable first, the most advanced first.
func (s *Server) backfillSources(key string, from uint64, stores []fsm.StoreCursor) []fsm.StoreCursor {
	var out []fsm.StoreCursor
	for _, c := range stores {
		if c.Key() != key && !c.Faulty && c.Acked >= from {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b fsm.StoreCursor) int {
		ra, rb := s.stores.reachable(a.Key()), s.stores.reachable(b.Key())
		switch {
		case ra != rb && ra:
			return -1
		case ra != rb:
			return 1
		case a.Acked > b.Acked:
			return -1
		case a.Acked < b.Acked:
			return 1
		}
		return 0
	})
	return out
}

// noSource is why no store can backfill cur from `from`. While another store that
// once had the events may come back, the store waits; when none has them any more,
// they are lost, and the store's cursor moves past them so it can take the rest.
func (sh *shipping) noSource(cur fsm.StoreCursor, from uint64, meta fsm.EventMeta) error {
	for _, c := range meta.Stores {
		if c.Key() != cur.Key() && c.Acked >= from {
			return &sourceError{fmt.Errorf("backfill events from %d: waiting for store %s, which has them, to answer and be trusted", from, c.Key())}
		}
	}
	return &storeFault{key: cur.Key(), skipTo: meta.ShippedSeq,
		msg: fmt.Sprintf("events %d-%d are in no event store any more (the outbox let go of them): they are lost from this store's history", from, meta.ShippedSeq)}
}

// prepared is the batch of the events after `after` in the outbox, laid out within
// maxBytes from the state as it was after `restores` snapshot restores.
type prepared struct {
	after, restores uint64
	maxBytes        int
	evs             []*events.Event
	req             sizedBatch
	err             error
}

// prepare lays out the batch after seq `after` in the background, so that encoding
// it overlaps the store's write of the batch before it.
func (sh *shipping) prepare(after uint64) {
	p := prepared{after: after, restores: sh.s.restores.Load(), maxBytes: sh.maxBytes}
	next := make(chan prepared, 1)
	sh.next = next
	go func() {
		p.evs, p.err = sh.s.fsm.State().Outbox(after, shipBatch)
		if p.err == nil && len(p.evs) > 0 {
			p.req, p.err = layoutBatch(p.evs, p.maxBytes)
		}
		next <- p
	}()
}

// outboxBatch returns the batch after seq `after` from the outbox: the prepared one
// when it is still what this shipper would lay out now (no snapshot restored since,
// the same bound on bytes, and not shorter than the outbox allows), else a new one.
func (sh *shipping) outboxBatch(state *fsm.State, after, lastSeq uint64) ([]*events.Event, sizedBatch, error) {
	if sh.next != nil {
		p := <-sh.next
		sh.next = nil
		full := len(p.evs) == shipBatch || (len(p.evs) > 0 && p.evs[len(p.evs)-1].Seq >= lastSeq)
		if p.err == nil && full && p.after == after && p.maxBytes == sh.maxBytes && p.restores == sh.s.restores.Load() {
			return p.evs, p.req, nil
		}
	}
	evs, err := state.Outbox(after, shipBatch)
	if err != nil || len(evs) == 0 {
		return nil, sizedBatch{}, err
	}
	req, err := layoutBatch(evs, sh.maxBytes)
	return evs, req, err
}

// sizedBatch is a LearnBatch of the first events of a slice, and its size.
type sizedBatch struct {
	*gridpb.LearnBatchRequest
	events, bytes int
}

// layoutBatch lays out the longest prefix of evs (halving it) whose request fits in
// maxBytes; one event is sent whatever its size, for the store to judge.
func layoutBatch(evs []*events.Event, maxBytes int) (sizedBatch, error) {
	for n := len(evs); ; n = (n + 1) / 2 {
		req, err := eventBatch(evs[:n])
		if err != nil {
			return sizedBatch{}, err
		}
		size := proto.Size(req)
		if size <= maxBytes || n == 1 {
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
			_, err := sh.s.Apply(actx, &fsm.EventStoreAck{Key: sh.key, UpTo: upTo})
			cancel()
			if err != nil && ctx.Err() == nil {
				// The events stay in the outbox and the next acknowledgement covers them;
				// a new leader resends them, and the store keeps one copy.
				sh.s.logs.shipper.Warn("acknowledging shipped events failed", "store", sh.key, "up_to", upTo, "error", err)
			}
		}
	}
}

// drain waits until every queued acknowledgement is committed (benchmarks and tests).
func (sh *shipping) drain(ctx context.Context) error {
	for {
		cur, _, ok := sh.s.cursor(sh.key)
		if !ok {
			return fmt.Errorf("no event store %s", sh.key)
		}
		if cur.Acked >= sh.sent {
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
