package api

import (
	"context"
	"time"
)

// Status is the cluster at a glance, as the leader sees it: who leads, how many
// servers, agents and nodes there are and how they fare, and how far the event
// pipeline has got. GET /v1/status
type Status struct {
	Leader StatusLeader `json:"leader"`
	// Servers counts the servers in the Raft configuration.
	Servers int          `json:"servers"`
	Agents  StatusAgents `json:"agents"`
	Nodes   StatusNodes  `json:"nodes"`
	// ClusterHealth is the type of the last cluster event: "cluster_healthy",
	// "cluster_degraded" or "cluster_critical"; "" while no agent is registered.
	ClusterHealth string       `json:"cluster_health"`
	Events        StatusEvents `json:"events"`
}

// StatusLeader is the server that leads Raft.
type StatusLeader struct {
	// Name is the leader's gossip name.
	Name string `json:"name"`
	// ID is the leader's Raft ID.
	ID string `json:"id"`
	// Address is the leader's Raft address, host:port.
	Address string `json:"address"`
}

// StatusAgents counts the agents by health.
type StatusAgents struct {
	Total    int `json:"total"`
	Healthy  int `json:"healthy"`
	Degraded int `json:"degraded"`
	Offline  int `json:"offline"`
}

// StatusNodes counts the storage nodes by status, as `grid node status` shows them:
// an active node whose agent is offline counts as lost.
type StatusNodes struct {
	Total      int `json:"total"`
	Pending    int `json:"pending"`
	Running    int `json:"running"`
	Restarting int `json:"restarting"`
	Stopping   int `json:"stopping"`
	Stopped    int `json:"stopped"`
	Failed     int `json:"failed"`
	Lost       int `json:"lost"`
}

// StatusEvents is the event pipeline: events are numbered 1, 2, 3, … as the servers
// derive them, and wait in the replicated outbox until the leader has shipped them to
// the event store.
type StatusEvents struct {
	// LastSeq is the seq of the last event derived (0 before the first).
	LastSeq uint64 `json:"last_seq"`
	// ShippedSeq is the last seq the event store acknowledged.
	ShippedSeq uint64 `json:"shipped_seq"`
	// Waiting is how many events wait in the outbox: LastSeq - ShippedSeq.
	Waiting uint64 `json:"waiting"`
	// EventStore is the event stores' gRPC addresses, host:port, separated by
	// commas; "" when there is none (events then wait in the outbox). Stores has
	// each one in full.
	EventStore string `json:"event_store"`
	// StoreReachable is whether the leader reached an event store's health check
	// when it answered this request.
	StoreReachable bool `json:"store_reachable"`
	// LastError is the leader's last failure to ship events to a store, named; ""
	// since a success.
	LastError string `json:"last_error"`
	// LastShipped is when this leader last stored a batch of events in a store (zero
	// if it has not since it became leader).
	LastShipped time.Time `json:"last_shipped"`
	// Stores are the event stores, in the order they were added.
	Stores []EventStoreStatus `json:"stores"`
	// OutboxLimit is the number of waiting events above which the servers report the
	// outbox as over its bound; OverLimit says it is. No event is ever dropped.
	OutboxLimit uint64 `json:"outbox_limit"`
	OverLimit   bool   `json:"over_limit"`
}

// States of an event store.
const (
	// StoreInSync: it holds every shipped event; it gets the new ones as they come.
	StoreInSync = "in-sync"
	// StoreCatchingUp: it lacks shipped events (new, wiped, or back after a long
	// absence) and is being backfilled from another store.
	StoreCatchingUp = "catching-up"
	// StoreDown: the leader cannot reach it.
	StoreDown = "down"
	// StoreFaulty: it answered garbage, or holds other content under an event's ID;
	// it is not read from (Fault says what).
	StoreFaulty = "faulty"
)

// EventStoreStatus is one event store as the leader sees it.
type EventStoreStatus struct {
	// Name is the store's address, or "node:ID" for a node the grid runs with the
	// event-store role; Address its gRPC address; Node that node's ID.
	Name    string `json:"name"`
	Address string `json:"address"`
	Node    string `json:"node,omitempty"`
	// State is one of the Store* constants.
	State string `json:"state"`
	// AckedSeq is the highest seq up to which the store holds every event; Lag how
	// many events it lacks (LastSeq - AckedSeq).
	AckedSeq uint64 `json:"acked_seq"`
	Lag      uint64 `json:"lag"`
	// HoldsOutbox says the outbox keeps events until this store has them; a store
	// down for longer than -event-store-dead-after is Released from it.
	HoldsOutbox bool `json:"holds_outbox"`
	Released    bool `json:"released"`
	// Fault is the last fault found in the store ("" if none), and FaultAt when.
	Fault   string    `json:"fault,omitempty"`
	FaultAt time.Time `json:"fault_at,omitempty"`
	// LostFrom..LostTo are events missing from this store because no store had them
	// any more when it was backfilled (0: none).
	LostFrom uint64 `json:"lost_from,omitempty"`
	LostTo   uint64 `json:"lost_to,omitempty"`
	// BackfillFrom names the store it is being backfilled from, while it is.
	BackfillFrom string `json:"backfill_from,omitempty"`
	// LastError is the last failure to reach it ("" since a success); DownSince when
	// the failures began; LastShipped when the leader last stored events in it.
	LastError   string    `json:"last_error,omitempty"`
	DownSince   time.Time `json:"down_since,omitempty"`
	LastShipped time.Time `json:"last_shipped,omitempty"`
}

// Status returns the cluster at a glance, as the leader sees it. GET /v1/status
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out Status
	if err := c.get(ctx, "/v1/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
