package storage

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriteIsIdempotent(t *testing.T) {
	s := openTestStore(t)
	cs, as := eventBatch(0, 10, time.Second)

	res := mustWrite(t, s, cs, as)
	want := WriteResult{ConceptsCreated: 10, AssociationsCreated: 19}
	if res != want {
		t.Fatalf("first write: %+v, want %+v", res, want)
	}

	// The same batch again, and the same IDs with other fields: nothing changes.
	res = mustWrite(t, s, cs, as)
	want = WriteResult{ConceptsExisting: 10, AssociationsExisting: 19}
	if res != want {
		t.Fatalf("second write: %+v, want %+v", res, want)
	}
	changed := eventConcept(3, epoch+time.Hour.Nanoseconds())
	changed.Attributes["type"] = "other"
	if res := mustWrite(t, s, []Concept{changed}, nil); res.ConceptsExisting != 1 {
		t.Fatalf("rewrite with other fields: %+v", res)
	}
	got, err := s.Get(eventID(3))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, cs[3]) {
		t.Fatalf("concept changed by a rewrite:\n got %+v\nwant %+v", *got, cs[3])
	}

	// Duplicates inside one batch count once.
	dup := eventConcept(100, epoch)
	res = mustWrite(t, s, []Concept{dup, dup}, []Association{as[0], as[0]})
	want = WriteResult{ConceptsCreated: 1, ConceptsExisting: 1, AssociationsExisting: 2}
	if res != want {
		t.Fatalf("batch with duplicates: %+v, want %+v", res, want)
	}

	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Concepts != 11 || st.Associations != 19 {
		t.Fatalf("stats: %+v", st)
	}
	// Indexes hold each concept once: an aggregate counts 11, not more.
	agg, err := s.Aggregate(AggregateSpec{QuerySpec: QuerySpec{Start: MinTime, End: MaxTime}, GroupBy: []string{"type"}})
	if err != nil {
		t.Fatal(err)
	}
	if agg.Total != 11 {
		t.Fatalf("aggregate total %d, want 11", agg.Total)
	}
}

func TestGet(t *testing.T) {
	s := openTestStore(t)
	c := Concept{ID: "a\x00b", Content: nil, Attributes: nil, Time: 42}
	mustWrite(t, s, []Concept{c}, nil)
	got, err := s.Get("a\x00b")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Time != 42 || len(got.Content) != 0 || len(got.Attributes) != 0 {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of unknown ID: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs, as := eventBatch(0, 100, time.Second)
	mustWrite(t, s, cs, as)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Concepts != 100 || st.Associations != 199 || st.Oldest != epoch || st.Newest != epoch+99*int64(time.Second) {
		t.Fatalf("stats after reopen: %+v", st)
	}
}

func TestNeighbors(t *testing.T) {
	s := openTestStore(t)
	mustWrite(t, s, nil, []Association{
		{Source: "a", Target: "b", Type: "x", Time: 1},
		{Source: "a", Target: "c", Type: "y", Time: 2},
		{Source: "a", Target: "d", Type: "x", Time: 3},
		{Source: "e", Target: "a", Type: "x", Time: 4},
		{Source: "ab", Target: "z", Type: "x", Time: 5}, // must not show up as a's
	})
	ids := func(ns []Neighbor) []string {
		var out []string
		for _, n := range ns {
			d := "out:"
			if n.Direction == In {
				d = "in:"
			}
			out = append(out, d+n.ID)
		}
		return out
	}
	cases := []struct {
		name  string
		dir   Direction
		types []string
		limit int
		want  []string
	}{
		{"both", Both, nil, 100, []string{"out:b", "out:d", "out:c", "in:e"}},
		{"out", Out, nil, 100, []string{"out:b", "out:d", "out:c"}},
		{"in", In, nil, 100, []string{"in:e"}},
		{"type x", Both, []string{"x"}, 100, []string{"out:b", "out:d", "in:e"}},
		{"types y, x, y", Out, []string{"y", "x", "y"}, 100, []string{"out:b", "out:d", "out:c"}},
		{"unknown type", Both, []string{"q"}, 100, nil},
		{"limit", Both, nil, 2, []string{"out:b", "out:d"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, err := s.Neighbors("a", c.dir, c.types, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(ns); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	ns, _ := s.Neighbors("a", In, nil, 1)
	if a := ns[0].Association; a.Source != "e" || a.Target != "a" || a.Type != "x" || a.Time != 4 {
		t.Fatalf("association %+v", a)
	}
}

func TestFindPath(t *testing.T) {
	s := openTestStore(t)
	// a -> b -> c -> d, and a shortcut a -> x -> d of type "other"; e is unreachable.
	mustWrite(t, s, nil, []Association{
		{Source: "a", Target: "b", Type: "t"},
		{Source: "b", Target: "c", Type: "t"},
		{Source: "c", Target: "d", Type: "t"},
		{Source: "a", Target: "x", Type: "other"},
		{Source: "x", Target: "d", Type: "other"},
		{Source: "e", Target: "f", Type: "t"},
	})
	cases := []struct {
		name     string
		from, to string
		depth    int
		dir      Direction
		types    []string
		want     []string
	}{
		{"shortest", "a", "d", 6, Out, nil, []string{"a", "x", "d"}},
		{"by type", "a", "d", 6, Out, []string{"t"}, []string{"a", "b", "c", "d"}},
		{"too deep", "a", "d", 2, Out, []string{"t"}, nil},
		{"wrong way", "d", "a", 6, Out, nil, nil},
		{"either way", "d", "a", 6, Both, nil, []string{"d", "x", "a"}},
		{"in", "d", "a", 6, In, []string{"t"}, []string{"d", "c", "b", "a"}},
		{"unreachable", "a", "f", 6, Both, nil, nil},
		{"itself", "a", "a", 6, Both, nil, []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, edges, found, err := s.FindPath(c.from, c.to, c.depth, c.dir, c.types)
			if err != nil {
				t.Fatal(err)
			}
			if found != (c.want != nil) || !reflect.DeepEqual(path, c.want) {
				t.Fatalf("got %v (found %v), want %v", path, found, c.want)
			}
			if found && len(edges) != len(path)-1 {
				t.Fatalf("%d edges for a path of %d", len(edges), len(path))
			}
			for i, e := range edges {
				ends := map[string]bool{e.Source: true, e.Target: true}
				if !ends[path[i]] || !ends[path[i+1]] {
					t.Fatalf("edge %d %+v does not join %s and %s", i, e, path[i], path[i+1])
				}
			}
		})
	}
}

func TestTextSearch(t *testing.T) {
	s := openTestStore(t)
	mustWrite(t, s, []Concept{
		{ID: "1", Content: []byte("node crashed on host alpha"), Time: 1},
		{ID: "2", Content: []byte("node restarted on host alpha after it crashed, crashed, crashed"), Time: 2},
		{ID: "3", Content: []byte("spawn succeeded on host beta"), Time: 3},
		{ID: "4", Content: []byte("Ünïcode Wörds and UPPER case"), Time: 4},
		{ID: "5", Time: 5},
	}, nil)
	mustWrite(t, s, []Concept{{ID: "6", Content: []byte(`{"type":"node_crashed","host":"gamma"}`), Time: 6}}, nil)
	ids := func(rs []SearchResult) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Concept.ID)
		}
		return out
	}
	cases := []struct {
		query string
		limit int
		want  []string
	}{
		{"crashed", 10, []string{"2", "1", "6"}}, // 1 and 6: same length, tie broken by ID
		{"beta", 10, []string{"3"}},
		{"BETA!", 10, []string{"3"}},
		{"wörds upper", 10, []string{"4"}},
		{"crashed", 1, []string{"2"}},
		{"node_crashed gamma", 10, []string{"6", "2", "1"}},
		{"nothing", 10, nil},
		{"!!", 10, nil},
	}
	check := func(stage string) {
		t.Helper()
		for _, c := range cases {
			rs, err := s.Search(c.query, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(rs); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: Search(%q) = %v, want %v", stage, c.query, got, c.want)
			}
			for i := 1; i < len(rs); i++ {
				if rs[i].Score > rs[i-1].Score {
					t.Errorf("%s: Search(%q) not ranked: %v", stage, c.query, rs)
				}
			}
		}
	}
	// Small writes are pending a merge at first (unless the merger was quick), then
	// merged into one bucketed segment; search answers the same either way.
	check("before merge")
	if _, err := s.mergePending(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, tagPending); n != 0 {
		t.Fatalf("%d pending segments after a merge", n)
	}
	check("after merge")
}

func TestTokenize(t *testing.T) {
	var got []string
	tokenize([]byte(`{"type":"spawn_succeeded","pid":4242} Éclair x ÀB`), nil, func(b []byte) { got = append(got, string(b)) })
	want := []string{"type", "spawn", "succeeded", "pid", "4242", "éclair", "àb"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestSegmentWordsMatchTokenize checks that the text index's own word splitting
// (textSegment.add) finds the words tokenize finds, with the right counts.
func TestSegmentWordsMatchTokenize(t *testing.T) {
	long := strings.Repeat("ab", 40)
	contents := []string{
		`{"type":"spawn_succeeded","pid":4242} Éclair x ÀB`,
		"Ünïcode Wörds and UPPER case \xff\xfe bad \uFFFD bytes ΣΊΣΥΦΟΣ 123 " + long + " x" + long[:63],
		"a b c dd DD dD ee",
		"",
		"trailing-word",
	}
	var seg textSegment
	want := map[string]map[uint32]uint32{} // word -> ord -> tf
	for _, c := range contents {
		ord := uint32(seg.docs())
		seg.add(&Concept{ID: c, Content: []byte(c)})
		tokenize([]byte(c), nil, func(b []byte) {
			if want[string(b)] == nil {
				want[string(b)] = map[uint32]uint32{}
			}
			want[string(b)][ord]++
		})
	}
	got := map[string]map[uint32]uint32{}
	for i := range seg.words {
		w := &seg.words[i]
		if termHash(seg.wordBytes(w)) != w.hash {
			t.Errorf("word %q: wrong hash", seg.wordBytes(w))
		}
		got[string(seg.wordBytes(w))] = map[uint32]uint32{}
	}
	for _, p := range seg.postings {
		got[string(seg.wordBytes(&seg.words[p.word]))][p.ord] = p.tf
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("segment words\n%v\nwant\n%v", got, want)
	}
}

// TestWritesOfMixedBatches writes batches that mix new and stored concepts and
// associations, duplicates and IDs in any order, and checks the counts against a
// model of what is stored.
func TestWritesOfMixedBatches(t *testing.T) {
	s := openTestStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	stored := map[string]bool{}
	edges := map[[3]string]bool{}
	for round := 0; round < 40; round++ {
		var cs []Concept
		var as []Association
		n := 1 + rng.IntN(300)
		wantC, wantA := WriteResult{}, WriteResult{}
		seen := map[string]bool{}
		seenE := map[[3]string]bool{}
		for j := 0; j < n; j++ {
			// Mostly new IDs in increasing order, some scattered among stored ones.
			i := round*1000 + j
			if rng.IntN(4) == 0 {
				i = rng.IntN((round + 1) * 1000)
			}
			c := eventConcept(i, epoch+int64(i))
			cs = append(cs, c)
			if stored[c.ID] || seen[c.ID] {
				wantC.ConceptsExisting++
			} else {
				wantC.ConceptsCreated++
				seen[c.ID] = true
			}
			for _, a := range eventAssociations(&c, i) {
				as = append(as, a)
				k := [3]string{a.Source, a.Type, a.Target}
				if edges[k] || seenE[k] {
					wantA.AssociationsExisting++
				} else {
					wantA.AssociationsCreated++
					seenE[k] = true
				}
			}
		}
		rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		res := mustWrite(t, s, cs, as)
		want := WriteResult{wantC.ConceptsCreated, wantC.ConceptsExisting, wantA.AssociationsCreated, wantA.AssociationsExisting}
		if res != want {
			t.Fatalf("round %d: %+v, want %+v", round, res, want)
		}
		for id := range seen {
			stored[id] = true
		}
		for k := range seenE {
			edges[k] = true
		}
		if round%10 == 9 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Concepts != int64(len(stored)) || st.Associations != int64(len(edges)) {
		t.Fatalf("stats %+v, want %d concepts and %d associations", st, len(stored), len(edges))
	}
}

// TestProbeRuns checks hasNext, which answers for runs of increasing keys with as
// few seeks as it can, against has, key by key.
func TestProbeRuns(t *testing.T) {
	s := openTestStore(t)
	b := s.db.NewBatch()
	stored := map[string]bool{}
	for i := 0; i < 2000; i += 3 {
		k := string(conceptKey(nil, eventID(i)))
		stored[k] = true
		_ = b.Set([]byte(k), nil, nil)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 50; round++ {
		// Runs dense in stored keys, sparse, or beyond every stored key.
		lo, step := rng.IntN(2100), 1+rng.IntN(5)
		if round%5 == 0 {
			step = 1 + rng.IntN(200)
		}
		p, err := s.newProbe()
		if err != nil {
			t.Fatal(err)
		}
		last := lo
		for i := lo; i < lo+400*step && i < 2600; i += step {
			last = i
		}
		p.restart(conceptKey(nil, eventID(lo)), conceptKey(nil, eventID(last)))
		for i := lo; i < lo+400*step && i < 2600; i += step {
			k := conceptKey(nil, eventID(i))
			got, err := p.hasNext(k)
			if err != nil {
				t.Fatal(err)
			}
			if got != stored[string(k)] {
				t.Fatalf("round %d: hasNext(%s) = %v, want %v", round, k, got, !got)
			}
		}
		p.close()
	}
}
