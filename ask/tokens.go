package ask

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxQuestion bounds what Interpret reads. A question an operator types fits in a
// line or two; anything longer is pasted text, and refusing it keeps the parser's
// cost flat whatever arrives on POST /v1/ask.
const maxQuestion = 500

// screen refuses input that is no question in English before any parsing, so that
// junk never reaches a rule that might guess at it. It returns why, or "".
func screen(q string) string {
	switch {
	case strings.TrimSpace(q) == "":
		return "the question is empty"
	case len(q) > maxQuestion:
		return "the question is too long: ask one thing in a sentence or two"
	case !utf8.ValidString(q):
		return "the question is not text"
	}
	for _, r := range q {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case unicode.IsControl(r) || r == utf8.RuneError:
			return "the question is not text"
		}
	}
	for _, r := range fold(q) {
		if r > unicode.MaxASCII && unicode.IsLetter(r) {
			return "only questions in English are understood"
		}
	}
	lower := strings.ToLower(q)
	for _, frag := range codeFragments {
		if strings.Contains(lower, frag) {
			return "the question looks like code or a query language, not English"
		}
	}
	return ""
}

// codeFragments mark SQL, shell or markup. Plain English questions about events
// have no use for these characters, and treating them as words would invite a guess.
var codeFragments = []string{
	"`", "$", "|", ";", "<", ">", "{", "}", "\\", "*", "=",
	"select ", "drop table", "insert into", "union all", "rm -rf", "/*", "--", "&&",
}

// fold turns typographic punctuation into ASCII so that a question pasted from a
// chat or a document reads the same as one typed in a terminal.
func fold(q string) string {
	return typographic.Replace(q)
}

var typographic = strings.NewReplacer(
	"\u2018", "'", "\u2019", "'", "\u201c", `"`, "\u201d", `"`,
	"\u2013", "-", "\u2014", "-", "\u00a0", " ",
)

// tokenize lowercases q and splits it into words. Hyphens, colons, dots and
// underscores stay inside a word (node-2, 2026-03-01, 23:30, a UUID); a trailing
// possessive is dropped (agent-003's is agent-003); other punctuation separates.
func tokenize(q string) []string {
	q = strings.ToLower(fold(q))
	words := strings.FieldsFunc(q, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == ':' || r == '.' || r == '_' || r == '\'')
	})
	out := words[:0]
	for _, w := range words {
		w = strings.TrimSuffix(w, "'s")
		w = strings.ReplaceAll(w, "'", "")
		w = strings.Trim(w, "-:._")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// sentence is a tokenized question whose words are consumed as rules claim them:
// a time phrase's "last 3" must not count as a "top 3", nor its "last" as "the last".
type sentence struct {
	words []string
	used  []bool
}

func newSentence(q string) *sentence {
	w := tokenize(q)
	return &sentence{words: w, used: make([]bool, len(w))}
}

// at returns the unused word at i, or "" past the end or where consumed.
func (s *sentence) at(i int) string {
	if i < 0 || i >= len(s.words) || s.used[i] {
		return ""
	}
	return s.words[i]
}

// take consumes n words from i.
func (s *sentence) take(i, n int) {
	for k := i; k < i+n && k < len(s.used); k++ {
		s.used[k] = true
	}
}

// has reports whether any unused word is one of ws.
func (s *sentence) has(ws ...string) bool {
	return s.index(ws...) >= 0
}

// index returns the position of the first unused word among ws, or -1.
func (s *sentence) index(ws ...string) int {
	for i, w := range s.words {
		if s.used[i] {
			continue
		}
		for _, x := range ws {
			if w == x {
				return i
			}
		}
	}
	return -1
}

// phrase returns where the unused words p (space separated) first occur, or -1.
func (s *sentence) phrase(p string) int {
	ps := strings.Fields(p)
	for i := 0; i+len(ps) <= len(s.words); i++ {
		ok := true
		for k, w := range ps {
			if s.at(i+k) != w {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// hasPhrase reports whether any of the phrases occurs.
func (s *sentence) hasPhrase(ps ...string) bool {
	for _, p := range ps {
		if s.phrase(p) >= 0 {
			return true
		}
	}
	return false
}

// takePhrase consumes the first of the phrases that occurs and reports whether one did.
func (s *sentence) takePhrase(ps ...string) bool {
	for _, p := range ps {
		if i := s.phrase(p); i >= 0 {
			s.take(i, len(strings.Fields(p)))
			return true
		}
	}
	return false
}
