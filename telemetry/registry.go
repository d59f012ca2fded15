package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	armon "github.com/armon/go-metrics"
	gometrics "github.com/hashicorp/go-metrics"
	gmprometheus "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric Grid defines itself. The libraries' metrics keep
// their own names (raft_…, memberlist_…, serf_…).
const Namespace = "grid"

// Registry holds one process's metrics. New makes it; Close detaches it from the
// go-metrics bridge.
type Registry struct {
	reg  *prometheus.Registry
	sink *gmprometheus.PrometheusSink
}

// New returns a Registry with the Go runtime's and the process's collectors, and a
// sink that receives what the libraries emit through go-metrics.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// No expiration: a Raft gauge that stops changing (a follower's commit index
	// while nothing is written) keeps its last value rather than vanishing.
	sink, err := gmprometheus.NewPrometheusSinkFrom(gmprometheus.PrometheusOpts{Registerer: reg, Name: "grid_gometrics_bridge"})
	if err != nil {
		// Only a name clash in a registry made just above can fail this.
		panic(err)
	}
	r := &Registry{reg: reg, sink: sink}
	bridge.add(sink)
	return r
}

// Register adds collectors to the registry; a clash of names is a programming error.
func (r *Registry) Register(cs ...prometheus.Collector) {
	r.reg.MustRegister(cs...)
}

// Gatherer is what the registry collects, for tests and handlers.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Close stops the libraries' metrics from reaching this registry.
func (r *Registry) Close() { bridge.remove(r.sink) }

// bridge is the go-metrics sink of the whole process. hashicorp/raft, memberlist and
// serf write to go-metrics' one global instance (raft-boltdb to armon/go-metrics', see
// armon.go) and offer no per-instance sink, so a process has to install one global
// sink; it passes every measurement on to the sink of each open Registry. A real process has one server or agent, so its
// registry sees its own Raft and gossip; tests that run several in one process see
// all of them in each.
var bridge fanout

type fanout struct {
	once  sync.Once
	mu    sync.Mutex                             // serializes add and remove
	sinks atomic.Pointer[[]gometrics.MetricSink] // read on every measurement without a lock
}

func (f *fanout) add(s gometrics.MetricSink) {
	f.once.Do(func() {
		cfg := gometrics.DefaultConfig("")
		// Names stay as the libraries give them: no hostname prefix, and no runtime
		// poller (the Go collector covers the runtime).
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false
		cfg.TimerGranularity = time.Millisecond
		_, _ = gometrics.NewGlobal(cfg, f)
		acfg := armon.DefaultConfig("")
		acfg.EnableHostname = false
		acfg.EnableRuntimeMetrics = false
		_, _ = armon.NewGlobal(acfg, armonBridge{f})
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	var next []gometrics.MetricSink
	if cur := f.sinks.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	f.sinks.Store(&next)
}

func (f *fanout) remove(s gometrics.MetricSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.sinks.Load()
	if cur == nil {
		return
	}
	next := make([]gometrics.MetricSink, 0, len(*cur))
	for _, x := range *cur {
		if x != s {
			next = append(next, x)
		}
	}
	f.sinks.Store(&next)
}

func (f *fanout) each(fn func(gometrics.MetricSink)) {
	if cur := f.sinks.Load(); cur != nil {
		for _, s := range *cur {
			fn(s)
		}
	}
}

func (f *fanout) SetGauge(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.SetGauge(key, val) })
}

func (f *fanout) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.SetGaugeWithLabels(key, val, labels) })
}

func (f *fanout) EmitKey(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.EmitKey(key, val) })
}

func (f *fanout) IncrCounter(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.IncrCounter(key, val) })
}

func (f *fanout) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.IncrCounterWithLabels(key, val, labels) })
}

func (f *fanout) AddSample(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.AddSample(key, val) })
}

func (f *fanout) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.AddSampleWithLabels(key, val, labels) })
}
