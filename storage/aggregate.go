package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sort"

	"github.com/cockroachdb/pebble"
)

// AggregateSpec counts the concepts a QuerySpec matches (its Order is ignored),
// grouped by the values of GroupBy attributes and, if Bucket is not zero, by time
// buckets of Bucket nanoseconds aligned to the Unix epoch.
type AggregateSpec struct {
	QuerySpec
	GroupBy   []string
	Bucket    int64
	MaxGroups int
}

// Group is one group of an aggregate.
type Group struct {
	Values []string
	Bucket int64
	Count  uint64
}

// AggregateResult is the answer of Aggregate.
type AggregateResult struct {
	Groups    []Group
	Total     uint64
	Truncated bool
}

// maxGroupsInMemory bounds the distinct groups one Aggregate may count.
const maxGroupsInMemory = 1_000_000

// ErrTooManyGroups is returned by an Aggregate whose groups would not fit in memory.
var ErrTooManyGroups = errors.New("too many groups")

// Aggregate counts what spec selects. It reads only indexes: the t index holds each
// concept's attributes, so grouping never reads a concept.
func (s *Store) Aggregate(spec AggregateSpec) (res AggregateResult, err error) {
	spec.Order = Ascending
	st, err := s.plan(spec.QuerySpec, nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := st.close(); err == nil {
			err = cerr
		}
	}()

	// attrsOf returns the encoded attributes at the stream's position: from the
	// stream itself when it scans the t index, else from a second iterator over the t
	// index that follows the stream forward (see forwardSeeker).
	var attrsOf func(pos []byte) ([]byte, error)
	if len(spec.GroupBy) > 0 {
		if x, ok := st.(*indexStream); ok && len(spec.Filters) == 0 {
			attrsOf = func([]byte) ([]byte, error) { return x.value(), nil }
		} else {
			it, err := s.iter(timePrefix(), prefixEnd(timePrefix()))
			if err != nil {
				return res, err
			}
			defer it.Close()
			fs := forwardSeeker{it: it}
			var key []byte
			attrsOf = func(pos []byte) ([]byte, error) {
				key = append(append(key[:0], tagTime), pos...)
				if !fs.seekGE(key) || !bytes.Equal(it.Key(), key) {
					return nil, it.Error() // removed meanwhile: no attributes
				}
				return it.Value(), nil
			}
		}
	}

	counts := make(map[string]*uint64)
	var key []byte
	for ok := st.first(); ok; ok = st.next() {
		pos := st.pos()
		key = key[:0]
		if spec.Bucket > 0 {
			t, err := decodeTime(pos)
			if err != nil {
				return res, err
			}
			key = binary.BigEndian.AppendUint64(key, uint64(floorDiv(t, spec.Bucket)*spec.Bucket))
		}
		if attrsOf != nil {
			attrs, err := attrsOf(pos)
			if err != nil {
				return res, err
			}
			for _, name := range spec.GroupBy {
				v, _ := lookupAttribute(attrs, name)
				key = appendEscaped(key, string(v))
			}
		}
		res.Total++
		if c := counts[string(key)]; c != nil {
			*c++
			continue
		}
		if len(counts) >= maxGroupsInMemory {
			return AggregateResult{}, ErrTooManyGroups
		}
		one := uint64(1)
		counts[string(key)] = &one
	}
	if err := st.err(); err != nil {
		return res, err
	}

	res.Groups = make([]Group, 0, len(counts))
	for k, c := range counts {
		g := Group{Count: *c}
		b := []byte(k)
		if spec.Bucket > 0 {
			g.Bucket = int64(binary.BigEndian.Uint64(b))
			b = b[8:]
		}
		for range spec.GroupBy {
			var v string
			if v, b, err = decodeEscaped(b); err != nil {
				return AggregateResult{}, err
			}
			g.Values = append(g.Values, v)
		}
		res.Groups = append(res.Groups, g)
	}
	sort.Slice(res.Groups, func(i, j int) bool {
		a, b := &res.Groups[i], &res.Groups[j]
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		for k := range a.Values {
			if a.Values[k] != b.Values[k] {
				return a.Values[k] < b.Values[k]
			}
		}
		return false
	})
	if spec.MaxGroups > 0 && len(res.Groups) > spec.MaxGroups {
		res.Groups = res.Groups[:spec.MaxGroups]
		res.Truncated = true
	}
	// Long attribute values could make even max_groups groups too big to send.
	size := 0
	for i, g := range res.Groups {
		size += 24
		for _, v := range g.Values {
			size += len(v) + 2
		}
		if size > maxPageBytes {
			res.Groups, res.Truncated = res.Groups[:i], true
			break
		}
	}
	return res, nil
}

// floorDiv divides rounding towards negative infinity, so that buckets before 1970
// start where they should.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// forwardSeeker positions an iterator at the first key at or after each of a series
// of increasing keys, as SeekGE does. A seek searches every level of the LSM tree;
// when the keys lie close together in the iterator's keyspace, as the positions of a
// filter that most concepts match do in the t index, a step or two of Next gets there
// for a fraction of that. So it steps up to seekerSteps times and seeks only if that
// did not reach the key; and once stepping fell short, which is what keys far apart
// do, it seeks straight away for the next seekerBackoff keys, so that sparse keys pay
// for a few steps only now and then.
type forwardSeeker struct {
	it *pebble.Iterator
	// seekOnly counts the keys still to seek to without stepping first.
	seekOnly int
}

const (
	seekerSteps   = 4
	seekerBackoff = 16
)

// seekGE moves to the first key >= key, which is not before the previous call's key,
// and reports whether there is one.
func (f *forwardSeeker) seekGE(key []byte) bool {
	if f.seekOnly > 0 || !f.it.Valid() {
		f.seekOnly = max(f.seekOnly-1, 0)
		return f.it.SeekGE(key)
	}
	for n := 0; bytes.Compare(f.it.Key(), key) < 0; n++ {
		if n == seekerSteps {
			f.seekOnly = seekerBackoff
			return f.it.SeekGE(key)
		}
		if !f.it.Next() {
			return false
		}
	}
	return true
}
