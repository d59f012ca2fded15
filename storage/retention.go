package storage

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/pebble"
)

// expireChunk is how many concepts one retention batch removes: small enough that
// writers waiting on a stripe lock wait briefly.
const expireChunk = 500

// ExpireBefore removes every concept whose time is before cutoff, with its index
// entries and every association from or to it, then the text segments whose concepts
// are all gone. It returns how many concepts it removed.
//
// Deletes are not synced: a removal lost in a crash is simply done again by the next
// pass, and counters change in the same batches as the data they count.
func (s *Store) ExpireBefore(ctx context.Context, cutoff int64) (int, error) {
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, err := s.expireChunk(cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
		if n < expireChunk {
			break
		}
	}
	return removed, s.expireSegments(ctx, cutoff)
}

type expiring struct {
	id string
	t  int64
}

func (s *Store) expireChunk(cutoff int64) (int, error) {
	it, err := s.iter(timePrefix(), timeKey(nil, cutoff, ""))
	if err != nil {
		return 0, err
	}
	var batch []expiring
	for ok := it.First(); ok && len(batch) < expireChunk; ok = it.Next() {
		t, id, err := decodePosition(it.Key()[1:])
		if err != nil {
			it.Close()
			return 0, err
		}
		batch = append(batch, expiring{id: id, t: t})
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}

	var set stripeSet
	for _, e := range batch {
		set.add(e.id)
	}
	s.lockStripes(&set)
	defer s.unlockStripes(&set)

	b := s.db.NewBatch()
	defer b.Close()
	var (
		concepts, assocs, tokens int64
		key, buf                 []byte
		edgesGone                = map[string]bool{}
	)
	for _, e := range batch {
		_ = b.Delete(timeKey(nil, e.t, e.id), nil)
		c, err := s.Get(e.id)
		if err == ErrNotFound {
			continue // a stray index entry: nothing else to remove
		}
		if err != nil {
			return 0, err
		}
		_ = b.Delete(conceptKey(nil, e.id), nil)
		for n, v := range c.Attributes {
			_ = b.Delete(attrKey(nil, n, v, c.Time, c.ID), nil)
		}
		buf = tokenize(c.Content, buf, func([]byte) { tokens++ })
		concepts++

		// Associations from and to the concept, each under both of its keys. An
		// association between two expiring concepts is met twice.
		err = s.walkEdges(e.id, Both, nil, func(n Neighbor) bool {
			a := n.Association
			key = edgeKey(key[:0], tagOut, a.Source, a.Type, a.Target)
			if edgesGone[string(key)] {
				return true
			}
			edgesGone[string(key)] = true
			_ = b.Delete(key, nil)
			_ = b.Delete(edgeKey(nil, tagIn, a.Target, a.Type, a.Source), nil)
			assocs++
			return true
		})
		if err != nil {
			return 0, err
		}
	}
	if concepts > 0 {
		_ = b.Merge(counterKey(counterConcepts), encodeCounter(-concepts), nil)
		_ = b.Merge(counterKey(counterTokens), encodeCounter(-tokens), nil)
	}
	if assocs > 0 {
		_ = b.Merge(counterKey(counterAssociations), encodeCounter(-assocs), nil)
	}
	return len(batch), b.Commit(pebble.NoSync)
}

// expireSegments removes the text segments whose newest concept is before cutoff.
func (s *Store) expireSegments(ctx context.Context, cutoff int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := s.iter([]byte{tagSegment}, segmentKey(nil, cutoff, 0))
		if err != nil {
			return err
		}
		b := s.db.NewBatch()
		n := 0
		for ok := it.First(); ok && n < expireChunk; ok = it.Next() {
			k := it.Key()
			if len(k) != 1+8+8 {
				continue
			}
			segment := binary.BigEndian.Uint64(k[9:])
			used := it.Value()
			if len(used) != textBuckets/8 {
				it.Close()
				b.Close()
				return errBadRecord
			}
			for bucket := 0; bucket < textBuckets; bucket++ {
				if used[bucket/8]&(1<<(bucket%8)) != 0 {
					_ = b.Delete(postingsKey(nil, uint16(bucket), segment), nil)
				}
			}
			_ = b.Delete(k, nil)
			_ = b.Delete(docsKey(nil, segment), nil)
			n++
		}
		if err := it.Close(); err != nil {
			b.Close()
			return err
		}
		err = b.Commit(pebble.NoSync)
		b.Close()
		if err != nil || n < expireChunk {
			return err
		}
	}
}
