package storage

import (
	"encoding/binary"
	"io"

	"github.com/cockroachdb/pebble"
)

// Counters (m keys) are kept with a merge operator: a write adds its delta in the same
// batch as the data it counts, so counts stay exact across crashes, and concurrent
// writers never contend on a read-modify-write of one key.
var counterMerger = &pebble.Merger{
	Name: "grid.storage.counter.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &counterValueMerger{}
		return m, m.add(value)
	},
}

const (
	counterConcepts     = "concepts"
	counterAssociations = "associations"
	counterTokens       = "tokens" // total indexed words, for BM25's average length
)

type counterValueMerger struct{ sum int64 }

func (m *counterValueMerger) add(v []byte) error {
	if len(v) != 8 {
		return errBadRecord
	}
	m.sum += int64(binary.LittleEndian.Uint64(v))
	return nil
}

func (m *counterValueMerger) MergeNewer(v []byte) error { return m.add(v) }
func (m *counterValueMerger) MergeOlder(v []byte) error { return m.add(v) }

func (m *counterValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return encodeCounter(m.sum), nil, nil
}

func encodeCounter(v int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(v))
}

func decodeCounter(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v))
}
