package fsm

import (
	"fmt"
	"io"
	"time"

	"github.com/sutragrid/grid/events"
)

// An operator's snapshot restore puts the state back to the snapshot's, but the
// history must stay append-only: the event store already holds every event up to the
// current last seq, and the snapshot's event counters are older. Restore itself cannot
// tell an operator's restore from Raft installing a snapshot on a follower that
// catches up, which must load an exact copy; so the server rewrites the operator's
// snapshot before it hands it to Raft (CarryForward), and every server then loads that
// rewritten stream, exactly, whether through the leader's restore or a snapshot install.

// Restored describes an operator's snapshot restore, for its cluster_restored event.
type Restored struct {
	// SnapshotIndex is the Raft index of the snapshot restored.
	SnapshotIndex uint64
	// SnapshotTime is when the snapshot was saved; zero if the archive does not say.
	SnapshotTime time.Time
	// RequestedBy names the ACL token of the request ("" without ACLs).
	RequestedBy string
	// Time is when the restore was asked for: the event's timestamp.
	Time time.Time
}

// CarryForward reads an operator's snapshot stream from snap and writes to w the
// stream to restore instead: the snapshot's tables, with this FSM's current event
// pipeline carried forward. The event counters are the current ones (the last seq, the
// shipped seq, the cluster's last health event), the outbox holds the current
// unshipped events with their seqs, and a cluster_restored event takes the next seq.
// It returns that event.
//
// The caller must keep commands from being applied between this call and the
// restore: an event derived in between would be neither in the rewritten outbox nor
// counted in its last seq, so its seq would be assigned again.
func (f *FSM) CarryForward(snap io.Reader, r Restored, w io.Writer) (*events.Event, error) {
	db, err := ReadSnapshot(snap)
	if err != nil {
		return nil, err
	}
	cur := f.State()
	meta, err := cur.EventMeta()
	if err != nil {
		return nil, fmt.Errorf("read event counters: %w", err)
	}
	pending, err := cur.Outbox(meta.ShippedSeq, int(^uint(0)>>1))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	old, err := (&State{txn: txn}).EventMeta()
	if err != nil {
		return nil, fmt.Errorf("read the snapshot's event counters: %w", err)
	}
	// A snapshot whose history went further than this one (taken on another grid
	// that shipped to the same store) keeps its later events: seqs still continue
	// after the highest ever assigned, and no event is dropped unshipped.
	var later []*events.Event
	if old.LastSeq > meta.LastSeq {
		if later, err = (&State{txn: txn}).Outbox(meta.LastSeq, int(^uint(0)>>1)); err != nil {
			return nil, fmt.Errorf("read the snapshot's outbox: %w", err)
		}
		meta.LastSeq = old.LastSeq
	}
	if _, err := txn.DeleteAll(tableOutbox, "id"); err != nil {
		return nil, err
	}
	for _, e := range append(pending, later...) {
		if err := txn.Insert(tableOutbox, e); err != nil {
			return nil, err
		}
	}
	meta.ID = metaEvents
	meta.LastSeq++
	e := &events.Event{Seq: meta.LastSeq, Type: events.ClusterRestored, Timestamp: meta.nextTime(r.Time.UTC()),
		SnapshotIndex: r.SnapshotIndex, RequestedBy: r.RequestedBy}
	if !r.SnapshotTime.IsZero() {
		t := r.SnapshotTime.UTC()
		e.SnapshotTime = &t
	}
	e.Description = events.Describe(e)
	if err := txn.Insert(tableOutbox, e); err != nil {
		return nil, err
	}
	if meta.Digest, err = chainEvents(meta.Digest, append(later, e)); err != nil {
		return nil, err
	}
	if err := txn.Insert(tableMeta, &meta); err != nil {
		return nil, err
	}
	txn.Commit()
	if err := (&snapshot{txn: db.Txn(false)}).write(w); err != nil {
		return nil, fmt.Errorf("write the restored snapshot: %w", err)
	}
	return e, nil
}
