package eventquery

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"

	"github.com/sutragrid/grid/events"
)

// Cursor is a position in a listing: the time and seq of the last event of a page,
// in the order of the store's time index. F fingerprints the filters and the order,
// so that a page token is not used with another listing; the time range is left out,
// as "since=1h" means another instant on every page.
type Cursor struct {
	V int    `json:"v"`
	F uint64 `json:"f"`
	T int64  `json:"t"`
	S uint64 `json:"s"`
}

const cursorVersion = 1

// errBadToken is the answer to a page token that is not one.
var errBadToken = errors.New("page_token is malformed")

// Token encodes c as a page token.
func (c Cursor) Token() string {
	c.V = cursorVersion
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes a page token.
func decodeCursor(tok string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var c Cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.V != cursorVersion {
		return nil, errBadToken
	}
	return &c, nil
}

// fingerprint identifies a listing by its filters and order, whatever the order of
// the values in each filter.
func fingerprint(f *Filter, desc bool) uint64 {
	h := fnv.New64a()
	lists := [][]string{f.Agents, f.Nodes, strs(f.Types)}
	// Listings without severities keep the fingerprint they had before there were any.
	if len(f.Severities) > 0 {
		lists = append(lists, strs(f.Severities))
	}
	for _, list := range lists {
		vs := slices.Clone(list)
		slices.Sort(vs)
		for _, v := range vs {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
		h.Write([]byte{0xff})
	}
	if desc {
		h.Write([]byte{1})
	}
	return h.Sum64()
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// key orders events as the event store's time index does: by time, then by ID,
// which sorts as the seq.
type key struct {
	t   int64
	seq uint64
}

func keyOf(e *events.Event) key { return key{e.Timestamp.UnixNano(), e.Seq} }

func (a key) less(b key) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}
