package acl

import (
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	rules, err := ParsePolicy(`
# Operators of the web fleet.
agent { policy = "read" }
node {
  policy = "write"
}
event    { policy = "read" }
operator { policy = "deny" }
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Rules{Agent: Read, Node: Write, Event: Read, Operator: Deny}
	if *rules != want {
		t.Fatalf("rules %+v, want %+v", *rules, want)
	}
	again, err := ParsePolicy(rules.HCL())
	if err != nil || *again != want {
		t.Fatalf("HCL() %q parses to %+v, %v", rules.HCL(), again, err)
	}
}

// Every mistake is an error that says where it is and what is wrong.
func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{`node { policy = "admin" }`, []string{"line 1", "node.policy", `"admin"`, "deny", "read", "write"}},
		{"agent { policy = \"read\" }\n\nnodes { policy = \"read\" }", []string{"line 3", "nodes"}},
		{"node { policy = \"read\" }\nnode { policy = \"write\" }", []string{"line 2", "node", "twice", "line 1"}},
		{"event {\n  level = \"read\"\n}", []string{"event", "line 2", "level"}},
		{"event {}", []string{"event", "policy", "line 1"}},
		{`operator { policy = 3 }`, []string{"line 1", "operator.policy", "string"}},
		{`operator { policy = read }`, []string{"line 1", "operator.policy", "Variables not allowed"}},
		{`node "web-" { policy = "write" }`, []string{"line 1", "node", "label"}},
		{`node { policy = "read"`, []string{"line 1"}},
		{"", []string{"grants nothing"}},
		{"# nothing but a comment\n", []string{"grants nothing"}},
		{`policy = "read"`, []string{"line 1", "policy"}},
		{strings.Repeat(" ", MaxPolicyBytes+1), []string{"over the limit"}},
	} {
		_, err := ParsePolicy(tc.src)
		if err == nil {
			t.Errorf("%q: no error", tc.src)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.src, err, w)
			}
		}
	}
}

func TestLevelAllows(t *testing.T) {
	for _, tc := range []struct {
		have, need Level
		ok         bool
	}{
		{Write, Write, true}, {Write, Read, true}, {Read, Read, true},
		{Read, Write, false}, {Deny, Read, false}, {LevelNone, Read, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q allows %q: %v", tc.have, tc.need, got)
		}
	}
}

// The parser never panics, and what it accepts renders back to HCL that parses to
// the same rules.
func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		`agent { policy = "read" }`,
		"node {\n policy = \"write\"\n}\nevent { policy = \"deny\" }",
		`operator { policy = "${"read"}" }`,
		`node "x" { policy = "read" }`,
		`node { policy = ["read"] }`,
		`node { policy = "read" } node { policy = "read" }`,
		"# comment\n/* block */ agent { policy = \"write\" }",
		`{`, `"`, "\x00", `agent { policy = null }`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		rules, err := ParsePolicy(src)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		again, err := ParsePolicy(rules.HCL())
		if err != nil {
			t.Fatalf("%q parsed, but its rendering %q does not: %v", src, rules.HCL(), err)
		}
		if *again != *rules {
			t.Fatalf("%q: %+v, rendered and parsed again %+v", src, *rules, *again)
		}
	})
}
