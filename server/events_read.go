package server

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sutragrid/grid/eventquery"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// Reads of the history go to an event store that holds all of it (a complete,
// trusted store), and move on to the next when one cannot be reached; a store that
// failed lately is tried last. With no complete store, the most advanced trusted one
// is read, and the answer says what it lacks. Any server reads: the stores' cursors
// are in the replicated state.

// readFailMemory is how long a store that could not be reached is tried last.
const readFailMemory = 30 * time.Second

// readFailures remembers when each store last failed a read, by key.
type readFailures struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (r *readFailures) failed(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[string]time.Time{}
	}
	r.at[key] = time.Now()
}

func (r *readFailures) recent(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.at[key]) < readFailMemory
}

// readStores returns the stores to read, as one Store, and what the store that
// answers lacks of the shipped history; nil when there is no store to read. The
// complete stores come first; the most advanced incomplete one last, so that an
// answer still comes, marked partial, when no complete store can be reached.
func (s *Server) readStores(meta fsm.EventMeta) (eventquery.Store, func() []string, error) {
	var complete, partial []fsm.StoreCursor
	for _, c := range meta.Stores {
		switch {
		case c.Faulty:
		case c.Complete(meta.ShippedSeq):
			complete = append(complete, c)
		default:
			partial = append(partial, c)
		}
	}
	// Stores that failed lately go last, then stores with lost events.
	slices.SortStableFunc(complete, func(a, b fsm.StoreCursor) int {
		return rank(s.readFails.recent(a.Key()), a.LostFrom > 0) - rank(s.readFails.recent(b.Key()), b.LostFrom > 0)
	})
	read := complete
	if len(partial) > 0 {
		read = append(read, slices.MaxFunc(partial, func(a, b fsm.StoreCursor) int { return cmp.Compare(a.Acked, b.Acked) }))
	}
	if len(read) == 0 {
		if len(meta.Stores) > 0 {
			return nil, nil, fmt.Errorf("no event store can be read: every one is faulty (see grid status)")
		}
		return nil, nil, nil
	}
	var (
		stores []eventquery.Store
		keys   []string
		notes  [][]string
	)
	for _, c := range read {
		addr, err := s.storeAddr(c)
		if err != nil {
			continue
		}
		conn, err := s.storeConns.Get(addr)
		if err != nil {
			continue
		}
		stores = append(stores, eventquery.NewStorageStore(gridpb.NewStorageClient(conn)))
		keys = append(keys, c.Key())
		notes = append(notes, lacks(c, meta.ShippedSeq))
	}
	if len(stores) == 0 {
		return nil, nil, fmt.Errorf("no event store can be reached")
	}
	r := eventquery.NewReplicas(stores, func(i int, _ error) { s.readFails.failed(keys[i]) })
	return r, func() []string {
		if i := r.Answered(); i >= 0 {
			return notes[i]
		}
		return nil
	}, nil
}

// lacks says what of the shipped history up to shipped the store lacks.
func lacks(c fsm.StoreCursor, shipped uint64) []string {
	var out []string
	if c.Acked < shipped {
		out = append(out, fmt.Sprintf("event store %s holds the history up to seq %d only (it is being backfilled): events %d-%d cannot be read yet",
			c.Key(), c.Acked, c.Acked+1, shipped))
	}
	if c.LostFrom > 0 {
		out = append(out, fmt.Sprintf("events %d-%d are lost from event store %s: no store had them when it was backfilled",
			c.LostFrom, c.LostTo, c.Key()))
	}
	return out
}

func rank(failedLately, lost bool) int {
	r := 0
	if failedLately {
		r += 2
	}
	if lost {
		r++
	}
	return r
}
