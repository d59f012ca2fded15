package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/eventquery"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// deriveEvents derives n sampled heartbeats of agent a1 (registered on first use),
// through whichever server leads: a leader elected in the test's first seconds may
// still lose its place.
func deriveEvents(t *testing.T, c *testCluster, n int) {
	t.Helper()
	ctx := context.Background()
	lastSeq := func(s *Server) uint64 {
		meta, _ := s.State().EventMeta()
		return meta.LastSeq
	}
	apply := func(cmd fsm.Command) {
		t.Helper()
		want := lastSeq(c.leader()) + 1
		for attempt := 1; ; attempt++ {
			_, err := c.leader().Apply(ctx, cmd)
			if err == nil {
				return
			}
			// A leader that lost its leadership while committing may still have had
			// the command committed, by its successor: once the new leader has
			// applied its whole log (a barrier), the event is either there or not,
			// and only then is the command sent again. Each command here derives
			// one event, and the tests count them.
			l := c.leader()
			if l.raft.Barrier(5*time.Second).Error() == nil && lastSeq(l) >= want {
				return
			}
			if attempt == 5 {
				t.Fatal(err)
			}
		}
	}
	if st, _ := c.leader().State().Agent("a1"); st == nil {
		apply(&fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr})
	}
	for range n {
		apply(&fsm.SampleHeartbeat{Name: "a1", LastSeen: time.Now()})
	}
}

// storeHolds checks that es holds events 1..last exactly (and nothing after), as s's
// outbox or feed has them where it still does.
func storeHolds(es *evStore, last uint64) error {
	c, ctx := es.client(es.t)
	evs, err := eventquery.ReadRange(ctx, c, 1, last)
	if err != nil {
		return err
	}
	if len(evs) != int(last) {
		return fmt.Errorf("%d events, want %d", len(evs), last)
	}
	if _, err := eventquery.ReadRange(ctx, c, last+1, last+1); !errors.Is(err, eventquery.ErrMissing) {
		return fmt.Errorf("event %d: %v, want none stored", last+1, err)
	}
	return nil
}

// storeState returns the store's entry in GET /v1/status.
func storeState(t *testing.T, s *Server, name string) (api.EventStoreStatus, api.StatusEvents, error) {
	st, err := getStatus(t, s)
	if err != nil {
		return api.EventStoreStatus{}, api.StatusEvents{}, err
	}
	for _, es := range st.Events.Stores {
		if es.Name == name {
			return es, st.Events, nil
		}
	}
	return api.EventStoreStatus{}, st.Events, fmt.Errorf("no store %s in %+v", name, st.Events.Stores)
}

// waitStore waits until the store's status passes cond.
func waitStore(t *testing.T, s *Server, name, what string, cond func(es api.EventStoreStatus, ev api.StatusEvents) error) {
	t.Helper()
	gridtest.WaitFor(t, 30*time.Second, what, func() error {
		es, ev, err := storeState(t, s, name)
		if err != nil {
			return err
		}
		return cond(es, ev)
	})
}

func inSync(es api.EventStoreStatus, ev api.StatusEvents) error {
	if es.State != api.StoreInSync || es.AckedSeq != ev.LastSeq {
		return fmt.Errorf("store %s is %s at %d of %d (%s)", es.Name, es.State, es.AckedSeq, ev.LastSeq, es.LastError)
	}
	return nil
}

// Two event stores get the whole history each; a store that is down holds the
// outbox back until it returns, or until it has been down for
// EventStoreDeadAfter; a wiped store is found out and backfilled from the other; a
// new leader resumes each store where it was; reads move to the store that answers.
func TestEventStoresReplicate(t *testing.T) {
	es1, es2 := startEvStore(t), startEvStore(t)
	c := newClusterWith(t, 3, func(cfg *Config) {
		cfg.EventStores = []string{es1.addr, es2.addr}
		cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Hour, time.Hour
		cfg.EventStoreDeadAfter = 8 * time.Second
	})
	leader := c.leader()
	lastSeq := func() uint64 {
		meta, err := leader.State().EventMeta()
		if err != nil {
			t.Fatal(err)
		}
		return meta.LastSeq
	}
	bothInSync := func(what string) {
		t.Helper()
		waitStore(t, leader, es1.addr, what+": store 1 in sync", inSync)
		waitStore(t, leader, es2.addr, what+": store 2 in sync", inSync)
		for i, es := range []*evStore{es1, es2} {
			if err := storeHolds(es, lastSeq()); err != nil {
				t.Fatalf("%s: store %d: %v", what, i+1, err)
			}
		}
	}

	deriveEvents(t, c, 50)
	bothInSync("shipped to both")

	t.Run("a store down holds the outbox back until it returns", func(t *testing.T) {
		es2.stop()
		before := lastSeq()
		deriveEvents(t, c, 20)
		waitStore(t, leader, es2.addr, "store 2 down", func(es api.EventStoreStatus, ev api.StatusEvents) error {
			if es.State != api.StoreDown || ev.ShippedSeq != before || ev.Waiting != 20 {
				return fmt.Errorf("store 2 %s, shipped %d, waiting %d", es.State, ev.ShippedSeq, ev.Waiting)
			}
			return nil
		})
		// Reads move to the store that answers, with nothing missing.
		list, err := apiClient(t, leader).Events(context.Background(), api.EventQuery{Limit: 1000})
		if err != nil || list.Partial != "" || len(list.Events) != int(lastSeq()) {
			t.Fatalf("list with store 2 down: %d events, partial %q, %v", len(list.Events), list.Partial, err)
		}
		es2.start()
		bothInSync("store 2 back")
	})

	t.Run("a wiped store is found out and backfilled", func(t *testing.T) {
		es2.stop()
		es2.dir = t.TempDir() // its data is gone
		es2.start()
		deriveEvents(t, c, 5)
		bothInSync("store 2 backfilled")
		es, _, err := storeState(t, leader, es2.addr)
		if err != nil || !strings.Contains(es.Fault, "lost data it had acknowledged") {
			t.Fatalf("store 2's fault %q (%v), want the loss reported", es.Fault, err)
		}
	})

	t.Run("reads from a store being backfilled say what it lacks", func(t *testing.T) {
		es1.stop() // the only complete store, and the only source
		es2.stop()
		es2.dir = t.TempDir()
		es2.start()
		deriveEvents(t, c, 3)
		waitStore(t, leader, es2.addr, "store 2 reset, waiting for a source", func(es api.EventStoreStatus, ev api.StatusEvents) error {
			if es.State != api.StoreCatchingUp || es.AckedSeq != 0 || !strings.Contains(es.LastError, "backfill events from 1") {
				return fmt.Errorf("store 2 %s at %d (%s)", es.State, es.AckedSeq, es.LastError)
			}
			return nil
		})
		list, err := apiClient(t, leader).Events(context.Background(), api.EventQuery{Limit: 1000})
		if err != nil || !strings.Contains(list.Partial, "holds the history up to seq 0 only") {
			t.Fatalf("list: %d events, partial %q, %v", len(list.Events), list.Partial, err)
		}
		es1.start()
		bothInSync("store 1 back, store 2 backfilled")
	})

	t.Run("a new leader resumes each store", func(t *testing.T) {
		if err := leader.raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}
		leader = c.leader()
		deriveEvents(t, c, 10)
		bothInSync("after the transfer")
	})

	t.Run("a store down for too long is released", func(t *testing.T) {
		es1.stop()
		deriveEvents(t, c, 10)
		waitStore(t, leader, es1.addr, "store 1 released", func(es api.EventStoreStatus, ev api.StatusEvents) error {
			if !es.Released || es.HoldsOutbox || ev.Waiting != 0 {
				return fmt.Errorf("store 1 %s, released %v, waiting %d", es.State, es.Released, ev.Waiting)
			}
			return nil
		})
		es1.start()
		bothInSync("store 1 back after its release")
	})
}

// A store that holds other content under an event's ID, or answers garbage, is
// found out, reported faulty and not read from; the history it should hold is not
// taken as stored.
func TestEventStoreFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"other content under an event's ID", []byte(`{"seq":3,"type":"agent_registered","agent_id":"someone-else"}`), "holds other content under event 3"},
		{"garbage", []byte(`not json at all`), "answered garbage"},
		{"a wrong seq", []byte(`{"seq":4,"type":"agent_registered"}`), "answered garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, bad := startEvStore(t), startEvStore(t)
			// The bad store holds something under event 3's ID before the grid ships.
			c, ctx := bad.client(t)
			if _, err := c.LearnBatch(ctx, &gridpb.LearnBatchRequest{Concepts: []*gridpb.Concept{{
				Id: events.EventID(3), Content: tc.content, Attributes: map[string]string{"kind": events.KindEvent, "seq": "3"},
				Strength: 1, Confidence: 1}}}); err != nil {
				t.Fatal(err)
			}
			cl := newClusterWith(t, 1, func(cfg *Config) {
				cfg.EventStores = []string{good.addr, bad.addr}
				cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Hour, time.Hour
			})
			s := cl.leader()
			deriveEvents(t, cl, 10)
			waitStore(t, s, bad.addr, "the bad store faulty", func(es api.EventStoreStatus, ev api.StatusEvents) error {
				if es.State != api.StoreFaulty || !strings.Contains(es.Fault, tc.want) || es.HoldsOutbox {
					return fmt.Errorf("bad store %s, fault %q", es.State, es.Fault)
				}
				return nil
			})
			waitStore(t, s, good.addr, "the good store in sync", inSync)
			// Reads go to the good store: the listing is whole and right.
			list, err := apiClient(t, s).Events(context.Background(), api.EventQuery{Limit: 1000})
			meta, _ := s.State().EventMeta()
			if err != nil || list.Partial != "" || len(list.Events) != int(meta.LastSeq) {
				t.Fatalf("list: %d events, partial %q, %v", len(list.Events), list.Partial, err)
			}
			for _, e := range list.Events {
				if e.Seq == 3 && e.AgentID != "a1" {
					t.Fatalf("event 3 read as %+v", e)
				}
			}
		})
	}
}
