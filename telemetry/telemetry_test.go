package telemetry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// TestGoMetricsReachEveryOpenRegistry checks the bridge: what the libraries emit
// through go-metrics' global reaches each open Registry, and a closed one no more.
func TestGoMetricsReachEveryOpenRegistry(t *testing.T) {
	a, b := New(), New()
	defer a.Close()
	gometrics.IncrCounter([]string{"bridge", "test"}, 2)
	b.Close()
	gometrics.IncrCounter([]string{"bridge", "test"}, 3)
	tests := []struct {
		name string
		reg  *Registry
		want float64
	}{
		{"open", a, 5},
		{"closed after the first", b, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := counterValue(t, tc.reg, "bridge_test"); got != tc.want {
				t.Errorf("bridge_test = %v, want %v", got, tc.want)
			}
		})
	}
}

func counterValue(t *testing.T, r *Registry, name string) float64 {
	t.Helper()
	fams, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// TestHandlerFormats checks both formats of the handler, and that a summary with no
// observations (NaN quantiles) is valid JSON, with null values.
func TestHandlerFormats(t *testing.T) {
	r := New()
	defer r.Close()
	r.Register(prometheus.NewSummary(prometheus.SummaryOpts{Name: "empty_summary", Help: "h", Objectives: map[float64]float64{0.5: 0.05}}))
	h := NewHTTPMetrics(r)
	h.Wrap("GET /x", func(http.ResponseWriter, *http.Request) {})(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	handler := r.Handler(hclog.NewNullLogger())
	tests := []struct {
		query    string
		code     int
		contains string
	}{
		{"", http.StatusOK, `"name": "grid_http_request_duration_seconds"`},
		{"?format=prometheus", http.StatusOK, `grid_http_request_duration_seconds_count{route="GET /x"} 1`},
		{"?format=yaml", http.StatusBadRequest, "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			w := httptest.NewRecorder()
			handler(w, httptest.NewRequest("GET", "/v1/metrics"+tc.query, nil))
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.contains) {
				t.Fatalf("%d %s, want %d and %q", w.Code, w.Body.String(), tc.code, tc.contains)
			}
		})
	}
	w := httptest.NewRecorder()
	handler(w, httptest.NewRequest("GET", "/v1/metrics", nil))
	var fams []Family
	if err := json.Unmarshal(w.Body.Bytes(), &fams); err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.Name == "empty_summary" {
			if q := f.Samples[0].Quantiles; len(q) != 1 || q[0].Value != nil {
				t.Errorf("quantiles of an empty summary: %+v, want one null", q)
			}
			return
		}
	}
	t.Error("empty_summary missing")
}
