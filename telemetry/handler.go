package telemetry

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The JSON answer of GET /v1/metrics: every metric family, sorted by name, with its
// samples. Counters and gauges carry value; histograms count, sum and cumulative
// buckets (the last one's le is "+Inf"); summaries count, sum and quantiles. A value
// that is not a finite number, which JSON cannot carry, is null (a quantile of a
// summary with no observations) or left out (a value or a sum).
type (
	// Family is one metric: its name, type (counter, gauge, histogram, summary or
	// untyped), help text, and one sample per set of label values.
	Family struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Help    string   `json:"help"`
		Samples []Sample `json:"samples"`
	}
	// Sample is a Family's value for one set of label values.
	Sample struct {
		Labels    map[string]string `json:"labels"`
		Value     *float64          `json:"value,omitempty"`
		Count     *uint64           `json:"count,omitempty"`
		Sum       *float64          `json:"sum,omitempty"`
		Buckets   []Bucket          `json:"buckets,omitempty"`
		Quantiles []Quantile        `json:"quantiles,omitempty"`
	}
	// Bucket is a histogram bucket: how many observations were at most LE.
	Bucket struct {
		LE    string `json:"le"`
		Count uint64 `json:"count"`
	}
	// Quantile is a summary's estimate of a quantile.
	Quantile struct {
		Quantile float64  `json:"quantile"`
		Value    *float64 `json:"value"`
	}
)

// Handler serves GET /v1/metrics: JSON (the shape above), or the Prometheus text
// format with ?format=prometheus. A family that fails to collect is logged and left
// out; the others are served.
func (r *Registry) Handler(log hclog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		fams, err := r.reg.Gather()
		if err != nil {
			// Gather returns what it could collect alongside the error.
			log.Warn("some metrics could not be collected", "error", err)
		}
		switch format := req.URL.Query().Get("format"); format {
		case "prometheus":
			ct := expfmt.NewFormat(expfmt.TypeTextPlain)
			w.Header().Set("Content-Type", string(ct))
			enc := expfmt.NewEncoder(w, ct)
			for _, f := range fams {
				if err := enc.Encode(f); err != nil {
					log.Debug("writing metrics failed", "error", err)
					return
				}
			}
		case "", "json":
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(ToJSON(fams))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error": fmt.Sprintf("unknown format %q: use format=prometheus, or no format for JSON", format)})
		}
	}
}

// ToJSON turns gathered families into the JSON shape of /v1/metrics.
func ToJSON(fams []*dto.MetricFamily) []Family {
	out := make([]Family, 0, len(fams))
	for _, f := range fams {
		jf := Family{Name: f.GetName(), Help: f.GetHelp(), Type: typeName(f.GetType()), Samples: []Sample{}}
		for _, m := range f.GetMetric() {
			s := Sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.Value = finite(m.Counter.GetValue())
			case m.Gauge != nil:
				s.Value = finite(m.Gauge.GetValue())
			case m.Untyped != nil:
				s.Value = finite(m.Untyped.GetValue())
			case m.Histogram != nil:
				h := m.Histogram
				s.Count, s.Sum = ptr(h.GetSampleCount()), finite(h.GetSampleSum())
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						continue // added below, once
					}
					s.Buckets = append(s.Buckets, Bucket{LE: strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64), Count: b.GetCumulativeCount()})
				}
				s.Buckets = append(s.Buckets, Bucket{LE: "+Inf", Count: h.GetSampleCount()})
			case m.Summary != nil:
				sm := m.Summary
				s.Count, s.Sum = ptr(sm.GetSampleCount()), finite(sm.GetSampleSum())
				for _, q := range sm.GetQuantile() {
					s.Quantiles = append(s.Quantiles, Quantile{Quantile: q.GetQuantile(), Value: finite(q.GetValue())})
				}
			}
			jf.Samples = append(jf.Samples, s)
		}
		out = append(out, jf)
	}
	return out
}

func typeName(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram"
	case dto.MetricType_SUMMARY:
		return "summary"
	}
	return "untyped"
}

// finite is v, or nil for NaN and the infinities, which JSON cannot carry.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ptr[T any](v T) *T { return &v }
