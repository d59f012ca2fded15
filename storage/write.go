package storage

import (
	"bytes"
	"math/bits"

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
// The write takes the stripe locks of every concept ID it touches, checks which
// records exist, applies one batch, and releases the locks as soon as the batch is
// visible, before its WAL sync: concurrent writers then share syncs through pebble's
// commit pipeline, and a writer of the same ID waits only for the apply.
func (s *Store) Write(concepts []Concept, assocs []Association) (WriteResult, error) {
	var res WriteResult
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
	b := s.db.NewBatchWithSize(estimateBatchSize(concepts, assocs))
	defer b.Close()
	var (
		key, val, attrs []byte
		seen            map[string]struct{}
		text            textSegment
	)
	if len(concepts) > 1 {
		seen = make(map[string]struct{}, len(concepts))
	}
	for i := range concepts {
		c := &concepts[i]
		key = conceptKey(key[:0], c.ID)
		exists, err := p.has(key)
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
		attrs = appendAttributes(attrs[:0], c.Attributes)
		val = appendConceptHeader(val[:0], c)
		val = append(append(val, attrs...), c.Content...)
		_ = b.Set(key, val, nil)
		key = timeKey(key[:0], c.Time, c.ID)
		_ = b.Set(key, attrs, nil)
		for n, v := range c.Attributes {
			key = attrKey(key[:0], n, v, c.Time, c.ID)
			_ = b.Set(key, nil, nil)
		}
		text.add(c)
		res.ConceptsCreated++
	}

	var seenEdges map[string]struct{}
	if len(assocs) > 1 {
		seenEdges = make(map[string]struct{}, len(assocs))
	}
	for i := range assocs {
		a := &assocs[i]
		key = edgeKey(key[:0], tagOut, a.Source, a.Type, a.Target)
		exists, err := p.has(key)
		if err != nil {
			return WriteResult{}, err
		}
		if _, dup := seenEdges[string(key)]; exists || dup {
			res.AssociationsExisting++
			continue
		}
		if seenEdges != nil {
			seenEdges[string(key)] = struct{}{}
		}
		val = appendAssociationValue(val[:0], a)
		_ = b.Set(key, val, nil)
		key = edgeKey(key[:0], tagIn, a.Target, a.Type, a.Source)
		_ = b.Set(key, val, nil)
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

func estimateBatchSize(concepts []Concept, assocs []Association) int {
	n := 64
	for i := range concepts {
		c := &concepts[i]
		n += 3*len(c.ID) + 2*len(c.Content) + 64
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

func (p *probe) has(key []byte) (bool, error) {
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
