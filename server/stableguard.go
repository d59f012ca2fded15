package server

import (
	"sync"

	"github.com/hashicorp/raft"
)

// stableGuard is Raft's stable store (its current term and vote), kept from use once
// the server closes it. Raft's transport answers heartbeats on goroutines of its own,
// which Raft's Shutdown does not wait for: one that passed Raft's shutdown check just
// before Shutdown may save a new term after the store is closed, and Raft panics when
// that save fails, taking the process down in the middle of a clean stop. Such a call
// waits here for good instead: the server is going away, and nobody needs its answer.
// Closing waits for calls in progress, so none meets a closed store.
type stableGuard struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

// enter admits a call, or blocks the calling goroutine for good once closed.
func (g *stableGuard) enter() {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		select {}
	}
}

// close turns every later call away, once the calls in progress are done.
func (g *stableGuard) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *stableGuard) Set(key, val []byte) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.Set(key, val)
}

func (g *stableGuard) Get(key []byte) ([]byte, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.Get(key)
}

func (g *stableGuard) SetUint64(key []byte, val uint64) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.SetUint64(key, val)
}

func (g *stableGuard) GetUint64(key []byte) (uint64, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.GetUint64(key)
}
