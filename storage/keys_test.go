package storage

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestEscapedOrder(t *testing.T) {
	// Each pair must encode in the order the strings sort in, whatever bytes they
	// hold, and a component must not run into what follows it.
	pairs := []struct{ a, b string }{
		{"", "a"},
		{"a", "ab"},
		{"a", "b"},
		{"a\x00", "a\x00\x00"},
		{"a", "a\x00"},
		{"a\x00b", "a\x01"},
		{"a\xff", "b"},
		{"\x00", "\x01"},
		{"agent-1", "agent-10"},
	}
	for _, p := range pairs {
		ea, eb := appendEscaped(nil, p.a), appendEscaped(nil, p.b)
		if bytes.Compare(ea, eb) >= 0 {
			t.Errorf("escaped %q >= escaped %q", p.a, p.b)
		}
		// With a suffix after each (as in a key), the order must not change.
		ka, kb := append(ea, 0xff, 0xff), append(eb, 0x00)
		if bytes.Compare(ka, kb) >= 0 {
			t.Errorf("escaped %q + suffix >= escaped %q + suffix", p.a, p.b)
		}
	}
}

func TestEscapedRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "\x00", "\x00\x00", "a\x00b\x01\xff", strings.Repeat("x\x00", 100)} {
		b := appendEscaped(nil, s)
		b = append(b, "rest"...)
		got, rest, err := decodeEscaped(b)
		if err != nil || got != s || string(rest) != "rest" {
			t.Errorf("decode(encode(%q)) = %q, %q, %v", s, got, rest, err)
		}
	}
	for _, bad := range []string{"", "abc", "a\x00", "a\x00\x02"} {
		if _, _, err := decodeEscaped([]byte(bad)); err == nil {
			t.Errorf("decodeEscaped(%q) succeeded", bad)
		}
	}
}

func TestTimeOrder(t *testing.T) {
	times := []int64{math.MinInt64, -1e18, -1, 0, 1, 1e18, math.MaxInt64}
	for i := 1; i < len(times); i++ {
		a, b := appendTime(nil, times[i-1]), appendTime(nil, times[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("time %d encodes after %d", times[i-1], times[i])
		}
		if got, _ := decodeTime(b); got != times[i] {
			t.Errorf("decodeTime(appendTime(%d)) = %d", times[i], got)
		}
	}
}

func TestEdgeKeyRoundTrip(t *testing.T) {
	cases := []struct{ id, typ, other string }{
		{"a", "concerns", "b"},
		{"a\x00", "t\x00", "\x00b"},
		{"", "", ""},
	}
	for _, c := range cases {
		for _, tag := range []byte{tagOut, tagIn} {
			k := edgeKey(nil, tag, c.id, c.typ, c.other)
			gt, id, typ, other, err := decodeEdgeKey(k)
			if err != nil || gt != tag || id != c.id || typ != c.typ || other != c.other {
				t.Errorf("decodeEdgeKey(edgeKey(%q)) = %c %q %q %q %v", c, gt, id, typ, other, err)
			}
			if !bytes.HasPrefix(k, edgeTypePrefix(nil, tag, c.id, c.typ)) {
				t.Errorf("edge key of %q lacks its type prefix", c)
			}
		}
	}
}

func TestAttrPrefixesDisjoint(t *testing.T) {
	// No attribute's index prefix may be a prefix of another's, or a scan of one
	// would return the other's entries.
	attrs := [][2]string{{"a", "b"}, {"a", "bc"}, {"ab", "c"}, {"a", "b\x00"}, {"a\x00", "b"}, {"", "ab"}}
	for i, x := range attrs {
		for j, y := range attrs {
			if i == j {
				continue
			}
			px, py := attrPrefix(nil, x[0], x[1]), attrPrefix(nil, y[0], y[1])
			if bytes.HasPrefix(py, px) {
				t.Errorf("prefix of %q is a prefix of that of %q", x, y)
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{[]byte("a"), []byte("b")},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, c := range cases {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzKeyEncoding checks that escaped components round-trip, keep their order, and
// never let one key's components be read as another's.
func FuzzKeyEncoding(f *testing.F) {
	f.Add("a", "b", int64(0), int64(1))
	f.Add("a\x00", "a", int64(-1), int64(1))
	f.Add("", "\x00\xff", int64(math.MinInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, a, b string, ta, tb int64) {
		ea, eb := appendEscaped(nil, a), appendEscaped(nil, b)
		if got := bytes.Compare(ea, eb); got != strings.Compare(a, b) {
			t.Fatalf("order of %q, %q: escaped %d, plain %d", a, b, got, strings.Compare(a, b))
		}
		got, rest, err := decodeEscaped(append(ea, eb...))
		if err != nil || got != a {
			t.Fatalf("decode %q: %q, %v", a, got, err)
		}
		if got, _, err := decodeEscaped(rest); err != nil || got != b {
			t.Fatalf("decode second %q: %q, %v", b, got, err)
		}
		if c := bytes.Compare(appendTime(nil, ta), appendTime(nil, tb)); c != cmpInt(ta, tb) {
			t.Fatalf("time order of %d, %d: %d", ta, tb, c)
		}
		// Index keys of different (name, value) never share a prefix.
		k := attrKey(nil, a, b, ta, "id")
		if a != b && bytes.HasPrefix(k, attrPrefix(nil, b, a)) {
			t.Fatalf("attr key of %q=%q has the prefix of %q=%q", a, b, b, a)
		}
		tag, id, typ, other, err := decodeEdgeKey(edgeKey(nil, tagOut, a, b, a+b))
		if err != nil || tag != tagOut || id != a || typ != b || other != a+b {
			t.Fatalf("edge key round trip of %q %q", a, b)
		}
		// Decoding arbitrary bytes must fail cleanly, not panic.
		decodeEscaped([]byte(a))
		decodeEdgeKey([]byte(a))
		decodeConceptRecord("x", []byte(a))
		decodePostings([]byte(a), 3, func(uint32, uint32, uint32) {})
		findPostings([]byte(a), b)
		decodeStrings([]byte(a))
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestConceptRecordRoundTrip(t *testing.T) {
	c := Concept{ID: "x", Content: []byte(`{"a":1}`), Attributes: map[string]string{"b": "2", "a": "1", "": "\x00"},
		Time: -5, Strength: 0.25, Confidence: math.Inf(1)}
	got, err := decodeConceptRecord("x", appendConceptRecord(nil, &c))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || string(got.Content) != string(c.Content) || got.Time != c.Time ||
		got.Strength != c.Strength || got.Confidence != c.Confidence || len(got.Attributes) != 3 ||
		got.Attributes["b"] != "2" || got.Attributes[""] != "\x00" {
		t.Fatalf("round trip: %+v", got)
	}
	if v, ok := lookupAttribute(appendAttributes(nil, c.Attributes), "b"); !ok || string(v) != "2" {
		t.Fatalf("lookupAttribute(b) = %q, %v", v, ok)
	}
	if _, ok := lookupAttribute(appendAttributes(nil, c.Attributes), "c"); ok {
		t.Fatal("lookupAttribute(c) found something")
	}
}
