package storage

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"sort"
)

// A page token is the position of the last concept of a page, and a fingerprint of
// the query it belongs to, so that a token used with another query is refused rather
// than silently returning the wrong page:
//
//	base64url(version, fingerprint (8), position)
const pageTokenVersion = 1

func queryFingerprint(q QuerySpec) uint64 {
	h := fnv.New64a()
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(q.Start))
	b = binary.BigEndian.AppendUint64(b, uint64(q.End))
	b = append(b, byte(q.Order))
	for _, f := range q.Filters {
		b = appendEscaped(b, f.Attribute)
		values := append([]string(nil), f.Values...)
		sort.Strings(values)
		for _, v := range values {
			b = appendEscaped(b, v)
		}
		b = append(b, 0xff)
	}
	h.Write(b)
	return h.Sum64()
}

func encodePageToken(q QuerySpec, pos []byte) string {
	b := []byte{pageTokenVersion}
	b = binary.BigEndian.AppendUint64(b, queryFingerprint(q))
	b = append(b, pos...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the position to continue after.
func decodePageToken(q QuerySpec, token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+8 || b[0] != pageTokenVersion {
		return nil, fieldErr("page_token", "malformed")
	}
	if binary.BigEndian.Uint64(b[1:]) != queryFingerprint(q) {
		return nil, fieldErr("page_token", "belongs to a different query")
	}
	return b[9:], nil
}
