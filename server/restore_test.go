package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
)

// evLine renders what identifies an event in a history: its seq, type and
// description (derived from all its fields but the timestamp).
func evLine(e *events.Event) string {
	return fmt.Sprintf("%d %s %q", e.Seq, e.Type, e.Description)
}

// derived returns the lines of the events s's feed holds with seqs from..to, and an
// error naming the first it lacks.
func derived(s *Server, from, to uint64) ([]string, error) {
	var out []string
	for seq := from; seq <= to; seq++ {
		e := s.feed.get(seq)
		if e == nil {
			return nil, fmt.Errorf("%s has not derived event %d", s.Name(), seq)
		}
		out = append(out, evLine(e))
	}
	return out, nil
}

// sameDerived waits until every server has derived the events from..to and checks
// that they derived the same; it returns the leader's.
func sameDerived(t *testing.T, c *testCluster, leader *Server, from, to uint64) []string {
	t.Helper()
	var want []string
	gridtest.WaitFor(t, 20*time.Second, fmt.Sprintf("events %d-%d derived everywhere", from, to), func() error {
		var err error
		if want, err = derived(leader, from, to); err != nil {
			return err
		}
		for _, s := range c.servers {
			got, err := derived(s, from, to)
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s derived %q, the leader %q", s.Name(), got, want)
			}
		}
		return nil
	})
	return want
}

// An operator's restore puts the state back but never rewrites the history: the
// events after it take seqs after the highest assigned before it, the restore is an
// event itself, every server derives the same, and the event store holds seq 1..N
// exactly once, each event as the servers derived it.
func TestSnapshotRestoreKeepsHistory(t *testing.T) {
	cases := []struct {
		name string
		// via picks the server the operator asks.
		via func(leader *Server, c *testCluster) *Server
	}{
		{"through the leader", func(leader *Server, _ *testCluster) *Server { return leader }},
		{"through a follower", func(leader *Server, c *testCluster) *Server { return followers(leader, c.servers)[0] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := startEvStore(t)
			c := newEvCluster(t, 3, es.addr)
			leader := c.leader()
			cl := apiClient(t, tc.via(leader, c))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			register(t, leader, "a1") // agent_registered, cluster_healthy
			evWaitShipped(t, leader)
			rc, err := cl.SnapshotSave(ctx)
			if err != nil {
				t.Fatalf("snapshot save: %v", err)
			}
			archiveBytes, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("read snapshot: %v", err)
			}
			arch, err := readArchive(bytes.NewReader(archiveBytes))
			if err != nil {
				t.Fatalf("read archive: %v", err)
			}
			removeTemp(arch.state)

			// More history after the snapshot, shipped and not.
			register(t, leader, "a2")
			register(t, leader, "a3")
			evSetStatus(t, leader, "a3", fsm.AgentOffline)
			evWaitShipped(t, leader)
			es.blockWrites.Store(true)
			evSetStatus(t, leader, "a2", fsm.AgentOffline) // waits in the outbox
			before := evMeta(t, leader).LastSeq
			history := sameDerived(t, c, leader, 1, before)

			if err := cl.SnapshotRestore(ctx, bytes.NewReader(archiveBytes)); err != nil {
				t.Fatalf("snapshot restore: %v", err)
			}
			restoredSeq := before + 1
			// Every server holds the snapshot's agents and the carried-forward pipeline.
			gridtest.WaitFor(t, 20*time.Second, "the restored state everywhere", func() error {
				for _, s := range c.servers {
					m := evMeta(t, s)
					if m.LastSeq < restoredSeq {
						return fmt.Errorf("%s: last seq %d", s.Name(), m.LastSeq)
					}
					agents, err := s.State().Agents()
					if err != nil {
						return err
					}
					if len(agents) != 1 || agents[0].Name != "a1" {
						return fmt.Errorf("%s: %d agents after the restore", s.Name(), len(agents))
					}
				}
				return nil
			})
			restored := sameDerived(t, c, leader, restoredSeq, restoredSeq)
			ev := leader.feed.get(restoredSeq)
			if ev.Type != events.ClusterRestored || ev.SnapshotIndex != arch.meta.Index || ev.SnapshotTime == nil {
				t.Fatalf("event %d after the restore: %+v, want cluster_restored of index %d", restoredSeq, ev, arch.meta.Index)
			}
			// The event that waited in the outbox is still there, under its seq.
			if e, err := leader.State().OutboxEvent(before); err != nil || e == nil || e.Type != events.AgentOffline {
				t.Fatalf("unshipped event %d after the restore: %+v, %v", before, e, err)
			}

			// The next events go on after the restore.
			es.blockWrites.Store(false)
			register(t, leader, "a4")
			last := evMeta(t, leader).LastSeq
			after := sameDerived(t, c, leader, restoredSeq+1, last)
			if e := leader.feed.get(restoredSeq + 1); e.Type != events.AgentRegistered || e.AgentID != "a4" {
				t.Fatalf("event %d: %+v, want a4's registration", restoredSeq+1, e)
			}
			evWaitShipped(t, leader)

			// The store holds 1..N once each, as the servers derived them.
			want := append(append(history, restored...), after...)
			var stored []string
			q := api.EventQuery{Ascending: true, Limit: 1000}
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatal("the listing does not end")
				}
				l, err := apiClient(t, leader).Events(ctx, q)
				if err != nil {
					t.Fatalf("list events: %v", err)
				}
				for i := range l.Events {
					stored = append(stored, evLine(&l.Events[i]))
				}
				if q.PageToken = l.NextPageToken; q.PageToken == "" {
					break
				}
			}
			if fmt.Sprint(stored) != fmt.Sprint(want) {
				t.Fatalf("the store holds\n%q\nwant\n%q", stored, want)
			}
		})
	}
}

// Commands keep coming while the operator restores: none may take a seq that the
// restore assigns, so the store holds 1..N once each, cluster_restored among them,
// and each event as every server derived it.
func TestSnapshotRestoreUnderWrites(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 3, es.addr)
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	register(t, leader, "a1")
	rc, err := apiClient(t, leader).SnapshotSave(ctx)
	if err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	archiveBytes, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	register(t, leader, "a2")

	// Heartbeat samples of a1, known before and after the restore, one after another
	// through a follower, until told to stop. A sample may fail while the leader
	// restores; the next goes on.
	stop := make(chan struct{})
	writerDone := make(chan int)
	go func() {
		ok := 0
		via := followers(leader, c.servers)[0]
		for {
			select {
			case <-stop:
				writerDone <- ok
				return
			default:
			}
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := via.Apply(actx, &fsm.SampleHeartbeat{Name: "a1", LastSeen: time.Now()}); err == nil {
				ok++
			}
			acancel()
		}
	}()
	// Some samples before the restore, then the restore among them.
	gridtest.WaitFor(t, 20*time.Second, "samples under way", func() error {
		if m := evMeta(t, leader); m.LastSeq < 10 {
			return fmt.Errorf("last seq %d", m.LastSeq)
		}
		return nil
	})
	if err := apiClient(t, leader).SnapshotRestore(ctx, bytes.NewReader(archiveBytes)); err != nil {
		t.Fatalf("snapshot restore: %v", err)
	}
	restoredAt := evMeta(t, leader).LastSeq
	gridtest.WaitFor(t, 20*time.Second, "samples after the restore", func() error {
		if m := evMeta(t, leader); m.LastSeq < restoredAt+10 {
			return fmt.Errorf("last seq %d", m.LastSeq)
		}
		return nil
	})
	close(stop)
	<-writerDone
	evWaitShipped(t, leader)
	last := evMeta(t, leader).LastSeq

	// Every server derived the same events since the restore (their feeds start
	// again at a restore, from the outbox).
	var restoredSeq uint64
	for seq := last; seq > 0; seq-- {
		if e := leader.feed.get(seq); e == nil || e.Type == events.ClusterRestored {
			if e != nil {
				restoredSeq = seq
			}
			break
		}
	}
	if restoredSeq == 0 {
		t.Fatal("the leader's feed holds no cluster_restored")
	}
	derivedSince := sameDerived(t, c, leader, restoredSeq, last)

	var stored []api.Event
	q := api.EventQuery{Ascending: true, Limit: 1000}
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("the listing does not end")
		}
		l, err := apiClient(t, leader).Events(ctx, q)
		if err != nil {
			t.Fatalf("list events: %v", err)
		}
		stored = append(stored, l.Events...)
		if q.PageToken = l.NextPageToken; q.PageToken == "" {
			break
		}
	}
	if uint64(len(stored)) != last {
		t.Fatalf("the store holds %d events, the servers derived %d", len(stored), last)
	}
	restores := 0
	for i := range stored {
		e := &stored[i]
		if e.Seq != uint64(i+1) {
			t.Fatalf("stored event %d has seq %d", i+1, e.Seq)
		}
		if e.Type == events.ClusterRestored {
			restores++
		}
		if e.Seq >= restoredSeq {
			if got, want := evLine(e), derivedSince[e.Seq-restoredSeq]; got != want {
				t.Fatalf("the store holds %s, the servers derived %s", got, want)
			}
		}
	}
	if restores != 1 {
		t.Fatalf("%d cluster_restored events stored, want 1", restores)
	}
}
