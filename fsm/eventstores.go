package fsm

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// The event history may live in several event stores. Each store has a cursor in
// the replicated state: the highest seq up to which it holds every event. A new
// leader resumes each store where its cursor stands, and the outbox lets go of an
// event only once every store that holds the outbox back has it.
//
// A store holds the outbox back while it is complete (its cursor has reached the
// shipped seq), trusted (no fault is recorded against it) and not released (the
// leader releases a store that has been down for longer than
// -event-store-dead-after). A store that is behind the shipped seq is backfilled from
// another store by the leader and holds the outbox back again once it catches up; a
// released store does once it acknowledges anything again.

// Event-store commands.
const (
	// CmdEventStoreAdd adds an event store, with its cursor at 0.
	CmdEventStoreAdd CommandType = 21
	// CmdEventStoreAck moves a store's cursor forward.
	CmdEventStoreAck CommandType = 22
	// CmdEventStoreFault records what the leader found wrong with a store.
	CmdEventStoreFault CommandType = 23
	// CmdEventStoreRemove forgets a store.
	CmdEventStoreRemove CommandType = 24
)

// StoreCursor is one event store's replicated position. Exactly one of Addr and Node
// names it: a store given by -event-store by its address, a store the grid runs
// (spawned with the event-store role) by its node's ID.
type StoreCursor struct {
	Addr string `json:"addr,omitempty"`
	Node string `json:"node,omitempty"`
	// Acked is the highest seq up to which the store holds every event.
	Acked uint64 `json:"acked"`
	// Released is set while the store is released from holding the outbox back: it
	// was down for too long. Its next acknowledgement clears it.
	Released bool `json:"released,omitempty"`
	// Fault says what the leader last found wrong with the store; FaultAt when. While
	// Faulty, the store neither holds the outbox back nor is read from.
	Fault   string    `json:"fault,omitempty"`
	FaultAt time.Time `json:"fault_at,omitempty"`
	Faulty  bool      `json:"faulty,omitempty"`
	// Conflict is set with Faulty when the store holds other content under an event's
	// ID: only its loss of that data (a wiped store) clears it.
	Conflict bool `json:"conflict,omitempty"`
	// LostFrom..LostTo are seqs the store lacks because no store had them any more
	// when it was backfilled: its cursor passed them so that it could go on. Listings
	// read from it say so. Zero: none.
	LostFrom uint64 `json:"lost_from,omitempty"`
	LostTo   uint64 `json:"lost_to,omitempty"`
	// AddedAt is when the store was added.
	AddedAt time.Time `json:"added_at"`
}

// Key names the store: its node's ID, or its address.
func (c *StoreCursor) Key() string {
	if c.Node != "" {
		return "node:" + c.Node
	}
	return c.Addr
}

// Complete reports whether the store holds every shipped event: its cursor reached
// shipped, and nothing makes it untrusted.
func (c *StoreCursor) Complete(shipped uint64) bool { return !c.Faulty && c.Acked >= shipped }

// holds reports whether the store holds the outbox back.
func (c *StoreCursor) holds(shipped uint64) bool { return c.Complete(shipped) && !c.Released }

// EventStoreAdd adds an event store, named by exactly one of Addr and Node. Adding a
// store that is there already does nothing.
type EventStoreAdd struct {
	Addr string `json:"addr,omitempty"`
	Node string `json:"node,omitempty"`
}

func (*EventStoreAdd) Type() CommandType { return CmdEventStoreAdd }
func (c *EventStoreAdd) Validate() error { return validStoreName(c.Addr, c.Node) }

// EventStoreAck records that the store named Key holds every event up to UpTo.
type EventStoreAck struct {
	Key  string `json:"key"`
	UpTo uint64 `json:"up_to"`
}

func (*EventStoreAck) Type() CommandType { return CmdEventStoreAck }
func (c *EventStoreAck) Validate() error {
	if c.Key == "" || c.UpTo == 0 {
		return errors.New("key and a positive up_to are required")
	}
	return nil
}

// EventStoreFault records what the leader found about the store named Key. Fault
// describes it; Reset moves the cursor back to 0 (the store lost events it had
// acknowledged: it is backfilled again, and trusted again); Untrusted marks the
// store faulty (it answered garbage), Conflict too (it holds other content under an
// event's ID); Release releases it (down for too long); Clear clears a fault after
// the store answered correctly again; SkipTo moves the cursor past seqs no store
// holds any more, recording them as lost in this store.
type EventStoreFault struct {
	Key       string `json:"key"`
	Fault     string `json:"fault,omitempty"`
	Reset     bool   `json:"reset,omitempty"`
	Untrusted bool   `json:"untrusted,omitempty"`
	Conflict  bool   `json:"conflict,omitempty"`
	Release   bool   `json:"release,omitempty"`
	Clear     bool   `json:"clear,omitempty"`
	SkipTo    uint64 `json:"skip_to,omitempty"`
}

func (*EventStoreFault) Type() CommandType { return CmdEventStoreFault }
func (c *EventStoreFault) Validate() error {
	switch {
	case c.Key == "":
		return errors.New("key is required")
	case c.Clear && (c.Reset || c.Untrusted || c.Conflict || c.Release):
		return errors.New("clear excludes reset, untrusted, conflict and release")
	case c.Reset && c.SkipTo > 0:
		return errors.New("reset excludes skip_to")
	}
	return nil
}

// EventStoreRemove forgets the store named Key.
type EventStoreRemove struct {
	Key string `json:"key"`
}

func (*EventStoreRemove) Type() CommandType { return CmdEventStoreRemove }
func (c *EventStoreRemove) Validate() error {
	if c.Key == "" {
		return errors.New("key is required")
	}
	return nil
}

func validStoreName(addr, node string) error {
	if (addr == "") == (node == "") {
		return errors.New("exactly one of addr and node names an event store")
	}
	if node != "" {
		return validName("node", node)
	}
	return nil
}

// applyEventStore applies the event-store commands; ok is false for any other.
func (x *applyCtx) applyEventStore(c Command) (ok bool, err error) {
	switch c := c.(type) {
	case *EventStoreAdd:
		return true, x.eventStoreAdd(c.Addr, c.Node)
	case *EventStoreAck:
		return true, x.eventStoreAck(c)
	case *EventStoreFault:
		return true, x.eventStoreFault(c)
	case *EventStoreRemove:
		return true, x.changeStore(c.Key, func(stores []StoreCursor, i int) []StoreCursor {
			return slices.Delete(stores, i, i+1)
		})
	}
	return false, nil
}

func (x *applyCtx) eventStoreAdd(addr, node string) error {
	c := StoreCursor{Addr: addr, Node: node, AddedAt: x.env.Time}
	if storeIndex(x.meta.Stores, c.Key()) >= 0 {
		return nil
	}
	if len(x.meta.Stores) == 0 && addr != "" {
		// The first store of a grid that shipped to its one -event-store before
		// stores had cursors: ShippedSeq was that store's cursor. If this is another
		// store, the leader finds the events missing and backfills it.
		c.Acked = x.meta.ShippedSeq
	}
	x.meta.Stores = append(slices.Clone(x.meta.Stores), c)
	x.metaDirty = true
	return nil
}

// addNodeStore adds the store a spawned event-store node is, and removeNodeStore
// forgets it once the node is stopped.
func (x *applyCtx) addNodeStore(id string) error { return x.eventStoreAdd("", id) }

func (x *applyCtx) removeNodeStore(id string) error {
	return x.changeStore("node:"+id, func(stores []StoreCursor, i int) []StoreCursor {
		return slices.Delete(stores, i, i+1)
	})
}

func (x *applyCtx) eventStoreAck(c *EventStoreAck) error {
	if c.UpTo > x.meta.LastSeq {
		return rejected("cannot acknowledge seq %d: the last event is %d", c.UpTo, x.meta.LastSeq)
	}
	if storeIndex(x.meta.Stores, c.Key) < 0 {
		return rejected("no event store %s", c.Key)
	}
	return x.changeStore(c.Key, func(stores []StoreCursor, i int) []StoreCursor {
		s := &stores[i]
		s.Acked = max(s.Acked, c.UpTo)
		s.Released = false
		return stores
	})
}

func (x *applyCtx) eventStoreFault(c *EventStoreFault) error {
	if storeIndex(x.meta.Stores, c.Key) < 0 {
		return rejected("no event store %s", c.Key)
	}
	if c.SkipTo > x.meta.LastSeq {
		return rejected("cannot skip to seq %d: the last event is %d", c.SkipTo, x.meta.LastSeq)
	}
	return x.changeStore(c.Key, func(stores []StoreCursor, i int) []StoreCursor {
		s := &stores[i]
		if c.Fault != "" {
			s.Fault, s.FaultAt = c.Fault, x.env.Time
		}
		if c.Reset {
			s.Acked, s.Faulty, s.Conflict, s.LostFrom, s.LostTo = 0, false, false, 0, 0
		}
		if c.SkipTo > s.Acked {
			if s.LostFrom == 0 {
				s.LostFrom = s.Acked + 1
			}
			s.Acked, s.LostTo = c.SkipTo, c.SkipTo
		}
		s.Conflict = (s.Conflict || c.Conflict) && !c.Clear
		s.Faulty = (s.Faulty || c.Untrusted || c.Conflict) && !c.Clear
		s.Released = s.Released || c.Release
		return stores
	})
}

// changeStore applies change to a copy of the stores (rows in the state are shared
// with readers) where the store named key is at index i, then trims the outbox to what
// the stores that hold it back all have. A key no store has changes nothing.
func (x *applyCtx) changeStore(key string, change func(stores []StoreCursor, i int) []StoreCursor) error {
	i := storeIndex(x.meta.Stores, key)
	if i < 0 {
		return nil
	}
	x.meta.Stores = change(slices.Clone(x.meta.Stores), i)
	x.metaDirty = true
	return x.trimOutbox()
}

// trimOutbox lets go of the events that every store holding the outbox back has. With
// no such store it keeps everything: the outbox is then the only complete copy of
// what the stores lack.
func (x *applyCtx) trimOutbox() error {
	upTo, any := uint64(0), false
	for i := range x.meta.Stores {
		s := &x.meta.Stores[i]
		if !s.holds(x.meta.ShippedSeq) {
			continue
		}
		if !any || s.Acked < upTo {
			upTo, any = s.Acked, true
		}
	}
	if !any || upTo <= x.meta.ShippedSeq {
		return nil
	}
	return x.eventsShipped(&EventsShipped{UpTo: upTo})
}

func storeIndex(stores []StoreCursor, key string) int {
	return slices.IndexFunc(stores, func(s StoreCursor) bool { return s.Key() == key })
}

// EventStores returns the event stores' cursors, in the order they were added.
func (s *State) EventStores() ([]StoreCursor, error) {
	meta, err := s.EventMeta()
	if err != nil {
		return nil, fmt.Errorf("read event stores: %w", err)
	}
	return meta.Stores, nil
}
