package gridtest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are the metric families of one scrape, by name.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches url (a /v1/metrics?format=prometheus address) with client (nil:
// http.DefaultClient) and parses it with the Prometheus text parser, as a Prometheus
// server would. A non-200 answer or a parse error is returned.
func Scrape(client *http.Client, url string) (Metrics, error) {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.Timeout = 10 * time.Second
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return fams, nil
}

// MustScrape is Scrape that fails the test on error.
func MustScrape(t testing.TB, client *http.Client, url string) Metrics {
	t.Helper()
	m, err := Scrape(client, url)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Value is the value of the counter, gauge or untyped sample of name whose labels
// include labels (pairs of name and value); for a histogram or a summary, its count.
// ok is false when no sample matches.
func (m Metrics) Value(name string, labels ...string) (v float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Summary != nil:
			return float64(s.Summary.GetSampleCount()), true
		}
	}
	return 0, false
}

// Type is the type of the family name, or "" when the scrape lacks it.
func (m Metrics) Type(name string) string {
	if f := m[name]; f != nil {
		return strings.ToLower(f.GetType().String())
	}
	return ""
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
