package ask

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// examplesFile is the public examples of the contract, copied from the issue.
type examplesFile struct {
	Now      time.Time `json:"now"`
	Registry struct {
		Agents []string `json:"agents"`
		Nodes  []struct {
			Name  string `json:"name"`
			Agent string `json:"agent"`
		} `json:"nodes"`
	} `json:"registry"`
	Examples []map[string]json.RawMessage `json:"examples"`
}

func loadExamples(t testing.TB) (examplesFile, Names) {
	t.Helper()
	b, err := os.ReadFile("testdata/examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var f examplesFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	n := Names{Agents: f.Registry.Agents}
	for _, nd := range f.Registry.Nodes {
		n.Nodes = append(n.Nodes, Node{Name: nd.Name, Agent: nd.Agent})
	}
	return f, n
}

// TestExamples holds Interpret to every public example. An example checks only
// the fields it gives, each compared as JSON values, so "types": null must be
// null and not an empty list.
func TestExamples(t *testing.T) {
	f, known := loadExamples(t)
	if len(f.Examples) == 0 {
		t.Fatal("no examples")
	}
	for _, ex := range f.Examples {
		var q string
		if err := json.Unmarshal(ex["q"], &q); err != nil {
			t.Fatal(err)
		}
		t.Run(q, func(t *testing.T) {
			in := Interpret(q, f.Now, known)
			if err := in.Validate(); err != nil {
				t.Errorf("invalid interpretation: %v", err)
			}
			if indexed := Interpret(q, f.Now, known.Indexed()); !reflect.DeepEqual(indexed, in) {
				t.Errorf("with the names indexed: %+v, without: %+v", indexed, in)
			}
			got := asFields(t, in)
			for field, want := range ex {
				if field == "q" {
					continue
				}
				g, ok := got[field]
				if !ok {
					t.Errorf("%s: not a field of the interpretation", field)
					continue
				}
				if !jsonEqual(t, g, want) {
					t.Errorf("%s = %s, want %s", field, g, want)
				}
			}
		})
	}
}

func asFields(t testing.TB, in Interpretation) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonEqual(t testing.TB, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
