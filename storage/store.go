package storage

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/hashicorp/go-hclog"
)

// ErrNotFound is returned for a concept that is not in the store.
var ErrNotFound = errors.New("not found")

// StoreOptions tunes a Store. The zero value is usable.
type StoreOptions struct {
	// CacheBytes is pebble's block cache. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the size of one memtable; up to four may be in memory, in
	// addition to the cache. Default 64 MiB.
	MemTableBytes uint64
	Logger        hclog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// memTables is how many memtables may be in memory before writes stall.
const memTables = 4

// numStripes is the number of write locks concept IDs hash onto. See Store.write.
const numStripes = 1024

// Store is the storage node's data on disk: concepts, associations and their indexes in
// one pebble database. It is safe for concurrent use.
type Store struct {
	db     *pebble.DB
	cache  *pebble.Cache
	logger hclog.Logger
	now    func() time.Time

	// stripes serialize writers (and retention) of the same concept IDs, so that the
	// existence check that makes writes idempotent cannot race another writer.
	stripes [numStripes]sync.Mutex

	lastSegment atomic.Uint64
	segments    sync.Pool // of *textSegment, reused by writes
	writers     sync.Pool // of *batchWriter, reused by writes
	batchBufs   sync.Pool // of *[]byte, the buffers of synced batches (see newBatch)
	mergeStop   chan struct{}
	mergeDone   chan struct{}
	closeOnce   sync.Once
}

// OpenStore opens (creating if needed) the store in dir. Pebble holds a lock on dir
// until Close.
func OpenStore(dir string, o StoreOptions) (*Store, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Pebble charges memtables to the block cache, so the cache holds room for all of
	// them (up to MemTableStopWritesThreshold) on top of CacheBytes of blocks.
	s := &Store{logger: o.Logger, now: o.Now,
		cache: pebble.NewCache(o.CacheBytes + memTables*int64(o.MemTableBytes))}

	opts := pebbleOptions(s.cache, o.MemTableBytes, o.Logger)

	db, err := pebble.Open(dir, opts)
	if err != nil {
		s.cache.Unref()
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	s.db = db
	s.segments.New = func() any { return new(textSegment) }
	s.writers.New = func() any { return new(batchWriter) }
	s.lastSegment.Store(uint64(s.now().UnixNano()))
	s.mergeStop, s.mergeDone = make(chan struct{}), make(chan struct{})
	go s.mergeLoop()
	return s, nil
}

// pebbleOptions are the options of the store's pebble database (a function of its
// own so that the ingest benchmark's raw-pebble ceiling runs on the same ones).
func pebbleOptions(cache *pebble.Cache, memTableBytes uint64, logger hclog.Logger) *pebble.Options {
	// Bytewise order, with the whole key as the "prefix" that bloom filters hash:
	// existence checks (see probe) seek by prefix.
	cmp := *pebble.DefaultComparer
	cmp.Split = func(k []byte) int { return len(k) }
	opts := &pebble.Options{
		Comparer:                    &cmp,
		Cache:                       cache,
		MemTableSize:                memTableBytes,
		MemTableStopWritesThreshold: memTables,
		// Fewer, larger compactions: ingest is mostly compaction work. (16 halves
		// compaction work again under sustained ingest, but leaves up to 15 L0
		// sublevels for reads to merge: filtered queries take 2 to 5 times longer.)
		L0CompactionThreshold:    8,
		L0StopWritesThreshold:    64,
		LBaseMaxBytes:            256 << 20,
		MaxConcurrentCompactions: func() int { return 2 },
		Merger:                   counterMerger,
		Logger:                   pebbleLogger{logger},
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		l := &opts.Levels[i]
		l.BlockSize = 16 << 10
		// Bloom filters make the existence check of a new ID (a miss) cheap.
		l.FilterPolicy = bloom.FilterPolicy(10)
		l.TargetFileSize = 8 << 20
		if i > 0 {
			l.TargetFileSize = opts.Levels[i-1].TargetFileSize * 2
		}
	}
	opts.EnsureDefaults()
	return opts
}

// Close flushes nothing (every acknowledged write is already in the WAL) and releases
// the store. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.mergeStop)
		<-s.mergeDone
		err = s.db.Close()
		s.cache.Unref()
	})
	return err
}

// counter reads one of the m counters.
func (s *Store) counter(name string) (int64, error) {
	v, closer, err := s.db.Get(counterKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	return decodeCounter(v), nil
}

// iter opens an iterator over [lower, upper).
func (s *Store) iter(lower, upper []byte) (*pebble.Iterator, error) {
	return s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}

// Stats are the store's counters.
type Stats struct {
	Concepts     int64
	Associations int64
	DiskBytes    uint64
	// Oldest and Newest are the times of the oldest and newest concepts, when Concepts
	// is not zero.
	Oldest, Newest int64
}

// Stats reads the store's counters.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	var err error
	if st.Concepts, err = s.counter(counterConcepts); err != nil {
		return st, err
	}
	if st.Associations, err = s.counter(counterAssociations); err != nil {
		return st, err
	}
	st.DiskBytes = s.db.Metrics().DiskSpaceUsage()
	it, err := s.iter(timePrefix(), prefixEnd(timePrefix()))
	if err != nil {
		return st, err
	}
	defer it.Close()
	if it.First() {
		st.Oldest, _ = decodeTime(it.Key()[1:])
	}
	if it.Last() {
		st.Newest, _ = decodeTime(it.Key()[1:])
	}
	return st, it.Error()
}

// Flush writes the memtable to disk, for benchmarks that measure reads from sstables.
func (s *Store) Flush() error { return s.db.Flush() }

// pebbleLogger sends pebble's logs to hclog. Pebble calls Fatalf only for corruption
// it cannot recover from, where it expects the process to stop.
type pebbleLogger struct{ l hclog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

var _ io.Closer = (*Store)(nil)
