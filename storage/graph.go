package storage

import (
	"errors"
	"sort"

	"github.com/cockroachdb/pebble"
)

// Direction selects associations by which end a concept is.
type Direction int

const (
	// Both: associations from and to the concept.
	Both Direction = iota
	// Out: associations whose source is the concept.
	Out
	// In: associations whose target is the concept.
	In
)

// Neighbor is an association seen from one of its ends: ID is the other end.
type Neighbor struct {
	ID          string
	Direction   Direction
	Association Association
}

// ErrTooMuchWork is returned by a graph search that would examine more than
// maxPathEdges associations.
var ErrTooMuchWork = errors.New("search examined too many associations")

// maxPathEdges bounds the associations one FindPath examines, so that a walk through a
// hub (an agent with a million events) cannot run away.
const maxPathEdges = 1_000_000

// Get returns the concept id, or ErrNotFound.
func (s *Store) Get(id string) (*Concept, error) {
	v, closer, err := s.db.Get(conceptKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeConceptRecord(id, v)
}

// Neighbors lists up to limit associations of id: out first, then in, each ordered by
// type and then by the other end. types, if not empty, selects association types.
func (s *Store) Neighbors(id string, dir Direction, types []string, limit int) ([]Neighbor, error) {
	var out []Neighbor
	err := s.walkEdges(id, dir, types, func(n Neighbor) bool {
		out = append(out, n)
		return len(out) < limit
	})
	return out, err
}

// walkEdges calls fn for the associations of id until fn returns false.
func (s *Store) walkEdges(id string, dir Direction, types []string, fn func(Neighbor) bool) error {
	var prefixes [][]byte
	var dirs []Direction
	tags := []struct {
		tag byte
		dir Direction
	}{{tagOut, Out}, {tagIn, In}}
	sorted := append([]string(nil), types...)
	sort.Strings(sorted)
	for _, t := range tags {
		if dir != Both && dir != t.dir {
			continue
		}
		if len(sorted) == 0 {
			prefixes = append(prefixes, edgePrefix(nil, t.tag, id))
			dirs = append(dirs, t.dir)
			continue
		}
		for i, typ := range sorted {
			if i > 0 && typ == sorted[i-1] {
				continue
			}
			prefixes = append(prefixes, edgeTypePrefix(nil, t.tag, id, typ))
			dirs = append(dirs, t.dir)
		}
	}
	for i, p := range prefixes {
		more, err := s.walkPrefix(p, dirs[i], fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *Store) walkPrefix(p []byte, dir Direction, fn func(Neighbor) bool) (bool, error) {
	it, err := s.iter(p, prefixEnd(p))
	if err != nil {
		return false, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		_, id, typ, other, err := decodeEdgeKey(it.Key())
		if err != nil {
			return false, err
		}
		n := Neighbor{ID: other, Direction: dir, Association: Association{Type: typ}}
		if dir == Out {
			n.Association.Source, n.Association.Target = id, other
		} else {
			n.Association.Source, n.Association.Target = other, id
		}
		if err := decodeAssociationValue(it.Value(), &n.Association); err != nil {
			return false, err
		}
		if !fn(n) {
			return false, nil
		}
	}
	return true, it.Error()
}

// FindPath returns a shortest path from source to target of at most maxDepth
// associations, as the concepts along it (both ends included) and the associations
// between them. found is false if there is none.
func (s *Store) FindPath(source, target string, maxDepth int, dir Direction, types []string) (path []string, edges []Association, found bool, err error) {
	if source == target {
		return []string{source}, nil, true, nil
	}
	type step struct {
		from string
		via  Association
	}
	parent := map[string]step{source: {}}
	frontier := []string{source}
	examined := 0
	for depth := 0; depth < maxDepth && len(frontier) > 0; depth++ {
		var next []string
		for _, id := range frontier {
			var hit bool
			err := s.walkEdges(id, dir, types, func(n Neighbor) bool {
				examined++
				if examined > maxPathEdges {
					return false
				}
				if _, ok := parent[n.ID]; ok {
					return true
				}
				parent[n.ID] = step{from: id, via: n.Association}
				if n.ID == target {
					hit = true
					return false
				}
				next = append(next, n.ID)
				return true
			})
			if err != nil {
				return nil, nil, false, err
			}
			if hit {
				for at := target; at != source; at = parent[at].from {
					path = append(path, at)
					edges = append(edges, parent[at].via)
				}
				path = append(path, source)
				reverse(path)
				reverse(edges)
				return path, edges, true, nil
			}
			if examined > maxPathEdges {
				return nil, nil, false, ErrTooMuchWork
			}
		}
		frontier = next
	}
	return nil, nil, false, nil
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}
