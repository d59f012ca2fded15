package server

import (
	"sync"
	"time"
)

// StoreStatus is one event store as the leader's shipper last saw it.
type StoreStatus struct {
	// Reachable is whether the last call to the store succeeded; LastError the last
	// failure ("" since a success); DownSince when the failures began (zero while it
	// answers).
	Reachable bool
	LastError string
	DownSince time.Time
	// LastShipped is when a batch was last stored in it.
	LastShipped time.Time
	// Backfilling names the store it is being backfilled from ("" when it is not).
	Backfilling string
}

// reached records a successful call.
func (st *StoreStatus) reached() {
	st.Reachable, st.LastError, st.DownSince = true, "", time.Time{}
}

// storeStatuses are the shipper's views of the stores it ships to, by key.
type storeStatuses struct {
	mu sync.Mutex
	m  map[string]*StoreStatus
}

func (s *storeStatuses) track(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*StoreStatus{}
	}
	s.m[key] = &StoreStatus{}
}

func (s *storeStatuses) untrack(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// update changes the store's status, if it is tracked, and returns a copy.
func (s *storeStatuses) update(key string, f func(*StoreStatus)) StoreStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	if !ok {
		return StoreStatus{}
	}
	f(st)
	return *st
}

// get returns the store's status, and whether this server ships to it.
func (s *storeStatuses) get(key string) (StoreStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	if !ok {
		return StoreStatus{}, false
	}
	return *st, true
}

// reachable reports whether the store answered its last call; a store this server
// does not ship to counts as reachable (it knows nothing against it).
func (s *storeStatuses) reachable(key string) bool {
	st, ok := s.get(key)
	return !ok || st.Reachable || st.LastError == ""
}
