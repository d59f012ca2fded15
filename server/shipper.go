package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// The shipper runs on the leader while it leads. Every event store has a cursor in
// the replicated state (fsm/eventstores.go); the shipper runs one loop per store
// (shipTo) that sends the store the events after its cursor, from the outbox, or,
// for a store that is behind what the outbox still holds (a new or wiped store, or
// one that was down for long), from another store that has them (backfill). Stored
// batches are acknowledged through Raft, which moves the store's cursor and trims
// the outbox on every server once every store that holds it back has the events.
// Stores write idempotently by event ID, so a batch resent after a failover or a lost
// acknowledgement is stored once. What a store answers is checked (shipper_check.go):
// lost events, garbage and an event ID holding other content are recorded as faults.

// storeRetry bounds the wait between attempts at a store that failed.
const storeRetry = 5 * time.Second

// runShipper adds the configured stores to the state and keeps one shipTo loop
// running for each store the state has, until ctx ends.
func (s *Server) runShipper(ctx context.Context) {
	log := s.logs.shipper
	loops := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range loops {
			stop()
		}
		wg.Wait()
	}()
	// Once this server stops shipping, what the stores hold is the replicated
	// cursors alone.
	defer s.metrics.sent.Store(0)
	warned, over := false, false
	for ctx.Err() == nil {
		wake := s.feed.notify()
		s.addConfiguredStores(ctx)
		over = s.reportOutboxBound(over)
		stores, err := s.fsm.State().EventStores()
		if err != nil {
			log.Error("read event stores", "error", err)
		}
		if len(stores) == 0 && !warned {
			log.Warn("no event store (-event-store, or a node spawned with -role=event-store): events wait in the outbox")
		}
		warned = len(stores) == 0
		keys := map[string]bool{}
		for _, c := range stores {
			keys[c.Key()] = true
			if loops[c.Key()] == nil {
				lctx, stop := context.WithCancel(ctx)
				loops[c.Key()] = stop
				wg.Add(1)
				go func(key string) {
					defer wg.Done()
					s.shipTo(lctx, key)
				}(c.Key())
			}
		}
		for key, stop := range loops {
			if !keys[key] {
				stop()
				delete(loops, key)
			}
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// addConfiguredStores adds a cursor for each -event-store the state does not know.
func (s *Server) addConfiguredStores(ctx context.Context) {
	stores, err := s.fsm.State().EventStores()
	if err != nil {
		return
	}
	for _, addr := range s.config.EventStores {
		if slices.ContainsFunc(stores, func(c fsm.StoreCursor) bool { return c.Addr == addr }) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.Apply(actx, &fsm.EventStoreAdd{Addr: addr})
		cancel()
		if err != nil && ctx.Err() == nil {
			s.logs.shipper.Warn("adding an event store failed; trying again", "store", addr, "error", err)
			continue
		}
		s.logs.shipper.Info("event store added", "store", addr)
	}
}

// reportOutboxBound logs when the outbox crosses EventOutboxLimit, either way, and
// returns whether it is over now. Nothing is dropped: this is how an operator learns
// that the event stores have been away for too long.
func (s *Server) reportOutboxBound(wasOver bool) bool {
	meta, err := s.fsm.State().EventMeta()
	if err != nil {
		return wasOver
	}
	waiting, limit := meta.LastSeq-meta.ShippedSeq, s.config.EventOutboxLimit
	over := waiting > limit
	switch {
	case over && !wasOver:
		s.logs.shipper.Error("event outbox is over its bound; events are kept, memory grows until the event stores take them",
			"waiting", waiting, "limit", limit)
	case !over && wasOver:
		s.logs.shipper.Info("event outbox is back under its bound", "waiting", waiting, "limit", limit)
	}
	return over
}

// cursor returns the store's replicated cursor, and the state's event counters.
func (s *Server) cursor(key string) (fsm.StoreCursor, fsm.EventMeta, bool) {
	meta, err := s.fsm.State().EventMeta()
	if err != nil {
		return fsm.StoreCursor{}, meta, false
	}
	for _, c := range meta.Stores {
		if c.Key() == key {
			return c, meta, true
		}
	}
	return fsm.StoreCursor{}, meta, false
}

// storeAddr returns the gRPC address of the store: its own, or its node's endpoint.
func (s *Server) storeAddr(c fsm.StoreCursor) (string, error) {
	if c.Node == "" {
		return c.Addr, nil
	}
	n, err := s.fsm.State().Node(c.Node)
	if err != nil {
		return "", err
	}
	if n == nil {
		return "", fmt.Errorf("node %s is unknown", c.Node)
	}
	return n.Endpoint, nil
}

// storeClient returns a client of the store.
func (s *Server) storeClient(c fsm.StoreCursor) (gridpb.StorageClient, string, error) {
	addr, err := s.storeAddr(c)
	if err != nil {
		return nil, "", err
	}
	conn, err := s.storeConns.Get(addr)
	if err != nil {
		return nil, addr, fmt.Errorf("event store %s: %w", addr, err)
	}
	return gridpb.NewStorageClient(conn), addr, nil
}

// shipTo ships events to one store until ctx ends or the store is removed.
func (s *Server) shipTo(ctx context.Context, key string) {
	log := s.logs.shipper.With("store", key)
	s.stores.track(key)
	defer s.stores.untrack(key)
	sh := s.newShipping(key, nil)
	defer sh.close()
	backoff := 100 * time.Millisecond
	restores := s.restores.Load()
	for ctx.Err() == nil {
		wake := s.feed.notify()
		if n := s.restores.Load(); n != restores {
			// A snapshot replaced the state: ship from the store's replicated cursor
			// again, not from what this loop sent before.
			restores = n
			sh.rewind()
			log.Info("snapshot restored: shipping from the store's cursor again")
		}
		cur, _, ok := s.cursor(key)
		if !ok {
			return
		}
		shipped, err := sh.step(ctx, cur)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			s.storeFailed(ctx, sh, cur, err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, storeRetry)
			continue
		case shipped > 0:
			backoff = 100 * time.Millisecond
			continue // more may wait
		}
		backoff = 100 * time.Millisecond
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// storeFailed records a failed step: the store is down (and released once down for
// longer than EventStoreDeadAfter), or what the check found wrong with it.
func (s *Server) storeFailed(ctx context.Context, sh *shipping, cur fsm.StoreCursor, err error) {
	key := cur.Key()
	if f, ok := asFault(err); ok {
		s.recordFault(ctx, f.key, f)
		if f.key == key && f.reset {
			sh.rewind() // what it was sent is gone with the rest
		}
		return
	}
	var src *sourceError
	if errors.As(err, &src) {
		s.stores.update(key, func(st *StoreStatus) { st.LastError = err.Error() })
		s.logs.shipper.Warn("backfilling an event store waits", "store", key, "error", err)
		return
	}
	st := s.stores.update(key, func(st *StoreStatus) {
		if st.DownSince.IsZero() {
			st.DownSince = time.Now()
		}
		st.Reachable, st.LastError = false, err.Error()
	})
	sh.unchecked = true
	s.logs.shipper.Warn("shipping events failed; they wait in the outbox", "store", key, "error", err)
	if down := time.Since(st.DownSince); down > s.config.EventStoreDeadAfter && !cur.Released {
		s.recordFault(ctx, key, &storeFault{
			msg:     fmt.Sprintf("unreachable for %s (-event-store-dead-after %s): no longer holds the outbox back", down.Round(time.Second), s.config.EventStoreDeadAfter),
			release: true,
		})
	}
}
