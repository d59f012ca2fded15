package storage

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"

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
//
// The batch holds its keys sorted within each table (see batchWriter): pebble inserts
// a batch into its memtable in batch order, and a key that lands next to the one
// before it is inserted without a search of the memtable.
func (s *Store) Write(concepts []Concept, assocs []Association) (WriteResult, error) {
	w := s.writers.Get().(*batchWriter)
	defer s.putWriter(w)
	b := s.newBatch(estimateBatchSize(concepts, assocs))
	synced := false
	defer func() { s.closeBatch(b, synced) }()
	w.prepare(concepts, assocs)
	res := w.build(s, b, concepts, assocs)

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
	exists, err := w.markExisting(p)
	if err != nil {
		return WriteResult{}, err
	}
	if exists {
		b.Reset()
		res = w.build(s, b, concepts, assocs)
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
	synced = true
	return res, nil
}

// batchBufHeader is the size of a pebble batch's header (sequence number and count),
// which an empty batch's representation is.
const batchBufHeader = 12

// newBatch returns a batch for a write of about size bytes, in the buffer of an
// earlier write's batch if there is one large enough. Pebble keeps no batch buffer
// over 1 MB for reuse, and a batch of 1,000 events takes more: without this, every
// such write allocates (and the GC then scans for) a new 2 MB buffer.
func (s *Store) newBatch(size int) *pebble.Batch {
	if p, ok := s.batchBufs.Get().(*[]byte); ok {
		if cap(*p) >= size {
			buf := (*p)[:batchBufHeader]
			clear(buf)
			b := s.db.NewBatch()
			if err := b.SetRepr(buf); err == nil {
				return b
			}
			b.Close()
		}
	}
	return s.db.NewBatchWithSize(size)
}

// closeBatch closes b, keeping its buffer for a later write if it was synced (it is
// then in the WAL and the memtable, which copied it, and nothing refers to it: pebble
// drops the buffer of a batch too large for the memtable, which it keeps, and
// Repr then returns a new one).
func (s *Store) closeBatch(b *pebble.Batch, synced bool) {
	if synced {
		if buf := b.Repr(); cap(buf) > 1<<20 && cap(buf) <= maxPooledWriterBytes {
			s.batchBufs.Put(&buf)
		}
	}
	b.Close()
}

// maxPooledWriterBytes bounds the buffers a pooled batchWriter keeps between writes.
const maxPooledWriterBytes = 8 << 20

func (s *Store) putWriter(w *batchWriter) {
	if cap(w.arena) > maxPooledWriterBytes {
		return
	}
	w.reset()
	s.writers.Put(w)
}

// span is a run of bytes in a batchWriter's arena.
type span struct{ off, n uint32 }

// entry is one key of a batch under construction, and its value, in the writer's
// arena; or, for concept and association keys, the index of the concept or
// association, whose value is elsewhere (see emit); for a keys, index is the group.
type entry struct {
	key, val span
	index    int32
}

// batchWriter builds write batches, reusing its buffers (see Store.writers).
//
// It collects the keys of each table in a list of its own, sorts each list (a list is
// usually in order already: events come in time order, with increasing IDs) and adds
// the lists to the batch one after the other: each table's keys then enter the
// memtable in order, most of them next to the key before.
//
// Concepts and associations that are duplicates within the write, or (after
// markExisting) already stored, are skipped: prepare finds the duplicates by sorting
// the concept and association keys, which also orders the existence probes.
type batchWriter struct {
	arena []byte
	// concept (c) and association (o) keys, sorted; the values of c entries
	cKeys, oKeys []entry
	// the other tables' keys
	tKeys, aKeys, iKeys []entry
	// skipConcept[i], skipAssoc[i]: concept or association i is not written, being a
	// duplicate (dupConcept, dupAssoc) or already stored
	skipConcept, skipAssoc []bool
	dupConcept, dupAssoc   []bool
	// the values of concepts and associations, by index
	cVals, oVals []span
	attrs        []attrPair
	key          []byte
	// a keys by attribute (name and value): groupOf maps a prefix to its group, whose
	// prefix is groups[g] and keys number groupCount[g]; the rest is scratch of
	// sortAttrKeys
	groupOf                       map[string]int32
	groups                        []span
	groupCount, ranks, groupOrder []int32
	groupStart, groupNext         []int32
	scratch                       []entry
}

type attrPair struct{ name, value string }

func (w *batchWriter) reset() {
	w.arena = w.arena[:0]
	w.cKeys, w.oKeys = w.cKeys[:0], w.oKeys[:0]
	w.tKeys, w.aKeys, w.iKeys = w.tKeys[:0], w.aKeys[:0], w.iKeys[:0]
	clear(w.groupOf)
	w.groups, w.groupCount = w.groups[:0], w.groupCount[:0]
	clear(w.attrs)
	w.attrs = w.attrs[:0]
}

func (w *batchWriter) keyOf(e *entry) []byte {
	return w.arena[e.key.off : e.key.off+e.key.n : e.key.off+e.key.n]
}

// addKey appends the key in w.key to the arena, and an entry for it to list.
func (w *batchWriter) addKey(list []entry, val span, index int32) []entry {
	off := uint32(len(w.arena))
	w.arena = append(w.arena, w.key...)
	return append(list, entry{key: span{off, uint32(len(w.key))}, val: val, index: index})
}

// boolSlice returns s resized to n, all false.
func boolSlice(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// prepare collects and sorts the concept and association keys, and marks the
// duplicates within the write: of equal keys, the first in the write is stored.
func (w *batchWriter) prepare(concepts []Concept, assocs []Association) {
	w.reset()
	w.arena = slices.Grow(w.arena, estimateBatchSize(concepts, assocs))
	for i := range concepts {
		w.key = conceptKey(w.key[:0], concepts[i].ID)
		w.cKeys = w.addKey(w.cKeys, span{}, int32(i))
	}
	for i := range assocs {
		a := &assocs[i]
		w.key = edgeKey(w.key[:0], tagOut, a.Source, a.Type, a.Target)
		w.oKeys = w.addKey(w.oKeys, span{}, int32(i))
	}
	w.dupConcept = w.markDuplicates(w.cKeys, w.dupConcept[:0], len(concepts))
	w.dupAssoc = w.markDuplicates(w.oKeys, w.dupAssoc[:0], len(assocs))
	w.skipConcept = append(w.skipConcept[:0], w.dupConcept...)
	w.skipAssoc = append(w.skipAssoc[:0], w.dupAssoc...)
}

// markDuplicates sorts list (of concept or association keys) and returns which of
// the n concepts or associations are duplicates of an earlier one.
func (w *batchWriter) markDuplicates(list []entry, dup []bool, n int) []bool {
	w.sortEntries(list, true)
	dup = boolSlice(dup, n)
	for j := 1; j < len(list); j++ {
		if bytes.Equal(w.keyOf(&list[j]), w.keyOf(&list[j-1])) {
			dup[list[j].index] = true
		}
	}
	return dup
}

// sortEntries sorts list by key, unless it is sorted already; stable keeps entries
// with equal keys in the order of their index fields.
func (w *batchWriter) sortEntries(list []entry, stable bool) {
	cmp := func(a, b entry) int {
		return bytes.Compare(w.arena[a.key.off:a.key.off+a.key.n], w.arena[b.key.off:b.key.off+b.key.n])
	}
	if slices.IsSortedFunc(list, cmp) {
		return
	}
	if stable {
		slices.SortFunc(list, func(a, b entry) int {
			if c := cmp(a, b); c != 0 {
				return c
			}
			return int(a.index - b.index)
		})
	} else {
		slices.SortFunc(list, cmp)
	}
}

// sortAttrKeys sorts the a keys, whose index fields are their attribute groups (see
// attrGroup): by group, then, within a group (where the keys of a write usually come
// in time order already), by key.
func (w *batchWriter) sortAttrKeys() {
	if len(w.groups) == 0 {
		return
	}
	// Rank the groups by prefix; count each group's keys.
	w.ranks = slices.Grow(w.ranks[:0], len(w.groups))[:len(w.groups)]
	order := w.groupOrder[:0]
	for g := range w.groups {
		order = append(order, int32(g))
	}
	slices.SortFunc(order, func(a, b int32) int {
		return bytes.Compare(w.arena[w.groups[a].off:w.groups[a].off+w.groups[a].n],
			w.arena[w.groups[b].off:w.groups[b].off+w.groups[b].n])
	})
	w.groupOrder = order
	start := w.groupStart[:0]
	n := int32(0)
	for r, g := range order {
		w.ranks[g] = int32(r)
		start = append(start, n)
		n += w.groupCount[g]
	}
	start = append(start, n)
	w.groupStart = start
	// Place the keys by group, keeping their order within each.
	sorted := slices.Grow(w.scratch[:0], len(w.aKeys))[:len(w.aKeys)]
	next := append(w.groupNext[:0], start[:len(start)-1]...)
	for _, e := range w.aKeys {
		r := w.ranks[e.index]
		sorted[next[r]] = e
		next[r]++
	}
	w.groupNext = next
	for r := 0; r+1 < len(start); r++ {
		w.sortEntries(sorted[start[r]:start[r+1]], false)
	}
	w.scratch = w.aKeys
	w.aKeys = sorted
}

// attrGroup returns the group of the a keys with the prefix in w.key[:n].
func (w *batchWriter) attrGroup(n int) int32 {
	if g, ok := w.groupOf[string(w.key[:n])]; ok {
		w.groupCount[g]++
		return g
	}
	if w.groupOf == nil {
		w.groupOf = make(map[string]int32)
	}
	g := int32(len(w.groups))
	off := uint32(len(w.arena))
	w.arena = append(w.arena, w.key[:n]...)
	w.groups = append(w.groups, span{off, uint32(n)})
	w.groupCount = append(w.groupCount, 1)
	w.groupOf[string(w.key[:n])] = g
	return g
}

// markExisting probes, in key order, the concepts and associations that build would
// write, marks those that exist to be skipped, and reports whether there were any.
func (w *batchWriter) markExisting(p *probe) (bool, error) {
	found := false
	probe := func(list []entry, skip, dup []bool) error {
		if len(list) == 0 {
			return nil
		}
		p.restart(w.keyOf(&list[0]), w.keyOf(&list[len(list)-1]))
		for j := range list {
			e := &list[j]
			if dup[e.index] {
				continue
			}
			ok, err := p.hasNext(w.keyOf(e))
			if err != nil {
				return err
			}
			if ok {
				found = true
				skip[e.index] = true
			}
		}
		return nil
	}
	if err := probe(w.cKeys, w.skipConcept, w.dupConcept); err != nil {
		return false, err
	}
	return found, probe(w.oKeys, w.skipAssoc, w.dupAssoc)
}

// build adds to b what storing concepts and assocs takes, skipping what prepare and
// markExisting marked.
func (w *batchWriter) build(s *Store, b *pebble.Batch, concepts []Concept, assocs []Association) WriteResult {
	var res WriteResult
	w.tKeys, w.aKeys, w.iKeys = w.tKeys[:0], w.aKeys[:0], w.iKeys[:0]
	clear(w.groupOf)
	w.groups, w.groupCount = w.groups[:0], w.groupCount[:0]
	w.cVals = slices.Grow(w.cVals[:0], len(concepts))[:len(concepts)]
	w.oVals = slices.Grow(w.oVals[:0], len(assocs))[:len(assocs)]
	text := s.segments.Get().(*textSegment)
	defer func() {
		text.reset()
		s.segments.Put(text)
	}()
	for i := range concepts {
		c := &concepts[i]
		if w.skipConcept[i] {
			res.ConceptsExisting++
			continue
		}
		// The concept's value: header, attributes, then (added by emit) the content.
		voff := uint32(len(w.arena))
		w.arena = appendConceptHeader(w.arena, c)
		aoff := uint32(len(w.arena))
		attrs := c.pairs
		if c.Attributes != nil {
			w.attrs = sortedAttributes(w.attrs[:0], c.Attributes)
			attrs = w.attrs
		}
		w.arena = appendAttributePairs(w.arena, attrs)
		end := uint32(len(w.arena))
		w.cVals[i] = span{voff, end - voff}

		w.key = timeKey(w.key[:0], c.Time, c.ID)
		w.tKeys = w.addKey(w.tKeys, span{aoff, end - aoff}, -1)
		for _, a := range attrs {
			w.key = attrPrefix(w.key[:0], a.name, a.value)
			g := w.attrGroup(len(w.key))
			w.key = appendPosition(w.key, c.Time, c.ID)
			w.aKeys = w.addKey(w.aKeys, span{}, g)
		}
		text.add(c)
		res.ConceptsCreated++
	}
	for i := range assocs {
		a := &assocs[i]
		if w.skipAssoc[i] {
			res.AssociationsExisting++
			continue
		}
		voff := uint32(len(w.arena))
		w.arena = appendAssociationValue(w.arena, a)
		v := span{voff, uint32(len(w.arena)) - voff}
		w.oVals[i] = v
		w.key = edgeKey(w.key[:0], tagIn, a.Target, a.Type, a.Source)
		w.iKeys = w.addKey(w.iKeys, v, -1)
		res.AssociationsCreated++
	}

	// Tables in any order; within each, keys in order.
	w.sortAttrKeys()
	w.sortEntries(w.iKeys, false)
	w.sortEntries(w.tKeys, false)
	w.emit(b, w.aKeys, nil, nil, nil)
	w.emit(b, w.cKeys, w.skipConcept, w.cVals, concepts)
	w.emit(b, w.iKeys, nil, nil, nil)
	w.emit(b, w.oKeys, w.skipAssoc, w.oVals, nil)
	w.emit(b, w.tKeys, nil, nil, nil)
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
	return res
}

// emit adds the entries of list to b. If skip is not nil, an entry's index field is
// the index of its concept or association, which is skipped if skip says so, and its
// value is vals[index], followed, for concepts, by the concept's content.
func (w *batchWriter) emit(b *pebble.Batch, list []entry, skip []bool, vals []span, concepts []Concept) {
	for j := range list {
		e := &list[j]
		v := e.val
		var content []byte
		if skip != nil {
			if skip[e.index] {
				continue
			}
			v = vals[e.index]
			if concepts != nil {
				content = concepts[e.index].Content
			}
		}
		op := b.SetDeferred(int(e.key.n), int(v.n)+len(content))
		copy(op.Key, w.arena[e.key.off:e.key.off+e.key.n])
		n := copy(op.Value, w.arena[v.off:v.off+v.n])
		copy(op.Value[n:], content)
		_ = op.Finish()
	}
}

// sortedAttributes appends attrs to dst, sorted by name.
func sortedAttributes(dst []attrPair, attrs map[string]string) []attrPair {
	for n, v := range attrs {
		dst = append(dst, attrPair{n, v})
	}
	slices.SortFunc(dst, func(a, b attrPair) int { return strings.Compare(a.name, b.name) })
	return dst
}

// estimateBatchSize guesses the bytes of a write's batch, so that it is allocated
// once.
func estimateBatchSize(concepts []Concept, assocs []Association) int {
	n := 64
	for i := range concepts {
		c := &concepts[i]
		// The text index takes up to about half the content's size again.
		n += 2*len(c.ID) + len(c.Content) + len(c.Content)/2 + 80
		for k, v := range c.Attributes {
			n += 2*(len(k)+len(v)) + len(c.ID) + 32
		}
		for _, a := range c.pairs {
			n += 2*(len(a.name)+len(a.value)) + len(c.ID) + 32
		}
	}
	for i := range assocs {
		a := &assocs[i]
		n += 2 * (len(a.Source) + len(a.Target) + len(a.Type) + 48)
	}
	return n
}

// probe checks keys for existence with one iterator.
//
// Keys probed in increasing order (a run, begun by restart) are probed by seeking to
// the first stored key at or after them: when it is not the key, no key before it
// exists either, and a write's new IDs usually all fall in one such gap (events
// bring increasing IDs), so that one seek answers for many keys. When seeks answer
// for few keys each (IDs scattered among stored ones), the probe checks each key on
// its own instead, with the bloom filters of every level, the last one included
// (pebble skips it by default, expecting keys looked up to exist): new IDs are then
// rejected without reading a block.
type probe struct {
	it *pebble.Iterator
	// next is the smallest stored key after the last one sought, if known; end: there
	// is none.
	next       []byte
	known, end bool
	// seeks made in this run, and the keys they answered for
	seeks, answered int
	perKey          bool
}

// A run's seeks must answer for minKeysPerSeek keys each, on average, once it has made
// minSeeks of them, or the probe checks keys one by one.
const (
	minSeeks       = 4
	minKeysPerSeek = 8
)

func (s *Store) newProbe() (*probe, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return nil, err
	}
	return &probe{it: it}, nil
}

// restart begins a run of keys in increasing order, from first to last: the probe
// looks no further (beyond the last key there may be many deleted ones to skip, such
// as the text index's merged pending segments after a concept key).
func (p *probe) restart(first, last []byte) {
	p.known, p.end, p.perKey = false, false, false
	p.seeks, p.answered = 0, 0
	p.it.SetBounds(first, successor(last))
}

// hasNext reports whether key exists. Since restart, keys must come in increasing
// order.
func (p *probe) hasNext(key []byte) (bool, error) {
	if p.known {
		if p.end {
			p.answered++
			return false, nil
		}
		switch c := bytes.Compare(key, p.next); {
		case c < 0:
			p.answered++
			return false, nil
		case c == 0:
			p.answered++
			p.known = false
			return true, nil
		}
	}
	if p.perKey || (p.seeks >= minSeeks && p.answered < minKeysPerSeek*p.seeks) {
		p.perKey = true
		return p.has(key)
	}
	p.seeks++
	p.answered++
	p.known, p.end = false, false
	if !p.it.SeekGE(key) {
		if err := p.it.Error(); err != nil {
			return false, err
		}
		p.known, p.end = true, true
		return false, nil
	}
	found := bytes.Equal(p.it.Key(), key)
	if found && !p.it.Next() {
		if err := p.it.Error(); err != nil {
			return false, err
		}
		p.known, p.end = true, true
		return true, nil
	}
	p.next = append(p.next[:0], p.it.Key()...)
	p.known = true
	return found, nil
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
