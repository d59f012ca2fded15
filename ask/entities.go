package ask

import (
	"regexp"
	"strings"
)

// entity is a name found in a question, resolved against Names.
type entity struct {
	name string // canonical: as the grid knows it, a node by its name
	kind string // agent, node or cluster
}

// entityShape matches words that can only be meant as an agent or node name, so an
// unknown one is reported rather than read as an ordinary word.
var entityShape = regexp.MustCompile(`^(agent|node)-[a-z0-9][a-z0-9_.-]*$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// index is Names folded for lookup by lowercase word.
type index map[string]entity

func newIndex(n Names) index {
	ix := make(index, len(n.Agents)+2*len(n.Nodes))
	for _, a := range n.Agents {
		if a != "" {
			ix[strings.ToLower(a)] = entity{name: a, kind: "agent"}
		}
	}
	for _, nd := range n.Nodes {
		name := nd.Name
		if name == "" {
			name = nd.ID // a node without a name goes by its ID
		}
		if name == "" {
			continue
		}
		e := entity{name: name, kind: "node"}
		ix[strings.ToLower(name)] = e
		if nd.ID != "" {
			ix[strings.ToLower(nd.ID)] = e
		}
	}
	return ix
}

// resolveEntities consumes the entity names in s. It returns the known ones, in the
// order asked and without repeats, and the words shaped like names the grid has
// never known.
func resolveEntities(s *sentence, ix index) (known []entity, unknown []string) {
	seen := map[string]bool{}
	for i, w := range s.words {
		if s.used[i] {
			continue
		}
		e, ok := ix[w]
		switch {
		case ok:
			s.take(i, 1)
			if !seen[e.name] {
				seen[e.name] = true
				known = append(known, e)
			}
		case entityShape.MatchString(w):
			s.take(i, 1)
			if !seen[w] {
				seen[w] = true
				unknown = append(unknown, w)
			}
		}
	}
	return known, unknown
}

func names(es []entity) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

func hasKind(es []entity, kind string) bool {
	for _, e := range es {
		if e.kind == kind {
			return true
		}
	}
	return false
}
