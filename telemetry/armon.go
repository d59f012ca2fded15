package telemetry

import (
	armon "github.com/armon/go-metrics"
	gometrics "github.com/hashicorp/go-metrics"
)

// armonBridge passes on what raft-boltdb emits. It imports go-metrics' compat
// package, which (without the hashicorpmetrics build tag) is armon/go-metrics, a
// global of its own: the Raft log store's metrics (raft_boltdb_…) would otherwise
// never reach a registry.
type armonBridge struct{ f *fanout }

func labels(ls []armon.Label) []gometrics.Label {
	out := make([]gometrics.Label, len(ls))
	for i, l := range ls {
		out[i] = gometrics.Label{Name: l.Name, Value: l.Value}
	}
	return out
}

func (b armonBridge) SetGauge(key []string, val float32) { b.f.SetGauge(key, val) }

func (b armonBridge) SetGaugeWithLabels(key []string, val float32, ls []armon.Label) {
	b.f.SetGaugeWithLabels(key, val, labels(ls))
}

func (b armonBridge) EmitKey(key []string, val float32) { b.f.EmitKey(key, val) }

func (b armonBridge) IncrCounter(key []string, val float32) { b.f.IncrCounter(key, val) }

func (b armonBridge) IncrCounterWithLabels(key []string, val float32, ls []armon.Label) {
	b.f.IncrCounterWithLabels(key, val, labels(ls))
}

func (b armonBridge) AddSample(key []string, val float32) { b.f.AddSample(key, val) }

func (b armonBridge) AddSampleWithLabels(key []string, val float32, ls []armon.Label) {
	b.f.AddSampleWithLabels(key, val, labels(ls))
}
