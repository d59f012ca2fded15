package storage

import (
	"encoding/binary"
	"errors"
	"math"
)

// Concept is what the store keeps for one concept. Time is in Unix nanoseconds.
type Concept struct {
	ID         string
	Content    []byte
	Attributes map[string]string
	Time       int64
	Strength   float64
	Confidence float64

	// pairs, when Attributes is nil, are the attributes sorted by name, without
	// duplicates: how the node's own LearnBatch decoder (batchcodec.go) passes them.
	pairs []attrPair
}

// Association is a typed edge from Source to Target, identified by (Source, Type,
// Target). Time is in Unix nanoseconds.
type Association struct {
	Source     string
	Target     string
	Type       string
	Confidence float64
	Time       int64
}

const recordVersion = 1

var errBadRecord = errors.New("malformed record")

// Record formats. Fixed-width fields first so that decoding needs no allocation until
// the caller wants the attributes or the content.
//
//	concept:     version, time (8), strength (8), confidence (8), attributes, content
//	attributes:  uvarint count, then per attribute sorted by name:
//	             uvarint len, name, uvarint len, value
//	association: version, time (8), confidence (8)
//
// The t index stores the encoded attributes alone, so that Aggregate can group by
// attribute values without reading concepts.

// appendAttributes appends the encoding of attrs, sorted by name so that equal maps
// encode equally.
func appendAttributes(dst []byte, attrs map[string]string) []byte {
	return appendAttributePairs(dst, sortedAttributes(nil, attrs))
}

// appendAttributePairs appends the encoding of attributes sorted by name.
func appendAttributePairs(dst []byte, attrs []attrPair) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(attrs)))
	for _, a := range attrs {
		dst = binary.AppendUvarint(dst, uint64(len(a.name)))
		dst = append(dst, a.name...)
		dst = binary.AppendUvarint(dst, uint64(len(a.value)))
		dst = append(dst, a.value...)
	}
	return dst
}

// attrIter walks encoded attributes without allocating.
type attrIter struct {
	b     []byte
	left  uint64
	name  []byte
	value []byte
	err   error
}

func newAttrIter(b []byte) attrIter {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return attrIter{err: errBadRecord}
	}
	return attrIter{b: b[k:], left: n}
}

func (it *attrIter) next() bool {
	if it.err != nil || it.left == 0 {
		return false
	}
	it.left--
	var ok bool
	if it.name, ok = it.field(); !ok {
		return false
	}
	if it.value, ok = it.field(); !ok {
		return false
	}
	return true
}

func (it *attrIter) field() ([]byte, bool) {
	n, k := binary.Uvarint(it.b)
	if k <= 0 || n > uint64(len(it.b)-k) {
		it.err = errBadRecord
		return nil, false
	}
	f := it.b[k : k+int(n)]
	it.b = it.b[k+int(n):]
	return f, true
}

// rest returns what follows the attributes once next has returned false.
func (it *attrIter) rest() ([]byte, error) {
	if it.err != nil {
		return nil, it.err
	}
	if it.left != 0 {
		return nil, errBadRecord
	}
	return it.b, nil
}

// decodeAttributes returns the attributes as a map and the bytes after them.
func decodeAttributes(b []byte) (map[string]string, []byte, error) {
	it := newAttrIter(b)
	var m map[string]string
	for it.next() {
		if m == nil {
			m = make(map[string]string, it.left+1)
		}
		m[string(it.name)] = string(it.value)
	}
	rest, err := it.rest()
	return m, rest, err
}

// lookupAttribute finds name in encoded attributes.
func lookupAttribute(b []byte, name string) ([]byte, bool) {
	it := newAttrIter(b)
	for it.next() {
		if string(it.name) == name {
			return it.value, true
		}
	}
	return nil, false
}

const conceptHeaderLen = 1 + 8 + 8 + 8

func appendConceptRecord(dst []byte, c *Concept) []byte {
	dst = appendConceptHeader(dst, c)
	dst = appendAttributes(dst, c.Attributes)
	return append(dst, c.Content...)
}

// appendConceptHeader appends the fixed-width start of a concept record; the encoded
// attributes and the content follow it.
func appendConceptHeader(dst []byte, c *Concept) []byte {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Time))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(c.Strength))
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(c.Confidence))
}

// decodeConceptRecord decodes a record; the result does not alias b.
func decodeConceptRecord(id string, b []byte) (*Concept, error) {
	if len(b) < conceptHeaderLen || b[0] != recordVersion {
		return nil, errBadRecord
	}
	c := &Concept{
		ID:         id,
		Time:       int64(binary.BigEndian.Uint64(b[1:])),
		Strength:   math.Float64frombits(binary.BigEndian.Uint64(b[9:])),
		Confidence: math.Float64frombits(binary.BigEndian.Uint64(b[17:])),
	}
	attrs, content, err := decodeAttributes(b[conceptHeaderLen:])
	if err != nil {
		return nil, err
	}
	c.Attributes = attrs
	c.Content = append([]byte(nil), content...)
	return c, nil
}

const associationValueLen = 1 + 8 + 8

func appendAssociationValue(dst []byte, a *Association) []byte {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.Time))
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(a.Confidence))
}

func decodeAssociationValue(b []byte, a *Association) error {
	if len(b) != associationValueLen || b[0] != recordVersion {
		return errBadRecord
	}
	a.Time = int64(binary.BigEndian.Uint64(b[1:]))
	a.Confidence = math.Float64frombits(binary.BigEndian.Uint64(b[9:]))
	return nil
}
