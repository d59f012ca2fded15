package ask

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

// TestShape pins the JSON of an interpretation to website/ask.md: exactly its
// fields, lists that are lists, and types null for all types.
func TestShape(t *testing.T) {
	contract := []string{
		"intent", "entities", "entities_kind", "state", "types", "severity", "since", "until",
		"default_window", "order", "group_by", "bucket", "limit", "window", "reason",
	}
	for _, q := range []string{"what happened to agent-001", "List all agents", "why did node-2 crash", "", "stop node-2", "what happened on agent-042"} {
		got := asFields(t, Interpret(q, thursday, testNames))
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Clone(contract)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("%q: fields %v, want %v", q, keys, want)
		}
		for _, list := range []string{"entities", "group_by"} {
			if !strings.HasPrefix(string(got[list]), "[") {
				t.Errorf("%q: %s = %s, want a list", q, list, got[list])
			}
		}
	}
	if got := asFields(t, Interpret("what happened today", thursday, testNames)); string(got["types"]) != "null" {
		t.Errorf("types = %s, want null for all types", got["types"])
	}
}

// TestNames covers resolution against registries unlike the examples': names of
// any shape, any case, nodes by ID, and an empty registry.
func TestNames(t *testing.T) {
	reg := Names{
		Agents: []string{"East-1", "storage-west"},
		Nodes:  []Node{{ID: "n-0001", Name: "cache", Agent: "East-1"}, {ID: "n-0002", Agent: "storage-west"}},
	}
	cases := []struct {
		q        string
		names    Names
		intent   Intent
		entities []string
	}{
		{"what happened to east-1 today", reg, IntentHistory, []string{"East-1"}},
		{"history of STORAGE-WEST", reg, IntentHistory, []string{"storage-west"}},
		{"why did n-0001 crash", reg, IntentCause, []string{"cache"}},
		{"what happened to n-0002", reg, IntentHistory, []string{"n-0002"}},
		{"what happened to cache and east-1", reg, IntentHistory, []string{"cache", "East-1"}},
		{"what happened to agent-001", reg, IntentUnknownEntity, []string{"agent-001"}},
		{"what happened to agent-001", Names{}, IntentUnknownEntity, []string{"agent-001"}},
		{"what happened to node-2 and node-3", testNames, IntentUnknownEntity, []string{"node-3"}},
		{"how's the cluster doing", testNames, IntentState, []string{}},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			in := Interpret(c.q, thursday, c.names)
			if in.Intent != c.intent || !slices.Equal(in.Entities, c.entities) {
				t.Errorf("got %s %q, want %s %q (reason %q)", in.Intent, in.Entities, c.intent, c.entities, in.Reason)
			}
		})
	}
}

// TestNowIsUTC checks that a now in another zone means the same instant, and
// that days are UTC days.
func TestNowIsUTC(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	in := Interpret("events today", thursday.In(tokyo), testNames)
	b, _ := json.Marshal(in)
	if in.Since.Format(time.RFC3339) != "2026-03-05T00:00:00Z" || in.Until.Format(time.RFC3339) != "2026-03-05T09:15:00Z" {
		t.Errorf("got %s", b)
	}
}

// TestValidate shows what the contract forbids, for hand-built interpretations.
func TestValidate(t *testing.T) {
	t0, t1 := thursday, thursday.Add(time.Hour)
	ok := func() Interpretation {
		return Interpretation{Intent: IntentList, Entities: []string{}, GroupBy: []string{}, Order: "desc", Since: &t0, Until: &t1}
	}
	cases := []struct {
		name   string
		mutate func(*Interpretation)
		bad    bool
	}{
		{"valid", func(*Interpretation) {}, false},
		{"empty range", func(in *Interpretation) { in.Until = &t0 }, false},
		{"unknown intent", func(in *Interpretation) { in.Intent = "guess" }, true},
		{"null entities", func(in *Interpretation) { in.Entities = nil }, true},
		{"null group_by", func(in *Interpretation) { in.GroupBy = nil }, true},
		{"empty types", func(in *Interpretation) { in.Types = []events.Type{} }, true},
		{"unknown type", func(in *Interpretation) { in.Types = []events.Type{"node_exploded"} }, true},
		{"repeated type", func(in *Interpretation) { in.Types = []events.Type{events.NodeCrashed, events.NodeCrashed} }, true},
		{"rate of one", func(in *Interpretation) { in.Intent, in.Types = IntentRate, []events.Type{events.SpawnFailed} }, true},
		{"severity info", func(in *Interpretation) { in.Severity = "info" }, true},
		{"backwards", func(in *Interpretation) { in.Since, in.Until = &t1, &t0 }, true},
		{"not UTC", func(in *Interpretation) { x := t0.In(time.FixedZone("X", 3600)); in.Since = &x }, true},
		{"default window unbounded", func(in *Interpretation) { in.DefaultWindow, in.Since = true, nil }, true},
		{"order sideways", func(in *Interpretation) { in.Order = "random" }, true},
		{"group by host", func(in *Interpretation) { in.GroupBy = []string{"host"} }, true},
		{"bucket 1w", func(in *Interpretation) { in.Bucket = "1w" }, true},
		{"limit without top", func(in *Interpretation) { in.Limit = 3 }, true},
		{"top without limit", func(in *Interpretation) { in.Intent = IntentTop }, true},
		{"window not a duration", func(in *Interpretation) { in.Window = "a while" }, true},
		{"refusal without reason", func(in *Interpretation) { in.Intent = IntentUnanswerable }, true},
		{"state unknown", func(in *Interpretation) { in.State = "sleepy" }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ok()
			c.mutate(&in)
			if err := in.Validate(); (err != nil) != c.bad {
				t.Errorf("Validate() = %v, want error: %v", err, c.bad)
			}
		})
	}
}
