// Package fsm is Grid's replicated state machine. Every server applies the same Raft log
// to an FSM and so holds the same state: tables in a go-memdb store that commands
// mutate, and that snapshots save and restore whole. The package knows nothing of
// networking; server/ feeds it the log. command.go defines the commands and their
// encoding, apply.go applies them and derives events, state.go holds the tables;
// node.go, acl.go and autopilot.go (the autopilot configuration) add their own;
// restore.go rewrites an operator's snapshot so that restoring it keeps the history.
package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/events"
)

// FSM implements raft.FSM over a go-memdb store.
type FSM struct {
	logger hclog.Logger
	// db is swapped whole by Restore, so readers take it once per view.
	db          atomic.Pointer[memdb.MemDB]
	eventHook   atomic.Pointer[func([]*events.Event)]
	restoreHook atomic.Pointer[func()]
}

var _ raft.BatchingFSM = (*FSM)(nil)

// New returns an FSM with empty tables.
func New(logger hclog.Logger) (*FSM, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create state store: %w", err)
	}
	f := &FSM{logger: logger}
	f.db.Store(db)
	return f, nil
}

// State returns a read-only view of the current state.
func (f *FSM) State() *State {
	return &State{txn: f.db.Load().Txn(false)}
}

// Apply applies one committed log entry. It returns nil on success and an error for a
// command it cannot decode or apply; it never panics on bad input, because the same
// entry is applied on every server and a panic would take the whole cluster down.
func (f *FSM) Apply(l *raft.Log) any {
	txn := f.db.Load().Txn(true)
	defer txn.Abort()
	emitted, cmd, err := f.applyIn(txn, l)
	if err != nil && cmd == "" {
		f.logger.Warn("rejected log entry", "index", l.Index, "error", err)
		return err
	}
	if err != nil {
		f.logger.Warn("command failed", "index", l.Index, "command", cmd, "error", err)
		return err
	}
	txn.Commit()
	f.derived(emitted)
	return nil
}

// ApplyBatch applies the entries Raft committed together in one transaction: most of
// a command's cost is the copying of the tables' tree paths it changes, and commands
// in one transaction share the copies. When a command of the batch fails, the batch's
// transaction is dropped and each entry applied alone (Apply), so a failed command
// leaves nothing behind and answers its error, as it would alone; every server takes
// the same path, since a command fails or not by the log alone.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	txn := f.db.Load().Txn(true)
	defer txn.Abort()
	var emitted []*events.Event
	for _, l := range logs {
		evs, _, err := f.applyIn(txn, l)
		if err != nil {
			txn.Abort()
			for i, l := range logs {
				out[i] = f.Apply(l)
			}
			return out
		}
		emitted = append(emitted, evs...)
	}
	txn.Commit()
	f.derived(emitted)
	return out
}

// applyIn applies one log entry in txn, and returns the events it derived, and the
// type of its command ("" when it cannot be decoded).
func (f *FSM) applyIn(txn *memdb.Txn, l *raft.Log) ([]*events.Event, string, error) {
	if l.Type != raft.LogCommand {
		return nil, "", nil
	}
	env, err := Decode(l.Data)
	if err != nil {
		return nil, "", err
	}
	x, err := newApplyCtx(txn, l.Index, env)
	if err == nil {
		err = x.apply()
	}
	if err == nil {
		err = x.finish()
	}
	if err != nil {
		return nil, string(env.Command.Type()), err
	}
	return x.emitted, string(env.Command.Type()), nil
}

// derived passes committed events to the event hook.
func (f *FSM) derived(evs []*events.Event) {
	if hook := f.eventHook.Load(); hook != nil && len(evs) > 0 {
		(*hook)(evs)
	}
}

// SetEventHook registers a function that receives the events each applied command
// derived, after they are committed, on every server alike. It runs inside Apply, so
// it must not block; the server uses it to wake event streams and the shipper.
func (f *FSM) SetEventHook(h func([]*events.Event)) {
	f.eventHook.Store(&h)
}

// ErrNotFound is returned by commands that name an entity the state does not hold.
var ErrNotFound = errors.New("not found")

// snapshotVersion is the format version of a snapshot stream.
const snapshotVersion = 1

// snapshotHeader opens a snapshot stream; a row record follows for every row.
type snapshotHeader struct {
	Version int `json:"version"`
}

// row is one record of a snapshot stream.
type row struct {
	Table string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// Snapshot captures the state at this moment. memdb's immutable radix trees make this
// cheap: Persist reads the captured view while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{txn: f.db.Load().Txn(false)}, nil
}

type snapshot struct {
	txn *memdb.Txn
}

// Persist writes the header, then every row of every table, as a stream of JSON values.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion}); err != nil {
		return err
	}
	for _, t := range tables {
		it, err := s.txn.Get(t.schema.Name, "id")
		if err != nil {
			return err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			v, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			if err := enc.Encode(row{Table: t.schema.Name, Value: v}); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func (s *snapshot) Release() {}

// Restore replaces the whole state with the snapshot read from rc. The new store is
// built aside and swapped in only once it is read completely, so a bad snapshot leaves
// the current state untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.db.Store(db)
	if hook := f.restoreHook.Load(); hook != nil {
		(*hook)()
	}
	return nil
}

// SetRestoreHook registers a function called after a snapshot replaced the whole
// state, so that caches of derived events can be dropped.
func (f *FSM) SetRestoreHook(h func()) {
	f.restoreHook.Store(&h)
}

// ReadSnapshot decodes a snapshot stream into a new store. It is exported so that
// operators' snapshot archives can be checked before they are restored.
func ReadSnapshot(r io.Reader) (*memdb.MemDB, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if h.Version < 1 || h.Version > snapshotVersion {
		return nil, fmt.Errorf("unsupported snapshot version %d (this server reads up to %d)", h.Version, snapshotVersion)
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for n := 1; ; n++ {
		var r row
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read snapshot row %d: %w", n, err)
		}
		t, ok := tableByName(r.Table)
		if !ok {
			return nil, fmt.Errorf("snapshot row %d: unknown table %q", n, r.Table)
		}
		obj, err := t.decode(r.Value)
		if err != nil {
			return nil, fmt.Errorf("snapshot row %d (%s): %w", n, r.Table, err)
		}
		if err := txn.Insert(r.Table, obj); err != nil {
			return nil, fmt.Errorf("snapshot row %d (%s): %w", n, r.Table, err)
		}
	}
	txn.Commit()
	return db, nil
}

func decodeRow[T any](raw []byte) (any, error) {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	return v, nil
}
