package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// TestForwardSeeker holds forwardSeeker to SeekGE on series of keys with gaps from
// none to wide, so that it both steps and falls back to seeks (and backs off).
func TestForwardSeeker(t *testing.T) {
	s := openTestStore(t)
	const n = 2000
	b := s.db.NewBatch()
	key := func(i int) []byte { return []byte(fmt.Sprintf("t%06d", i)) }
	for i := 0; i < n; i += 2 { // even keys only: odd ones are absent
		if err := b.Set(key(i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	for _, gaps := range [][]int{{0}, {1}, {2}, {3, 1}, {7}, {9, 1, 1, 40}, {100}, {1, 1, 1, 1, 1, 30}} {
		t.Run(fmt.Sprint(gaps), func(t *testing.T) {
			it, err := s.iter([]byte("t"), []byte("u"))
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			ref, err := s.iter([]byte("t"), []byte("u"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			fs := forwardSeeker{it: it}
			for i, k := 0, 0; k <= n+1; k += gaps[i%len(gaps)] + 1 {
				want := ref.SeekGE(key(k))
				got := fs.seekGE(key(k))
				if got != want || (got && !bytes.Equal(it.Key(), ref.Key())) {
					t.Fatalf("seek to %s: got %v %q, want %v %q", key(k), got, it.Key(), want, ref.Key())
				}
				i++
			}
		})
	}
}
