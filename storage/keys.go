package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Key layout. Every key starts with a one-byte table tag. Variable-length components
// that are followed by more components are escaped (see appendEscaped) so that byte
// order of keys is the order of their components and no component can run into the
// next. A trailing component is stored raw: nothing follows it. Times are 8 bytes,
// big-endian, with the sign bit flipped so that byte order is time order.
//
//	c <id>                                      -> concept record (record.go)
//	t <time> <id>                               -> attributes (a covering time index)
//	a <esc name> <esc value> <time> <id>        -> empty (one per attribute)
//	o <esc source> <esc type> <target>          -> association value
//	i <esc target> <esc type> <source>          -> association value
//	x <bucket> <segment>                        -> postings (text.go)
//	d <segment>                                 -> concepts of a postings segment
//	p <segment>                                 -> postings of a small write, to merge
//	s <time> <segment>                          -> buckets of a postings segment
//	m <name>                                    -> counter (merge operator)
//
// A (time, id) pair, the tail of t and a keys, is a "position": positions of different
// indexes compare as bytes in the same order, which is what lets Query intersect and
// merge index scans (query.go).
const (
	tagConcept  = 'c'
	tagTime     = 't'
	tagAttr     = 'a'
	tagOut      = 'o'
	tagIn       = 'i'
	tagPostings = 'x'
	tagSegment  = 's'
	tagDocs     = 'd'
	tagPending  = 'p'
	tagCounter  = 'm'
)

// Escaping: 0x00 becomes 0x00 0xff and a component ends with 0x00 0x01. 0x01 sorts
// before 0xff and before any byte that can follow a raw 0x00, so a shorter component
// sorts before a longer one it prefixes, as with plain strings.
const (
	escByte     = 0x00
	escEscaped  = 0xff
	escTerminal = 0x01
)

var errBadKey = errors.New("malformed key")

// appendEscaped appends s to dst, escaped and terminated.
func appendEscaped(dst []byte, s string) []byte {
	for {
		i := indexByte(s, escByte)
		if i < 0 {
			dst = append(dst, s...)
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, escByte, escEscaped)
		s = s[i+1:]
	}
	return append(dst, escByte, escTerminal)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// decodeEscaped reads one escaped component from the front of b, returning it and the
// rest of b.
func decodeEscaped(b []byte) (string, []byte, error) {
	var out []byte
	for {
		i := bytes.IndexByte(b, escByte)
		if i < 0 || i+1 >= len(b) {
			return "", nil, errBadKey
		}
		out = append(out, b[:i]...)
		switch b[i+1] {
		case escTerminal:
			return string(out), b[i+2:], nil
		case escEscaped:
			out = append(out, escByte)
			b = b[i+2:]
		default:
			return "", nil, errBadKey
		}
	}
}

// appendTime appends t (Unix nanoseconds) so that byte order is numeric order.
func appendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
}

func decodeTime(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, errBadKey
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), nil
}

func conceptKey(dst []byte, id string) []byte {
	dst = append(dst, tagConcept)
	return append(dst, id...)
}

// appendPosition appends the (time, id) position shared by the t and a indexes.
func appendPosition(dst []byte, t int64, id string) []byte {
	return append(appendTime(dst, t), id...)
}

// decodePosition splits a position into its time and id.
func decodePosition(pos []byte) (int64, string, error) {
	t, err := decodeTime(pos)
	if err != nil {
		return 0, "", err
	}
	return t, string(pos[8:]), nil
}

func timePrefix() []byte { return []byte{tagTime} }

func timeKey(dst []byte, t int64, id string) []byte {
	dst = append(dst, tagTime)
	return appendPosition(dst, t, id)
}

// attrPrefix is the prefix of every index entry of name=value.
func attrPrefix(dst []byte, name, value string) []byte {
	dst = append(dst, tagAttr)
	dst = appendEscaped(dst, name)
	return appendEscaped(dst, value)
}

func attrKey(dst []byte, name, value string, t int64, id string) []byte {
	return appendPosition(attrPrefix(dst, name, value), t, id)
}

// edgePrefix is the prefix of the out (tagOut) or in (tagIn) associations of id;
// edgeTypePrefix narrows it to the associations of one type.
func edgePrefix(dst []byte, tag byte, id string) []byte {
	dst = append(dst, tag)
	return appendEscaped(dst, id)
}

func edgeTypePrefix(dst []byte, tag byte, id, typ string) []byte {
	return appendEscaped(edgePrefix(dst, tag, id), typ)
}

// edgeKey is the key of an association seen from its first end: for tagOut, from
// source to other = target; for tagIn, from target to other = source.
func edgeKey(dst []byte, tag byte, id, typ, other string) []byte {
	return append(edgeTypePrefix(dst, tag, id, typ), other...)
}

// decodeEdgeKey returns the components of an o or i key.
func decodeEdgeKey(k []byte) (tag byte, id, typ, other string, err error) {
	if len(k) < 1 || (k[0] != tagOut && k[0] != tagIn) {
		return 0, "", "", "", errBadKey
	}
	tag = k[0]
	id, rest, err := decodeEscaped(k[1:])
	if err != nil {
		return 0, "", "", "", err
	}
	typ, rest, err = decodeEscaped(rest)
	if err != nil {
		return 0, "", "", "", err
	}
	return tag, id, typ, string(rest), nil
}

func postingsPrefix(dst []byte, bucket uint16) []byte {
	dst = append(dst, tagPostings)
	return binary.BigEndian.AppendUint16(dst, bucket)
}

func postingsKey(dst []byte, bucket uint16, segment uint64) []byte {
	return binary.BigEndian.AppendUint64(postingsPrefix(dst, bucket), segment)
}

func segmentKey(dst []byte, maxTime int64, segment uint64) []byte {
	dst = append(dst, tagSegment)
	dst = appendTime(dst, maxTime)
	return binary.BigEndian.AppendUint64(dst, segment)
}

func docsKey(dst []byte, segment uint64) []byte {
	dst = append(dst, tagDocs)
	return binary.BigEndian.AppendUint64(dst, segment)
}

func pendingKey(dst []byte, segment uint64) []byte {
	dst = append(dst, tagPending)
	return binary.BigEndian.AppendUint64(dst, segment)
}

func counterKey(name string) []byte {
	return append([]byte{tagCounter}, name...)
}

// prefixEnd returns the smallest key greater than every key with prefix p, or nil if
// there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// successor returns the smallest key greater than k: k followed by 0x00.
func successor(k []byte) []byte {
	return append(append([]byte(nil), k...), 0)
}
