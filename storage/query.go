package storage

import (
	"bytes"
	"errors"
	"math"
	"sort"
)

// Unbounded ends of a time range.
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// Order is the time order of query results.
type Order int

const (
	Ascending Order = iota
	Descending
)

// Filter matches concepts whose Attribute has one of Values.
type Filter struct {
	Attribute string
	Values    []string
}

// QuerySpec selects concepts: those with Start <= time < End that match every filter.
type QuerySpec struct {
	Start, End int64
	Filters    []Filter
	Order      Order
}

// plan builds the stream of positions that match spec, restricted to those after
// the position after (in spec's order) when after is not nil.
func (s *Store) plan(spec QuerySpec, after []byte) (stream, error) {
	desc := spec.Order == Descending
	var b bounds
	if spec.Start != MinTime {
		b.lower = appendTime(nil, spec.Start)
	}
	if spec.End != MaxTime {
		b.upper = appendTime(nil, spec.End)
	}
	if after != nil {
		// Keyset paging: the bounds exclude what earlier pages returned, so a page is
		// right even if concepts were written or removed in between.
		if desc {
			if b.upper == nil || bytes.Compare(after, b.upper) < 0 {
				b.upper = append([]byte(nil), after...)
			}
		} else {
			if next := successor(after); b.lower == nil || bytes.Compare(next, b.lower) > 0 {
				b.lower = next
			}
		}
	}
	if b.lower != nil && b.upper != nil && bytes.Compare(b.lower, b.upper) >= 0 {
		return emptyStream{}, nil
	}
	if len(spec.Filters) == 0 {
		return s.newIndexStream(timePrefix(), b, desc)
	}

	var streams []stream
	closeAll := func() {
		for _, st := range streams {
			st.close()
		}
	}
	for _, f := range spec.Filters {
		values := append([]string(nil), f.Values...)
		sort.Strings(values)
		var u unionStream
		u.desc = desc
		for i, v := range values {
			if i > 0 && v == values[i-1] {
				continue
			}
			x, err := s.newIndexStream(attrPrefix(nil, f.Attribute, v), b, desc)
			if err != nil {
				u.close()
				closeAll()
				return nil, err
			}
			u.s = append(u.s, x)
		}
		u.valid = make([]bool, len(u.s))
		if len(u.s) == 1 {
			streams = append(streams, u.s[0])
		} else {
			streams = append(streams, &u)
		}
	}
	if len(streams) == 1 {
		return streams[0], nil
	}
	return &intersectStream{s: streams, desc: desc}, nil
}

// maxPageBytes bounds the size of the concepts one Query or TextSearch returns, so that
// a response stays within gRPC's default 4 MiB message limit, and a node never builds
// a huge one: a page ends early once it holds this much (but always holds at least one
// concept).
const maxPageBytes = 3 << 20

// conceptSize approximates the encoded size of c.
func conceptSize(c *Concept) int {
	n := len(c.ID) + len(c.Content) + 48
	for k, v := range c.Attributes {
		n += len(k) + len(v) + 4
	}
	return n
}

// Query returns up to limit concepts that match spec (fewer if they would exceed
// maxPageBytes), continuing after the position after when it is not nil. next is the
// position to continue from, or nil when no more concepts match.
func (s *Store) Query(spec QuerySpec, after []byte, limit int) (out []*Concept, next []byte, err error) {
	st, err := s.plan(spec, after)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if cerr := st.close(); err == nil {
			err = cerr
		}
	}()
	var last []byte
	size := 0
	ok := st.first()
	for ; ok && len(out) < limit; ok = st.next() {
		pos := st.pos()
		_, id, err := decodePosition(pos)
		if err != nil {
			return nil, nil, err
		}
		c, err := s.Get(id)
		if errors.Is(err, ErrNotFound) {
			continue // removed by retention after the index scan began
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c)
		last = append(last[:0], pos...)
		if size += conceptSize(c); size >= maxPageBytes {
			ok = st.next()
			break
		}
	}
	if err := st.err(); err != nil {
		return nil, nil, err
	}
	if ok && last != nil {
		next = last
	}
	return out, next, nil
}

// emptyStream matches nothing.
type emptyStream struct{}

func (emptyStream) first() bool      { return false }
func (emptyStream) next() bool       { return false }
func (emptyStream) seek([]byte) bool { return false }
func (emptyStream) pos() []byte      { return nil }
func (emptyStream) err() error       { return nil }
func (emptyStream) close() error     { return nil }
