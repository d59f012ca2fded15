package ask

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzInterpret holds Interpret to the contract on any input: no panic, a valid
// interpretation, JSON that round-trips, and the same answer twice.
func FuzzInterpret(f *testing.F) {
	ex, _ := loadExamples(f)
	for _, e := range ex.Examples {
		var q string
		if err := json.Unmarshal(e["q"], &q); err == nil {
			f.Add(q, thursday.Unix())
		}
	}
	for _, q := range []string{
		"", "events between 11pm and 1am yesterday", "from Dec 30 to Jan 2", "top 0 nodes",
		"events in the last 100000 years", "since 13pm", "on February 30", "stop", "why",
		"in the 0 minutes before node-2 crashed", "events from 2026-03-04 23:30 to 23:00",
	} {
		f.Add(q, newYear.Unix())
	}
	f.Fuzz(func(t *testing.T, q string, unix int64) {
		// Any instant from 1970 to 9999: time phrases step back from it by years.
		now := time.Unix(unix%253402300799, 0)
		if unix < 0 {
			now = time.Unix(-unix%253402300799, 0)
		}
		in := Interpret(q, now, testNames)
		if err := in.Validate(); err != nil {
			t.Fatalf("Interpret(%q) = %+v: %v", q, in, err)
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var back Interpretation
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("round-tripped %s: %v", b, err)
		}
		if again := Interpret(q, now, testNames); !reflect.DeepEqual(in, again) {
			t.Fatalf("Interpret(%q) is not deterministic:\n%+v\n%+v", q, in, again)
		}
	})
}
