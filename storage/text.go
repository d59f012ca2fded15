package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
)

// Full-text index. Content is split into words (runs of letters and digits,
// lowercased). Each write indexes the concepts it creates as one "segment": a table of
// their IDs, and their postings grouped into at most textBuckets values by a hash of
// the word. Keys per segment are then bounded by the buckets rather than by the
// distinct words, which matters for event-shaped content: every event brings a few
// words of its own (sequence numbers, timestamps, pids), and one key per word and
// write would be most of the keys a batch writes. Postings name a concept by its
// ordinal in the segment's table, so an ID is stored once, not once per word.
//
//	x <bucket> <segment>   -> uvarint words, then per word (in the order the write
//	                          first met them):
//	                            uvarint len, word, uvarint postings, then per posting
//	                            in ordinal order: uvarint ordinal delta,
//	                            uvarint frequency, uvarint words in the content
//	d <segment>            -> uvarint count, then per concept: uvarint len, id
//	s <max time> <segment> -> bitmap of the buckets the segment wrote
//
// The s key lists a segment's buckets under the newest time of its concepts, so that
// retention can drop a segment once all its concepts are gone. Until then, postings
// of deleted concepts remain and TextSearch skips them.
//
// A small write (fewer than pendingMaxDocs concepts: a single LearnConcept) would
// still write a key per bucket its words fall in, some thirty for one event. It
// writes one key instead, its whole segment, which a background merger (textmerge.go)
// soon folds, with the other small writes, into one bucketed segment:
//
//	p <segment>            -> newest time (8), then the words as in an x value
const (
	textBuckets    = 256
	pendingMaxDocs = 32
	minTermBytes   = 2
	maxTermBytes   = 64
	maxTermsPerDoc = 1024
	// maxQueryTerms bounds the words of one TextSearch.
	maxQueryTerms = 32
	// maxPostingsScanned bounds the work of one TextSearch; beyond it, the remaining
	// postings are not scored.
	maxPostingsScanned = 2_000_000
)

// BM25 parameters, the usual ones.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

func termBucket(term string) uint16 {
	h := uint32(fnvOffset32)
	for i := 0; i < len(term); i++ {
		h = (h ^ uint32(term[i])) * fnvPrime32
	}
	return uint16(h % textBuckets)
}

// tokenize calls fn with each word of b, lowercased, in buf's memory (fn must copy
// what it keeps). It returns buf for reuse.
func tokenize(b []byte, buf []byte, fn func(term []byte)) []byte {
	emit := func() {
		if len(buf) >= minTermBytes && len(buf) <= maxTermBytes {
			fn(buf)
		}
		buf = buf[:0]
	}
	buf = buf[:0]
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				buf = append(buf, c)
			case 'A' <= c && c <= 'Z':
				buf = append(buf, c+'a'-'A')
			default:
				emit()
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		i += n
		if r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		} else {
			emit()
		}
	}
	emit()
	return buf
}

// posting is one concept's use of one word (an index into textSegment.words). The
// postings of all words are in one slice for the whole segment, so that building a
// segment allocates little however many words it has; a word's come in increasing
// ord.
type posting struct {
	ord    uint32
	tf     uint32
	length uint32
	word   int32
}

type segmentWord struct {
	off, n uint32 // the word, in textSegment.chars
	hash   uint32 // termHash of the word
	slot   uint32 // in textSegment.table
	last   int32  // the word's last posting
	count  uint32
}

// textSegment collects the postings of the concepts one write creates. Segments are
// reused (see Store.segments): reset clears one for the next write.
type textSegment struct {
	// table is an open-addressing hash table of the words: 1 + an index into words,
	// or 0 for an empty slot. Its size is a power of two, at least twice the words.
	table    []int32
	chars    []byte // the words' bytes
	words    []segmentWord
	postings []posting
	ids      []string
	tokens   int64
	maxTime  int64

	// scratch
	touched []int32 // postings of the concept being added
	buf     []byte
	order   []int32 // words in the order they are written
	// the postings word by word, in that order (see gather); a word's start in it
	byWord    []posting
	wordStart []int32
	val       []byte
}

// FNV-1a, 32 bits: termHash and termBucket.
const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

func termHash(term []byte) uint32 {
	h := uint32(fnvOffset32)
	for _, c := range term {
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return h
}

func (t *textSegment) reset() {
	if len(t.words) < len(t.table)/16 {
		for i := range t.words {
			t.table[t.words[i].slot] = 0
		}
	} else {
		clear(t.table)
	}
	clear(t.ids) // IDs may be parts of a whole request (see batchcodec.go): let it go
	t.chars, t.words, t.postings, t.ids = t.chars[:0], t.words[:0], t.postings[:0], t.ids[:0]
	t.tokens, t.maxTime = 0, 0
}

func (t *textSegment) docs() int { return len(t.ids) }

func (t *textSegment) wordBytes(w *segmentWord) []byte { return t.chars[w.off : w.off+w.n] }

func tableSlot(h uint32, mask int) int { return int((h*0x9e3779b1)>>16) & mask }

// word returns the index of word (whose termHash is h) in t.words, adding it unless
// add is false (then it returns -1 for a word not there).
func (t *textSegment) word(word []byte, h uint32, add bool) int32 {
	if len(t.table) == 0 {
		t.table = make([]int32, 64)
	}
	mask := len(t.table) - 1
	i := tableSlot(h, mask)
	for {
		x := t.table[i]
		if x == 0 {
			break
		}
		if w := &t.words[x-1]; w.hash == h && string(t.wordBytes(w)) == string(word) {
			return x - 1
		}
		i = (i + 1) & mask
	}
	if !add {
		return -1
	}
	n := int32(len(t.words))
	off := uint32(len(t.chars))
	t.chars = append(t.chars, word...)
	t.words = append(t.words, segmentWord{off: off, n: uint32(len(word)), hash: h, slot: uint32(i)})
	t.table[i] = n + 1
	if 2*len(t.words) > len(t.table) {
		t.grow()
	}
	return n
}

// grow doubles the table.
func (t *textSegment) grow() {
	t.table = make([]int32, 2*len(t.table))
	mask := len(t.table) - 1
	for j := range t.words {
		w := &t.words[j]
		i := tableSlot(w.hash, mask)
		for t.table[i] != 0 {
			i = (i + 1) & mask
		}
		t.table[i] = int32(j) + 1
		w.slot = uint32(i)
	}
}

// add indexes the content of c. It splits the content into words as tokenize does,
// hashing each word as it goes.
func (t *textSegment) add(c *Concept) {
	if len(c.Content) == 0 {
		return
	}
	ord := uint32(len(t.ids))
	t.touched = t.touched[:0]
	var length uint32
	buf := t.buf[:0]
	h := uint32(fnvOffset32)
	b := c.Content
	for i := 0; i < len(b); {
		ch := b[i]
		if ch < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9':
			case 'A' <= ch && ch <= 'Z':
				ch += 'a' - 'A'
			default:
				if len(buf) > 0 {
					t.term(buf, h, ord, &length)
					buf, h = buf[:0], fnvOffset32
				}
				continue
			}
			buf = append(buf, ch)
			h = (h ^ uint32(ch)) * fnvPrime32
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		i += n
		if r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			start := len(buf)
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
			for _, x := range buf[start:] {
				h = (h ^ uint32(x)) * fnvPrime32
			}
		} else if len(buf) > 0 {
			t.term(buf, h, ord, &length)
			buf, h = buf[:0], fnvOffset32
		}
	}
	if len(buf) > 0 {
		t.term(buf, h, ord, &length)
	}
	t.buf = buf
	if len(t.touched) == 0 {
		return
	}
	for _, p := range t.touched {
		t.postings[p].length = length
	}
	if len(t.ids) == 0 || c.Time > t.maxTime {
		t.maxTime = c.Time
	}
	t.ids = append(t.ids, c.ID)
	t.tokens += int64(length)
}

// term records one word (hash h) of the concept with ordinal ord.
func (t *textSegment) term(term []byte, h uint32, ord uint32, length *uint32) {
	if len(term) < minTermBytes || len(term) > maxTermBytes {
		return
	}
	*length++
	full := len(t.touched) >= maxTermsPerDoc
	i := t.word(term, h, !full)
	if i < 0 {
		return
	}
	w := &t.words[i]
	// A word seen before in this concept has this concept's posting last.
	if w.count > 0 && t.postings[w.last].ord == ord {
		t.postings[w.last].tf++
		return
	}
	if full {
		return
	}
	p := int32(len(t.postings))
	t.postings = append(t.postings, posting{ord: ord, tf: 1, word: i})
	w.last = p
	w.count++
	t.touched = append(t.touched, p)
}

// write adds the segment's keys to b: bucketed if it is large enough, else pending a
// merge.
func (t *textSegment) write(b *pebble.Batch, segment uint64) {
	if t.docs() < pendingMaxDocs {
		t.writePending(b, segment)
	} else {
		t.writeBuckets(b, segment)
	}
}

// orderWords orders the segment's words by bucket (if byBucket), each bucket's in
// the order they were added; it returns where each bucket starts in t.order.
func (t *textSegment) orderWords(byBucket bool) (start [textBuckets + 1]int32) {
	t.order = slices.Grow(t.order[:0], len(t.words))[:len(t.words)]
	if !byBucket {
		for i := range t.order {
			t.order[i] = int32(i)
		}
		t.gather()
		return start
	}
	for i := range t.words {
		start[t.words[i].hash%textBuckets+1]++
	}
	for k := 1; k <= textBuckets; k++ {
		start[k] += start[k-1]
	}
	next := start
	for i := range t.words {
		k := t.words[i].hash % textBuckets
		t.order[next[k]] = int32(i)
		next[k]++
	}
	t.gather()
	return start
}

// gather copies the postings into byWord, word by word in the order of t.order, so
// that appendWords reads each word's from consecutive memory: a word in most of a
// write's concepts has postings all over t.postings, one cache miss each when
// followed there.
func (t *textSegment) gather() {
	t.wordStart = slices.Grow(t.wordStart[:0], len(t.words))[:len(t.words)]
	n := int32(0)
	for _, w := range t.order {
		t.wordStart[w] = n
		n += int32(t.words[w].count)
	}
	t.byWord = slices.Grow(t.byWord[:0], len(t.postings))[:len(t.postings)]
	// wordStart serves as each word's cursor, then is moved back.
	for _, p := range t.postings {
		t.byWord[t.wordStart[p.word]] = p
		t.wordStart[p.word]++
	}
	for _, w := range t.order {
		t.wordStart[w] -= int32(t.words[w].count)
	}
}

// appendWords appends the encoding of words and their postings (an x value).
func (t *textSegment) appendWords(dst []byte, words []int32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(words)))
	for _, i := range words {
		w := &t.words[i]
		dst = binary.AppendUvarint(dst, uint64(w.n))
		dst = append(dst, t.wordBytes(w)...)
		dst = binary.AppendUvarint(dst, uint64(w.count))
		prev := uint32(0)
		for j := range t.byWord[t.wordStart[i] : t.wordStart[i]+int32(w.count)] {
			ps := &t.byWord[t.wordStart[i]+int32(j)]
			dst = binary.AppendUvarint(dst, uint64(ps.ord-prev))
			dst = binary.AppendUvarint(dst, uint64(ps.tf))
			dst = binary.AppendUvarint(dst, uint64(ps.length))
			prev = ps.ord
		}
	}
	return dst
}

func (t *textSegment) writeBuckets(b *pebble.Batch, segment uint64) {
	start := t.orderWords(true)
	var used [textBuckets / 8]byte
	var key []byte
	for k := 0; k < textBuckets; k++ {
		if start[k] == start[k+1] {
			continue
		}
		used[k/8] |= 1 << (k % 8)
		t.val = t.appendWords(t.val[:0], t.order[start[k]:start[k+1]])
		key = postingsKey(key[:0], uint16(k), segment)
		_ = b.Set(key, t.val, nil)
	}
	_ = b.Set(segmentKey(nil, t.maxTime, segment), used[:], nil)
	_ = b.Set(docsKey(nil, segment), encodeStrings(t.ids), nil)
}

func (t *textSegment) writePending(b *pebble.Batch, segment uint64) {
	t.orderWords(false)
	t.val = binary.BigEndian.AppendUint64(t.val[:0], uint64(t.maxTime))
	t.val = t.appendWords(t.val, t.order)
	_ = b.Set(pendingKey(nil, segment), t.val, nil)
	_ = b.Set(docsKey(nil, segment), encodeStrings(t.ids), nil)
}

// addPosting adds a posting of word to the segment, for the merger: postings of a
// word must come in increasing ord.
func (t *textSegment) addPosting(word []byte, ord, tf, length uint32) {
	i := t.word(word, termHash(word), true)
	w := &t.words[i]
	p := int32(len(t.postings))
	t.postings = append(t.postings, posting{ord: ord, tf: tf, length: length, word: i})
	w.last = p
	w.count++
}

// walkWords calls fn for each word of an x value (or the words of a p value), with
// its postings' count and encoding.
func walkWords(v []byte, fn func(word []byte, count uint64, enc []byte) error) error {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return errBadRecord
	}
	v = v[k:]
	for ; n > 0; n-- {
		l, k := binary.Uvarint(v)
		if k <= 0 || l > uint64(len(v)-k) {
			return errBadRecord
		}
		w := v[k : k+int(l)]
		v = v[k+int(l):]
		count, k := binary.Uvarint(v)
		if k <= 0 {
			return errBadRecord
		}
		v = v[k:]
		end := 0
		for i := uint64(0); i < 3*count; i++ {
			_, k := binary.Uvarint(v[end:])
			if k <= 0 {
				return errBadRecord
			}
			end += k
		}
		if err := fn(w, count, v[:end]); err != nil {
			return err
		}
		v = v[end:]
	}
	return nil
}

// findPostings returns the postings of term in an x value: how many, and their
// encoding.
func findPostings(v []byte, term string) (count uint64, enc []byte, err error) {
	err = walkWords(v, func(w []byte, c uint64, e []byte) error {
		if string(w) == term {
			count, enc = c, e
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return count, enc, err
}

// decodePostings calls fn for each of count postings encoded in v.
func decodePostings(v []byte, count uint64, fn func(ord, tf, length uint32)) error {
	ord := uint64(0)
	for ; count > 0; count-- {
		var f [3]uint64
		for i := range f {
			x, k := binary.Uvarint(v)
			if k <= 0 {
				return errBadRecord
			}
			f[i], v = x, v[k:]
		}
		ord += f[0]
		if ord > math.MaxUint32 {
			return errBadRecord
		}
		fn(uint32(ord), uint32(f[1]), uint32(f[2]))
	}
	return nil
}

// encodeStrings encodes a list of strings: uvarint count, then uvarint len and bytes
// of each.
func encodeStrings(ss []string) []byte {
	n := binary.MaxVarintLen64
	for _, s := range ss {
		n += len(s) + 2
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(len(ss)))
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeStrings decodes what encodeStrings encoded.
func decodeStrings(v []byte) ([]string, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return nil, errBadRecord
	}
	v = v[k:]
	out := make([]string, 0, n)
	for ; n > 0; n-- {
		l, k := binary.Uvarint(v)
		if k <= 0 || l > uint64(len(v)-k) {
			return nil, errBadRecord
		}
		out = append(out, string(v[k:k+int(l)]))
		v = v[k+int(l):]
	}
	return out, nil
}

// SearchResult is one concept that TextSearch found.
type SearchResult struct {
	Concept *Concept
	Score   float64
}

// queryTerms returns the distinct words of a search query.
func queryTerms(q string) []string {
	var terms []string
	seen := map[string]bool{}
	tokenize([]byte(q), nil, func(t []byte) {
		if !seen[string(t)] && len(terms) < maxQueryTerms {
			seen[string(t)] = true
			terms = append(terms, string(t))
		}
	})
	return terms
}

// docRef names a concept in the text index: its segment and ordinal there.
type docRef struct {
	segment uint64
	ord     uint32
}

// termPostings are the postings of one word in one segment.
type termPostings struct {
	segment uint64
	count   uint64
	enc     []byte
}

// Search ranks the concepts whose content contains any word of query by BM25 and
// returns the best limit of them (fewer if they would exceed maxPageBytes).
func (s *Store) Search(query string, limit int) ([]SearchResult, error) {
	terms := queryTerms(query)
	if len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	docs, err := s.counter(counterConcepts)
	if err != nil {
		return nil, err
	}
	tokens, err := s.counter(counterTokens)
	if err != nil {
		return nil, err
	}
	n := float64(max(docs, 1))
	avgLen := math.Max(float64(tokens)/n, 1)

	// Gather each word's postings and document frequency, from its bucket and from
	// the small writes not merged yet, in one snapshot so that a merge cannot make a
	// concept count twice or not at all.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	postings := make([][]termPostings, len(terms))
	df := make([]uint64, len(terms))
	gathered := uint64(0)
	for i, term := range terms {
		gather := func(segment uint64, v []byte) error {
			count, enc, err := findPostings(v, term)
			if err != nil || count == 0 {
				return err
			}
			df[i] += count
			if gathered += count; gathered > maxPostingsScanned {
				return errStopScan
			}
			postings[i] = append(postings[i], termPostings{segment, count, bytes.Clone(enc)})
			return nil
		}
		err := scanSegments(snap, postingsPrefix(nil, termBucket(term)), 0, gather)
		if err == nil {
			err = scanSegments(snap, []byte{tagPending}, 8, gather)
		}
		if errors.Is(err, errStopScan) {
			break
		}
		if err != nil {
			return nil, err
		}
	}

	// A word in most concepts says little, and scoring it would cost a pass over most
	// of the index: such words are dropped unless every word of the query is one.
	common := func(i int) bool { return float64(df[i]) > n/2 }
	allCommon := true
	for i := range terms {
		allCommon = allCommon && common(i)
	}
	scores := make(map[docRef]float64)
	for i := range terms {
		if df[i] == 0 || (common(i) && !allCommon) {
			continue
		}
		idf := math.Log(1 + (n-float64(df[i])+0.5)/(float64(df[i])+0.5))
		for _, tp := range postings[i] {
			err := decodePostings(tp.enc, tp.count, func(ord, tf, length uint32) {
				f := float64(tf)
				scores[docRef{tp.segment, ord}] += idf * f * (bm25K1 + 1) /
					(f + bm25K1*(1-bm25B+bm25B*float64(length)/avgLen))
			})
			if err != nil {
				return nil, err
			}
		}
	}

	type scored struct {
		ref   docRef
		score float64
	}
	ranked := make([]scored, 0, len(scores))
	for ref, score := range scores {
		ranked = append(ranked, scored{ref, score})
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].score != ranked[j].score {
			return ranked[i].score > ranked[j].score
		}
		a, b := ranked[i].ref, ranked[j].ref
		return a.segment < b.segment || (a.segment == b.segment && a.ord < b.ord)
	})

	// Only now, for the best, look up which concepts they are.
	tables := map[uint64][]string{}
	seen := map[string]bool{}
	out := make([]SearchResult, 0, min(limit, len(ranked)))
	size := 0
	for _, r := range ranked {
		if len(out) == limit || size >= maxPageBytes {
			break
		}
		ids, ok := tables[r.ref.segment]
		if !ok {
			if ids, err = segmentDocs(snap, r.ref.segment); err != nil {
				return nil, err
			}
			tables[r.ref.segment] = ids
		}
		if int(r.ref.ord) >= len(ids) || seen[ids[r.ref.ord]] {
			continue
		}
		id := ids[r.ref.ord]
		seen[id] = true
		c, err := s.Get(id)
		if errors.Is(err, ErrNotFound) {
			continue // removed by retention; its segment is not gone yet
		}
		if err != nil {
			return nil, err
		}
		out = append(out, SearchResult{Concept: c, Score: r.score})
		size += conceptSize(c)
	}
	return out, nil
}

// segmentDocs returns the concept IDs of a segment, by ordinal.
func segmentDocs(r pebble.Reader, segment uint64) ([]string, error) {
	v, closer, err := r.Get(docsKey(nil, segment))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeStrings(v)
}

var errStopScan = errors.New("stop scan")

// scanSegments calls fn with the segment and value of each key under prefix, a bucket
// of x keys or the p keys, whose segment follows the prefix; skip bytes at the start
// of each value are not passed on.
func scanSegments(r pebble.Reader, prefix []byte, skip int, fn func(segment uint64, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != len(prefix)+8 || len(v) < skip {
			return errBadKey
		}
		if err := fn(binary.BigEndian.Uint64(k[len(prefix):]), v[skip:]); err != nil {
			return err
		}
	}
	return it.Error()
}
