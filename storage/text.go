package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
)

// Full-text index. Content is split into words (runs of letters and digits, lowercased);
// each write stores one postings list per distinct word of all the concepts it creates,
// a "segment", rather than one key per word and concept: an event-shaped batch of 1,000
// concepts shares most of its words (JSON field names, event types, agent IDs), so this
// writes a few thousand keys instead of tens of thousands. Postings name a concept by
// its ordinal in the segment's table of concepts, so an ID is stored once, not once per
// word.
//
//	x <esc term> <segment> -> uvarint count, then per concept in ordinal order:
//	                           uvarint ordinal delta, uvarint term frequency,
//	                           uvarint words in the content
//	d <segment>            -> uvarint count, then per concept: uvarint len, id
//	s <max time> <segment> -> uvarint count, then per term: uvarint len, term
//
// The s key lists a segment's terms under the newest time of its concepts, so that
// retention can drop a segment once all its concepts are gone. Until then, postings of
// deleted concepts remain and TextSearch skips them.
const (
	minTermBytes   = 2
	maxTermBytes   = 64
	maxTermsPerDoc = 1024
	// maxQueryTerms bounds the words of one TextSearch.
	maxQueryTerms = 32
	// maxPostingsScanned bounds the work of one TextSearch; beyond it, a term's
	// remaining postings are not scored.
	maxPostingsScanned = 2_000_000
)

// BM25 parameters, the usual ones.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

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

type posting struct {
	ord    uint32
	tf     uint32
	length uint32
}

// textSegment collects the postings of the concepts one write creates.
type textSegment struct {
	terms   map[string][]posting
	ids     []string
	tokens  int64
	maxTime int64

	// scratch, per concept
	index  map[string]int
	counts []uint32
	words  []string
	buf    []byte
}

func (t *textSegment) docs() int { return len(t.ids) }

func (t *textSegment) add(c *Concept) {
	if len(c.Content) == 0 {
		return
	}
	if t.terms == nil {
		t.terms = make(map[string][]posting)
		t.index = make(map[string]int)
	}
	clear(t.index)
	t.counts, t.words = t.counts[:0], t.words[:0]
	var length uint32
	t.buf = tokenize(c.Content, t.buf, func(term []byte) {
		length++
		if i, ok := t.index[string(term)]; ok {
			t.counts[i]++
			return
		}
		if len(t.words) >= maxTermsPerDoc {
			return
		}
		w := string(term)
		t.index[w] = len(t.words)
		t.words = append(t.words, w)
		t.counts = append(t.counts, 1)
	})
	if len(t.words) == 0 {
		return
	}
	ord := uint32(len(t.ids))
	for i, w := range t.words {
		t.terms[w] = append(t.terms[w], posting{ord: ord, tf: t.counts[i], length: length})
	}
	if len(t.ids) == 0 || c.Time > t.maxTime {
		t.maxTime = c.Time
	}
	t.ids = append(t.ids, c.ID)
	t.tokens += int64(length)
}

// write adds the segment's keys to b.
func (t *textSegment) write(b *pebble.Batch, segment uint64) {
	var key, val, terms []byte
	terms = binary.AppendUvarint(terms, uint64(len(t.terms)))
	for term, ps := range t.terms {
		val = binary.AppendUvarint(val[:0], uint64(len(ps)))
		prev := uint32(0)
		for _, p := range ps {
			val = binary.AppendUvarint(val, uint64(p.ord-prev))
			val = binary.AppendUvarint(val, uint64(p.tf))
			val = binary.AppendUvarint(val, uint64(p.length))
			prev = p.ord
		}
		key = postingsKey(key[:0], term, segment)
		_ = b.Set(key, val, nil)
		terms = binary.AppendUvarint(terms, uint64(len(term)))
		terms = append(terms, term...)
	}
	_ = b.Set(segmentKey(nil, t.maxTime, segment), terms, nil)
	_ = b.Set(docsKey(nil, segment), encodeStrings(t.ids), nil)
}

// decodePostings calls fn for each posting of a postings value.
func decodePostings(v []byte, fn func(ord, tf, length uint32)) error {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return errBadRecord
	}
	v = v[k:]
	ord := uint64(0)
	for ; n > 0; n-- {
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

func postingsCount(v []byte) uint64 {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0
	}
	return n
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

// decodeStrings decodes what encodeStrings encoded: the terms of an s value, the
// concepts of a d value.
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

// Search ranks the concepts whose content contains any word of query by BM25 and
// returns the best limit of them.
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

	// Document frequencies first: a word in most concepts says little, and scoring
	// it would cost a scan of most of the index. Such words are dropped unless every
	// word of the query is one.
	df := make([]uint64, len(terms))
	for i, term := range terms {
		if df[i], err = s.scanPostings(term, func(uint64, []byte) error { return nil }); err != nil {
			return nil, err
		}
	}
	common := func(i int) bool { return float64(df[i]) > n/2 }
	allCommon := true
	for i := range terms {
		allCommon = allCommon && common(i)
	}

	scores := make(map[docRef]float64)
	scanned := 0
	for i, term := range terms {
		if df[i] == 0 || (common(i) && !allCommon) {
			continue
		}
		idf := math.Log(1 + (n-float64(df[i])+0.5)/(float64(df[i])+0.5))
		_, err := s.scanPostings(term, func(segment uint64, v []byte) error {
			if scanned >= maxPostingsScanned {
				return errStopScan
			}
			return decodePostings(v, func(ord, tf, length uint32) {
				scanned++
				f := float64(tf)
				scores[docRef{segment, ord}] += idf * f * (bm25K1 + 1) /
					(f + bm25K1*(1-bm25B+bm25B*float64(length)/avgLen))
			})
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return nil, err
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
	for _, r := range ranked {
		if len(out) == limit {
			break
		}
		ids, ok := tables[r.ref.segment]
		if !ok {
			if ids, err = s.segmentDocs(r.ref.segment); err != nil {
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
	}
	return out, nil
}

// segmentDocs returns the concept IDs of a segment, by ordinal.
func (s *Store) segmentDocs(segment uint64) ([]string, error) {
	v, closer, err := s.db.Get(docsKey(nil, segment))
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

// scanPostings calls fn with the segment and value of each postings list of term and
// returns how many postings there are.
func (s *Store) scanPostings(term string, fn func(segment uint64, v []byte) error) (uint64, error) {
	p := postingsPrefix(nil, term)
	it, err := s.iter(p, prefixEnd(p))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n uint64
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != len(p)+8 {
			return n, errBadKey
		}
		n += postingsCount(v)
		if err := fn(binary.BigEndian.Uint64(k[len(p):]), v); err != nil {
			return n, err
		}
	}
	return n, it.Error()
}
