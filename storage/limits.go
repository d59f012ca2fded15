package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A node bounds what a client can make it hold: the size of one message (gRPC's
// MaxRecvMsgSize, Config.MaxMessageMB), how many batches are decoded and written at
// once (batchLimiter), and the disk it may fill (diskGuard). Each refusal is a
// ResourceExhausted error that names the limit and the flag that sets it, so that an
// operator reading a client's log knows what to change.

// ErrBusy is returned when more batches arrive than the node decodes and writes at
// once, and as many again (at least 4) already wait for their turn.
var ErrBusy = errors.New("too many batches in flight")

// ErrDiskFull is returned for a write when the free space of the data dir's
// filesystem is at or below the reserve.
var ErrDiskFull = errors.New("disk full")

// batchLimiter lets at most n batches be decoded and written at once, and a few more
// (batchWaiters) wait for their turn; it refuses the rest at once.
//
// A batch costs memory from the moment gRPC has received it: its message (up to
// MaxMessageMB), then its decoded copies and the pebble batch built from it, several
// times the message (see Config.MaxConcurrentBatches). Those that wait hold their
// message only, and wait no longer than their caller's deadline: a short burst (the
// shipper's retries meeting an agent's writes) is absorbed instead of failing. Those
// beyond the waiting room are refused, not queued: an unbounded queue would hold an
// unbounded number of messages, which is the memory this bounds.
type batchLimiter struct {
	running  chan struct{}
	admitted chan struct{}
}

// batchWaiters is how many batches may wait for a turn: as many as run, and at least
// minBatchWaiters, so that a node limited to one batch at a time (a 512 MB node) still
// absorbs a few clients writing at once; each waiter holds only its message.
func batchWaiters(n int) int { return max(n, minBatchWaiters) }

const minBatchWaiters = 4

func newBatchLimiter(n, waiters int) *batchLimiter {
	return &batchLimiter{running: make(chan struct{}, n), admitted: make(chan struct{}, n+waiters)}
}

// acquire waits for a turn, or returns ErrBusy or ctx's error; release gives the turn
// back.
func (l *batchLimiter) acquire(ctx context.Context) error {
	select {
	case l.admitted <- struct{}{}:
	default:
		return fmt.Errorf("%w: %d batches are being written and %d wait; the limit is -max-concurrent-batches=%d (and as many waiting, at least 4)",
			ErrBusy, cap(l.running), cap(l.admitted)-cap(l.running), cap(l.running))
	}
	select {
	case l.running <- struct{}{}:
		return nil
	case <-ctx.Done():
		<-l.admitted
		return ctx.Err()
	}
}

func (l *batchLimiter) release() {
	<-l.running
	<-l.admitted
}

// Disk checks are cached: statfs is cheap, but not free next to a write of a few
// events, and free space changes slowly except by what the node writes itself.
const (
	// diskCheckInterval is how old a free-space reading may be. It is also how soon
	// a node that refuses writes notices that space was freed.
	diskCheckInterval = 500 * time.Millisecond
	// diskCheckBytes is how much the node may accept for writing before it reads the
	// free space again, however recent the reading.
	diskCheckBytes = 16 << 20
)

// Default disk reserve: 5% of the filesystem, and at most 1 GiB. Pebble needs room
// beyond what a write adds (its WAL, memtable flushes and compactions write new files
// before they delete old ones), and a write it cannot complete is fatal to it: the
// reserve keeps that room.
const (
	defaultReservePercent = 5
	maxDefaultReserve     = 1 << 30
)

// diskGuard refuses writes while the data dir's filesystem has no more free space
// than the reserve. It is safe for concurrent use.
type diskGuard struct {
	dir string
	// reserveMB is Config.DiskReserveMB: 0 for the default, negative for none.
	reserveMB int
	logger    hclog.Logger
	now       func() time.Time
	statfs    func(dir string) (free, total uint64, err error)
	// onCheck, if set, is told every reading (metrics).
	onCheck func(free, reserve uint64)

	mu      sync.Mutex
	checked time.Time
	free    uint64
	reserve uint64
	full    bool
	// since is what was accepted for writing since the last reading.
	since atomic.Int64
}

// reserveFor is the reserve of a filesystem of total bytes.
func reserveFor(reserveMB int, total uint64) uint64 {
	switch {
	case reserveMB < 0:
		return 0
	case reserveMB > 0:
		return uint64(reserveMB) << 20
	}
	return min(total/100*defaultReservePercent, maxDefaultReserve)
}

// admit returns ErrDiskFull (wrapped, with the figures) if a write of about n bytes
// must be refused; otherwise it counts n towards the next reading.
func (g *diskGuard) admit(n int) error {
	free, reserve, err := g.reading(false)
	if err != nil {
		// A filesystem that cannot be read is pebble's to report, on the write.
		g.logger.Warn("reading the data dir's free space failed", "error", err)
		return nil
	}
	if free <= reserve+uint64(n) {
		return fmt.Errorf("%w: %d bytes free on the data dir's filesystem, and a write of about %d bytes "+
			"would leave less than the reserve of %d bytes (-disk-reserve-mb); writes resume once space is freed, "+
			"reads go on", ErrDiskFull, free, n, reserve)
	}
	g.since.Add(int64(n))
	return nil
}

// reading returns the free space and the reserve, read again if the last reading is
// older than diskCheckInterval, or more than diskCheckBytes were accepted since, or
// force is set.
func (g *diskGuard) reading(force bool) (free, reserve uint64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !force && !g.checked.IsZero() && now.Sub(g.checked) < diskCheckInterval && g.since.Load() < diskCheckBytes {
		return g.free, g.reserve, nil
	}
	f, total, err := g.statfs(g.dir)
	if err != nil {
		return 0, 0, err
	}
	g.checked, g.free, g.reserve = now, f, reserveFor(g.reserveMB, total)
	g.since.Store(0)
	if full := g.free <= g.reserve; full != g.full {
		g.full = full
		if full {
			g.logger.Error("data dir's filesystem is at its free-space reserve: writes are refused, reads go on",
				"free_bytes", g.free, "reserve_bytes", g.reserve, "dir", g.dir)
		} else {
			g.logger.Info("data dir's filesystem has space again: writes are accepted",
				"free_bytes", g.free, "reserve_bytes", g.reserve)
		}
	}
	if g.onCheck != nil {
		g.onCheck(g.free, g.reserve)
	}
	return g.free, g.reserve, nil
}
