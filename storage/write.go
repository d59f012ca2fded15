package storage

import (
	"bytes"
	"math/bits"
	"slices"

	"github.com/cockroachdb/pebble"
)

// WriteResult says what a write changed.
type WriteResult struct {
	ConceptsCreated      int
	ConceptsExisting     int
	AssociationsCreated  int
	AssociationsExisting int
}

// Write stores concepts and associations atomically and durably. Anything that already
// exists (same concept ID, or same association source, type and target) is left as it
// is: writes are idempotent, so a client may resend a batch it is unsure about.
// Callers validate first (see validate.go): Write trusts its input.
//
// Write builds its batch first, as if everything were new: encoding and text indexing
// are most of a write's work, and concurrent writers do them in parallel. Then it takes
// the stripe locks of every concept ID it touches, checks that nothing exists (if
// something does, it builds the batch again without it), applies the batch, and
// releases the locks as soon as the batch is visible, before its WAL sync: concurrent
// writers share syncs through pebble's commit pipeline, and a writer of the same ID
// waits only for the apply.
func (s *Store) Write(concepts []Concept, assocs []Association) (WriteResult, error) {
	b := s.db.NewBatchWithSize(estimateBatchSize(concepts, assocs))
	defer b.Close()
	var w batchWriter
	res, err := w.build(s, b, concepts, assocs, nil)
	if err != nil {
		return WriteResult{}, err
	}

	var set stripeSet
	for i := range concepts {
		set.add(concepts[i].ID)
	}
	for i := range assocs {
		set.add(assocs[i].Source)
		set.add(assocs[i].Target)
	}
	s.lockStripes(&set)
	locked := true
	defer func() {
		if locked {
			s.unlockStripes(&set)
		}
	}()

	// The probe's view of the store is taken now, under the locks: it sees every
	// earlier write of these IDs, since their writers released the locks only once
	// their batches were visible.
	p, err := s.newProbe()
	if err != nil {
		return WriteResult{}, err
	}
	defer p.close()
	exists, err := w.anyExists(p, concepts, assocs)
	if err != nil {
		return WriteResult{}, err
	}
	if exists {
		b.Reset()
		if res, err = w.build(s, b, concepts, assocs, p); err != nil {
			return WriteResult{}, err
		}
	}

	if b.Empty() {
		// Everything existed, but what we saw may be another writer's batch that is
		// visible and not yet synced. Acknowledge only once it is durable: a synced log
		// record after it in the WAL makes it so.
		s.unlockStripes(&set)
		locked = false
		return res, s.db.LogData(nil, pebble.Sync)
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return WriteResult{}, err
	}
	s.unlockStripes(&set)
	locked = false
	if err := b.SyncWait(); err != nil {
		return WriteResult{}, err
	}
	return res, nil
}

// batchWriter builds write batches, reusing its buffers.
type batchWriter struct {
	key, val, attrs []byte
	keys            [][]byte // keys to probe, in arena
	arena           []byte
}

// build adds to b what storing concepts and assocs takes, skipping duplicates within
// them and, if p is not nil, what p finds already stored.
func (w *batchWriter) build(s *Store, b *pebble.Batch, concepts []Concept, assocs []Association, p *probe) (WriteResult, error) {
	var res WriteResult
	var seen map[string]struct{}
	if len(concepts) > 1 {
		seen = make(map[string]struct{}, len(concepts))
	}
	text := s.segments.Get().(*textSegment)
	defer func() {
		text.reset()
		s.segments.Put(text)
	}()
	for i := range concepts {
		c := &concepts[i]
		w.key = conceptKey(w.key[:0], c.ID)
		exists, err := p.has(w.key)
		if err != nil {
			return WriteResult{}, err
		}
		if _, dup := seen[c.ID]; exists || dup {
			res.ConceptsExisting++
			continue
		}
		if seen != nil {
			seen[c.ID] = struct{}{}
		}
		w.attrs = appendAttributes(w.attrs[:0], c.Attributes)
		w.val = appendConceptHeader(w.val[:0], c)
		w.val = append(append(w.val, w.attrs...), c.Content...)
		_ = b.Set(w.key, w.val, nil)
		w.key = timeKey(w.key[:0], c.Time, c.ID)
		_ = b.Set(w.key, w.attrs, nil)
		for n, v := range c.Attributes {
			w.key = attrKey(w.key[:0], n, v, c.Time, c.ID)
			_ = b.Set(w.key, nil, nil)
		}
		text.add(c)
		res.ConceptsCreated++
	}

	// Duplicates within the batch are found by a hash of (source, type, target),
	// confirmed by comparing the associations, so that no key is allocated.
	var seenEdges map[uint64]int
	var collided map[string]struct{}
	if len(assocs) > 1 {
		seenEdges = make(map[uint64]int, len(assocs))
	}
	for i := range assocs {
		a := &assocs[i]
		w.key = edgeKey(w.key[:0], tagOut, a.Source, a.Type, a.Target)
		exists, err := p.has(w.key)
		if err != nil {
			return WriteResult{}, err
		}
		dup := false
		if seenEdges != nil {
			h := hashKey(w.key)
			if j, ok := seenEdges[h]; !ok {
				if !exists {
					seenEdges[h] = i
				}
			} else if e := &assocs[j]; e.Source == a.Source && e.Type == a.Type && e.Target == a.Target {
				dup = true
			} else {
				// Two associations with one hash (a client can contrive that): tell
				// them apart by key.
				if collided == nil {
					collided = make(map[string]struct{})
				}
				_, dup = collided[string(w.key)]
				if !dup && !exists {
					collided[string(w.key)] = struct{}{}
				}
			}
		}
		if exists || dup {
			res.AssociationsExisting++
			continue
		}
		w.val = appendAssociationValue(w.val[:0], a)
		_ = b.Set(w.key, w.val, nil)
		w.key = edgeKey(w.key[:0], tagIn, a.Target, a.Type, a.Source)
		_ = b.Set(w.key, w.val, nil)
		res.AssociationsCreated++
	}

	if text.docs() > 0 {
		text.write(b, s.nextSegment())
		_ = b.Merge(counterKey(counterTokens), encodeCounter(text.tokens), nil)
	}
	if res.ConceptsCreated > 0 {
		_ = b.Merge(counterKey(counterConcepts), encodeCounter(int64(res.ConceptsCreated)), nil)
	}
	if res.AssociationsCreated > 0 {
		_ = b.Merge(counterKey(counterAssociations), encodeCounter(int64(res.AssociationsCreated)), nil)
	}
	return res, nil
}

// hashKey is FNV-1a, 64 bits.
func hashKey(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range k {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// anyExists reports whether any of the concepts or associations is stored. It probes
// in key order, which keeps pebble's iterators on the files and blocks they are on.
func (w *batchWriter) anyExists(p *probe, concepts []Concept, assocs []Association) (bool, error) {
	w.keys = w.keys[:0]
	w.arena = w.arena[:0]
	add := func(k []byte) {
		start := len(w.arena)
		w.arena = append(w.arena, k...)
		w.keys = append(w.keys, w.arena[start:len(w.arena):len(w.arena)])
	}
	for i := range concepts {
		w.key = conceptKey(w.key[:0], concepts[i].ID)
		add(w.key)
	}
	for i := range assocs {
		a := &assocs[i]
		w.key = edgeKey(w.key[:0], tagOut, a.Source, a.Type, a.Target)
		add(w.key)
	}
	slices.SortFunc(w.keys, bytes.Compare)
	for _, k := range w.keys {
		if ok, err := p.has(k); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// estimateBatchSize guesses the bytes of a write's batch, so that it is allocated
// once.
func estimateBatchSize(concepts []Concept, assocs []Association) int {
	n := 64
	for i := range concepts {
		c := &concepts[i]
		n += 2*len(c.ID) + len(c.Content) + 64
		for k, v := range c.Attributes {
			n += 2*(len(k)+len(v)) + len(c.ID) + 32
		}
	}
	for i := range assocs {
		a := &assocs[i]
		n += 2 * (len(a.Source) + len(a.Target) + len(a.Type) + 48)
	}
	return n
}

// probe checks keys for existence with one iterator that consults the bloom filters
// of every level, the last one included (pebble skips it by default, expecting keys
// looked up to exist): writes mostly bring new IDs, which a filter then rejects
// without reading a block.
type probe struct{ it *pebble.Iterator }

func (s *Store) newProbe() (*probe, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return nil, err
	}
	return &probe{it: it}, nil
}

// has reports whether key exists; a nil probe finds nothing.
func (p *probe) has(key []byte) (bool, error) {
	if p == nil {
		return false, nil
	}
	if p.it.SeekPrefixGE(key) {
		return bytes.Equal(p.it.Key(), key), nil
	}
	return false, p.it.Error()
}

func (p *probe) close() error { return p.it.Close() }

// nextSegment returns a text-index segment number: the current time in nanoseconds,
// made strictly increasing within the process so that two writes never share one.
func (s *Store) nextSegment() uint64 {
	now := uint64(s.now().UnixNano())
	for {
		last := s.lastSegment.Load()
		next := max(now, last+1)
		if s.lastSegment.CompareAndSwap(last, next) {
			return next
		}
	}
}

// stripeSet is a bitmap of stripe numbers.
type stripeSet [numStripes / 64]uint64

func (ss *stripeSet) add(id string) {
	// FNV-1a: cheap and spreads similar IDs (event-17, event-18) well enough.
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	n := h % numStripes
	ss[n/64] |= 1 << (n % 64)
}

// lockStripes locks the stripes in set in increasing order, so that writers that share
// stripes cannot deadlock.
func (s *Store) lockStripes(set *stripeSet) {
	for w, word := range set {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			s.stripes[w*64+b].Lock()
		}
	}
}

func (s *Store) unlockStripes(set *stripeSet) {
	for w, word := range set {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			s.stripes[w*64+b].Unlock()
		}
	}
}
