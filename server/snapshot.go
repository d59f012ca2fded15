package server

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
)

// A snapshot archive, as `grid operator snapshot save` writes it, is a tar of three
// files: meta.json (Raft's snapshot metadata), state.bin (the FSM's snapshot stream)
// and SHA256SUMS (checksums of the other two). Restore verifies all of it first.
const (
	archiveMeta  = "meta.json"
	archiveState = "state.bin"
	archiveSums  = "SHA256SUMS"
	// maxArchiveBytes bounds an uploaded archive.
	maxArchiveBytes = 4 << 30
	// snapshotTimeout bounds taking a snapshot, not streaming it.
	snapshotTimeout = 2 * time.Minute
)

func (s *Server) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
	defer cancel()
	// A barrier first: the snapshot then holds every write acknowledged before it
	// was asked for, and the FSM has applied an entry past any configuration change
	// still settling, without which Raft refuses to snapshot.
	if err := waitFuture(ctx, s.ctx, s.raft.Barrier(snapshotTimeout)); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("take snapshot: %w", err))
		return
	}
	f := s.raft.Snapshot()
	if err := waitFuture(ctx, s.ctx, f); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("take snapshot: %w", err))
		return
	}
	meta, rc, err := f.Open()
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("open snapshot: %w", err))
		return
	}
	defer rc.Close()
	// The archive needs the state's size and checksum before its bytes, so the state
	// is spooled to a temporary file first.
	tmp, sum, size, err := spool(rc)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer removeTemp(tmp)
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("X-Grid-Snapshot-Index", fmt.Sprint(meta.Index))
	if err := writeArchive(w, meta, tmp, sum, size); err != nil {
		s.logger.Error("stream snapshot", "error", err)
	}
}

// restoreTimeout bounds an operator's restore: Raft's swap of the state on the leader
// and the followers' install of it.
const restoreTimeout = 5 * time.Minute

// handleSnapshotRestore restores an operator's snapshot, without rewriting history:
// the state goes back to the snapshot's, but the event pipeline is carried forward
// (fsm.CarryForward) and the restore recorded as a cluster_restored event. The
// rewritten snapshot is what Raft restores on the leader and installs on every
// follower, so every server holds the same state and the same events.
func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	arch, err := readArchive(io.LimitReader(r.Body, maxArchiveBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid snapshot archive: %w", err))
		return
	}
	defer removeTemp(arch.state)
	// Decode it once aside: a snapshot that the FSM cannot read is refused here
	// rather than failing on every server.
	if _, err := fsm.ReadSnapshot(bufio.NewReader(arch.state)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid snapshot state: %w", err))
		return
	}
	if _, err := arch.state.Seek(0, io.SeekStart); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), restoreTimeout)
	defer cancel()
	info := fsm.Restored{SnapshotIndex: arch.meta.Index, SnapshotTime: arch.saved,
		RequestedBy: s.requester(r), Time: time.Now()}
	ev, err := s.restoreSnapshot(ctx, arch.meta, arch.state, info)
	if err != nil {
		writeError(w, statusOf(err), fmt.Errorf("restore snapshot: %w", err))
		return
	}
	s.logger.Info("restored snapshot", "snapshot_index", arch.meta.Index, "bytes", arch.meta.Size, "event_seq", ev.Seq)
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "snapshot_index": arch.meta.Index, "event_seq": ev.Seq})
}

// restoreSnapshot rewrites the snapshot in state to carry the event pipeline forward
// and has Raft restore it. It returns the cluster_restored event.
func (s *Server) restoreSnapshot(ctx context.Context, meta *raft.SnapshotMeta, state io.Reader, info fsm.Restored) (*events.Event, error) {
	// No command may be proposed from here until Raft has swapped the state: it
	// would derive an event that the rewritten snapshot neither holds nor counts.
	// The lock is released when raft.Restore returns, even if this request gave up
	// waiting for it first.
	s.restoring.Lock()
	unlock := true
	defer func() {
		if unlock {
			s.restoring.Unlock()
		}
	}()
	// Commands proposed before the lock are applied now (applyLocal holds the read
	// lock until they are); a barrier makes sure this FSM has applied everything
	// committed, by an earlier leader too, before its counters are read.
	if err := waitFuture(ctx, s.ctx, s.raft.Barrier(restoreTimeout)); err != nil {
		return nil, fmt.Errorf("wait for the log to be applied: %w", err)
	}
	term := s.raft.CurrentTerm()
	tmp, err := os.CreateTemp("", "grid-restore-*")
	if err != nil {
		return nil, err
	}
	ev, err := s.fsm.CarryForward(state, info, tmp)
	var size int64
	if err == nil {
		if size, err = tmp.Seek(0, io.SeekCurrent); err == nil {
			_, err = tmp.Seek(0, io.SeekStart)
		}
	}
	if err == nil && (!s.IsLeader() || s.raft.CurrentTerm() != term) {
		// Another leader may have committed commands since the counters were read:
		// they are this server's to apply, outside the lock. Raft refuses the
		// restore anyway if this server no longer leads; a new term of its own would
		// not be noticed there.
		err = fmt.Errorf("leadership changed during the restore; nothing was restored: %w", raft.ErrNotLeader)
	}
	if err != nil {
		removeTemp(tmp)
		return nil, err
	}
	m := *meta
	m.Size = size // Raft checks that it copied this many bytes
	done := make(chan error, 1)
	go func() {
		// Raft reads the file until it returns, which may be after this request
		// gave up waiting: the file is removed here, then.
		defer removeTemp(tmp)
		defer s.restoring.Unlock()
		// raft.Restore bounds only its queueing; it returns when the restore and a
		// no-op after it are committed, or when Raft loses leadership or shuts down.
		done <- s.raft.Restore(&m, tmp, restoreTimeout)
	}()
	unlock = false
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return ev, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("the restore is still under way: %w", ctx.Err())
	case <-s.ctx.Done():
		return nil, raft.ErrRaftShutdown
	}
}

// spool copies r to a temporary file and returns it rewound, with its SHA-256 and size.
func spool(r io.Reader) (*os.File, []byte, int64, error) {
	tmp, err := os.CreateTemp("", "grid-snapshot-*")
	if err != nil {
		return nil, nil, 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		removeTemp(tmp)
		return nil, nil, 0, fmt.Errorf("spool snapshot: %w", err)
	}
	return tmp, h.Sum(nil), n, nil
}

func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func writeArchive(w io.Writer, meta *raft.SnapshotMeta, state io.Reader, stateSum []byte, stateSize int64) error {
	m := *meta
	m.Size = stateSize
	metaJSON, err := json.Marshal(m)
	if err != nil {
		return err
	}
	metaSum := sha256.Sum256(metaJSON)
	sums := fmt.Sprintf("%x  %s\n%x  %s\n", metaSum, archiveMeta, stateSum, archiveState)

	tw := tar.NewWriter(w)
	now := time.Now()
	add := func(name string, size int64, body io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now}); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	}
	if err := add(archiveMeta, int64(len(metaJSON)), strings.NewReader(string(metaJSON))); err != nil {
		return err
	}
	if err := add(archiveState, stateSize, state); err != nil {
		return err
	}
	if err := add(archiveSums, int64(len(sums)), strings.NewReader(sums)); err != nil {
		return err
	}
	return tw.Close()
}

// archive is a verified snapshot archive.
type archive struct {
	meta *raft.SnapshotMeta
	// state is the FSM's snapshot stream, spooled to a temporary file and rewound;
	// the caller removes it.
	state *os.File
	// saved is when the archive was written (its meta.json's time); zero if unknown.
	saved time.Time
}

// readArchive reads and verifies an archive.
func readArchive(r io.Reader) (*archive, error) {
	tr := tar.NewReader(r)
	var (
		metaJSON []byte
		saved    time.Time
		state    *os.File
		sums     map[string]string
		got      = map[string]hash.Hash{}
	)
	fail := func(err error) (*archive, error) {
		if state != nil {
			removeTemp(state)
		}
		return nil, err
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("read archive: %w", err))
		}
		h := sha256.New()
		got[hdr.Name] = h
		body := io.TeeReader(tr, h)
		switch hdr.Name {
		case archiveMeta:
			if metaJSON, err = io.ReadAll(io.LimitReader(body, 1<<20)); err != nil {
				return fail(err)
			}
			saved = hdr.ModTime
		case archiveState:
			if state != nil {
				return fail(errors.New("archive holds two state files"))
			}
			if state, _, _, err = spool(body); err != nil {
				return fail(err)
			}
		case archiveSums:
			raw, err := io.ReadAll(io.LimitReader(tr, 1<<16))
			if err != nil {
				return fail(err)
			}
			if sums, err = parseSums(string(raw)); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("unexpected file %q in archive", hdr.Name))
		}
	}
	if metaJSON == nil || state == nil || sums == nil {
		return fail(fmt.Errorf("archive must hold %s, %s and %s", archiveMeta, archiveState, archiveSums))
	}
	for _, name := range []string{archiveMeta, archiveState} {
		if want, have := sums[name], hex.EncodeToString(got[name].Sum(nil)); want != have {
			return fail(fmt.Errorf("checksum mismatch for %s: archive is corrupt", name))
		}
	}
	var meta raft.SnapshotMeta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return fail(fmt.Errorf("decode %s: %w", archiveMeta, err))
	}
	return &archive{meta: &meta, state: state, saved: saved}, nil
}

// parseSums reads "HEX  NAME" lines.
func parseSums(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return nil, fmt.Errorf("malformed %s line %q", archiveSums, line)
		}
		out[name] = sum
	}
	return out, nil
}
