package storage

import (
	"encoding/binary"
	"time"

	"github.com/cockroachdb/pebble"
)

// The text merger folds the pending segments of small writes (see text.go) into
// bucketed segments, in the background, so that a single LearnConcept writes two text
// keys rather than one per bucket its words fall in. Until a pending segment is
// merged, TextSearch reads it directly; there are never many, since the merger runs
// every mergeInterval.
const (
	mergeInterval = 200 * time.Millisecond
	// maxMergeSegments bounds the pending segments one merge folds.
	maxMergeSegments = 10_000
)

// mergeLoop runs the merger until Close.
func (s *Store) mergeLoop() {
	defer close(s.mergeDone)
	t := time.NewTicker(mergeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.mergeStop:
			return
		case <-t.C:
		}
		for {
			n, err := s.mergePending()
			if err != nil {
				s.logger.Error("merge text index", "error", err)
				break
			}
			if n < maxMergeSegments {
				break
			}
		}
	}
}

// mergePending folds up to maxMergeSegments pending segments into one bucketed segment
// and returns how many it folded. The new segment and the removal of the pending ones
// are one batch: a crash leaves either all of them or none. It is not synced: a merge
// lost in a crash is simply done again.
func (s *Store) mergePending() (int, error) {
	it, err := s.iter([]byte{tagPending}, []byte{tagPending + 1})
	if err != nil {
		return 0, err
	}
	var m textSegment
	var merged []uint64
	for ok := it.First(); ok && len(merged) < maxMergeSegments; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 1+8 || len(v) < 8 {
			it.Close()
			return 0, errBadRecord
		}
		segment := binary.BigEndian.Uint64(k[1:])
		ids, err := segmentDocs(s.db, segment)
		if err != nil {
			it.Close()
			return 0, err
		}
		base := uint32(len(m.ids))
		err = walkWords(v[8:], func(word []byte, count uint64, enc []byte) error {
			return decodePostings(enc, count, func(ord, tf, length uint32) {
				m.addPosting(word, base+ord, tf, length)
			})
		})
		if err != nil {
			it.Close()
			return 0, err
		}
		if t := int64(binary.BigEndian.Uint64(v)); len(merged) == 0 || t > m.maxTime {
			m.maxTime = t
		}
		m.ids = append(m.ids, ids...)
		merged = append(merged, segment)
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if len(merged) == 0 {
		return 0, nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	m.writeBuckets(b, s.nextSegment())
	for _, segment := range merged {
		_ = b.Delete(pendingKey(nil, segment), nil)
		_ = b.Delete(docsKey(nil, segment), nil)
	}
	return len(merged), b.Commit(pebble.NoSync)
}
