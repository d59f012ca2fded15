package ask

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// BenchmarkInterpret parses the public examples in turn and reports the p99 of a
// single parse, the figure that matters for a chat box: the mean hides outliers.
func BenchmarkInterpret(b *testing.B) {
	ex, known := loadExamples(b)
	var qs []string
	for _, e := range ex.Examples {
		var q string
		if err := json.Unmarshal(e["q"], &q); err != nil {
			b.Fatal(err)
		}
		qs = append(qs, q)
	}
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		Interpret(qs[i%len(qs)], ex.Now, known)
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	p99 := took[len(took)*99/100]
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-µs")
}
