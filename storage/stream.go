package storage

import (
	"bytes"

	"github.com/cockroachdb/pebble"
)

// A stream yields index positions, (time, id) pairs (see keys.go), in scan order:
// ascending or descending. Query and Aggregate answer a filter with an intersection
// (one stream per filter) of unions (one stream per allowed value) of index scans,
// so that only matching positions are ever visited and the work is proportional to
// the answer, with seeks leaping over the rest.
type stream interface {
	// first positions the stream at its first position.
	first() bool
	// next moves to the next position.
	next() bool
	// seek moves to the first position at or after pos in scan order. A stream may
	// not be positioned before its current position by seek.
	seek(pos []byte) bool
	// pos is the current position; valid until the stream moves.
	pos() []byte
	err() error
	close() error
}

// cmpScan compares positions in scan order.
func cmpScan(a, b []byte, desc bool) int {
	c := bytes.Compare(a, b)
	if desc {
		return -c
	}
	return c
}

// indexStream scans the entries of one index prefix (the t index, or one attribute
// value of the a index) between two times.
type indexStream struct {
	it     *pebble.Iterator
	prefix []byte
	desc   bool
	buf    []byte
}

// bounds is the range of positions a stream covers: [lower, upper), either may be
// nil for unbounded.
type bounds struct {
	lower, upper []byte
}

func (s *Store) newIndexStream(prefix []byte, b bounds, desc bool) (*indexStream, error) {
	lower := append([]byte(nil), prefix...)
	if b.lower != nil {
		lower = append(lower, b.lower...)
	}
	upper := prefixEnd(prefix)
	if b.upper != nil {
		upper = append(append([]byte(nil), prefix...), b.upper...)
	}
	it, err := s.iter(lower, upper)
	if err != nil {
		return nil, err
	}
	return &indexStream{it: it, prefix: prefix, desc: desc}, nil
}

func (x *indexStream) first() bool {
	if x.desc {
		return x.it.Last()
	}
	return x.it.First()
}

func (x *indexStream) next() bool {
	if x.desc {
		return x.it.Prev()
	}
	return x.it.Next()
}

func (x *indexStream) seek(pos []byte) bool {
	x.buf = append(append(x.buf[:0], x.prefix...), pos...)
	if x.desc {
		// The last key at or before pos is the last one before pos's successor.
		x.buf = append(x.buf, 0)
		return x.it.SeekLT(x.buf)
	}
	return x.it.SeekGE(x.buf)
}

func (x *indexStream) pos() []byte   { return x.it.Key()[len(x.prefix):] }
func (x *indexStream) value() []byte { return x.it.Value() }
func (x *indexStream) err() error    { return x.it.Error() }
func (x *indexStream) close() error  { return x.it.Close() }

// unionStream yields the positions of any of its streams. Its streams never share a
// position (a concept has one value per attribute), so no deduplication is needed.
type unionStream struct {
	s     []stream
	valid []bool
	cur   int
	desc  bool
	// started is false until first or seek has positioned every stream.
	started bool
}

func (u *unionStream) pick() bool {
	u.cur = -1
	for i, s := range u.s {
		if u.valid[i] && (u.cur < 0 || cmpScan(s.pos(), u.s[u.cur].pos(), u.desc) < 0) {
			u.cur = i
		}
	}
	return u.cur >= 0
}

func (u *unionStream) first() bool {
	for i, s := range u.s {
		u.valid[i] = s.first()
	}
	u.started = true
	return u.pick()
}

func (u *unionStream) next() bool {
	if u.cur < 0 {
		return false
	}
	u.valid[u.cur] = u.s[u.cur].next()
	return u.pick()
}

func (u *unionStream) seek(pos []byte) bool {
	for i, s := range u.s {
		// A stream that is exhausted stays so: seeks only move forward.
		if !u.started || (u.valid[i] && cmpScan(s.pos(), pos, u.desc) < 0) {
			u.valid[i] = s.seek(pos)
		}
	}
	u.started = true
	return u.pick()
}

func (u *unionStream) pos() []byte { return u.s[u.cur].pos() }

func (u *unionStream) err() error {
	for _, s := range u.s {
		if err := s.err(); err != nil {
			return err
		}
	}
	return nil
}

func (u *unionStream) close() error {
	var first error
	for _, s := range u.s {
		if err := s.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// intersectStream yields the positions all its streams share, leapfrogging: each
// stream seeks to the furthest position seen so far until all agree.
type intersectStream struct {
	s    []stream
	desc bool
}

func (x *intersectStream) align(ok bool) bool {
	for ok {
		target := x.s[0].pos()
		agreed := true
		for _, s := range x.s[1:] {
			if !s.seek(target) {
				return false
			}
			if cmpScan(s.pos(), target, x.desc) != 0 {
				ok = x.s[0].seek(s.pos())
				agreed = false
				break
			}
		}
		if agreed {
			return true
		}
	}
	return false
}

func (x *intersectStream) first() bool          { return x.align(x.s[0].first()) }
func (x *intersectStream) next() bool           { return x.align(x.s[0].next()) }
func (x *intersectStream) seek(pos []byte) bool { return x.align(x.s[0].seek(pos)) }
func (x *intersectStream) pos() []byte          { return x.s[0].pos() }

func (x *intersectStream) err() error {
	for _, s := range x.s {
		if err := s.err(); err != nil {
			return err
		}
	}
	return nil
}

func (x *intersectStream) close() error {
	var first error
	for _, s := range x.s {
		if err := s.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
