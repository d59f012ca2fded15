package storage

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sutragrid/grid/telemetry"
)

// nodeMetrics are a storage node's own metrics, served on -metrics-port
// (website/metrics.md lists them). The package knows nothing of the grid: these
// measure the node as any client sees it.
type nodeMetrics struct {
	reg *telemetry.Registry
	rpc *telemetry.RPCMetrics

	writes  prometheus.Histogram
	written *prometheus.CounterVec
	// diskFree and diskReserve are the data dir's filesystem as last read (limits.go);
	// refusedWrites counts writes refused by reason: disk_full, busy.
	diskFree, diskReserve prometheus.Gauge
	refusedWrites         *prometheus.CounterVec
	// The counters of written, looked up once.
	conceptsCreated, conceptsExisting, assocsCreated, assocsExisting prometheus.Counter
}

func newNodeMetrics() *nodeMetrics {
	reg := telemetry.New()
	m := &nodeMetrics{
		reg: reg,
		rpc: telemetry.NewRPCMetrics(reg),
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: telemetry.Namespace, Subsystem: "storage", Name: "write_duration_seconds",
			Help:    "Time to write a batch durably (fsync included), successful or not.",
			Buckets: telemetry.LatencyBuckets,
		}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "storage", Name: "records_written_total",
			Help: "Concepts and associations written, by kind and by whether they were new (created) or already stored (existing).",
		}, []string{"kind", "result"}),
	}
	m.diskFree = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: telemetry.Namespace, Subsystem: "storage", Name: "disk_free_bytes",
		Help: "Free space of the data dir's filesystem, as last read (at most every 500ms while writing).",
	})
	m.diskReserve = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: telemetry.Namespace, Subsystem: "storage", Name: "disk_reserve_bytes",
		Help: "Free space the node keeps (-disk-reserve-mb): at or below it, writes are refused.",
	})
	m.refusedWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "storage", Name: "writes_refused_total",
		Help: "Writes refused with RESOURCE_EXHAUSTED, by reason: disk_full (free space at the reserve), busy (more batches than -max-concurrent-batches and its waiting room).",
	}, []string{"reason"})
	for _, r := range []string{"disk_full", "busy"} {
		m.refusedWrites.WithLabelValues(r)
	}
	m.conceptsCreated = m.written.WithLabelValues("concept", "created")
	m.conceptsExisting = m.written.WithLabelValues("concept", "existing")
	m.assocsCreated = m.written.WithLabelValues("association", "created")
	m.assocsExisting = m.written.WithLabelValues("association", "existing")
	reg.Register(m.writes, m.written, m.diskFree, m.diskReserve, m.refusedWrites)
	return m
}

// write is Store.Write, measured; a service made without metrics (the fuzz test's)
// just writes.
func (m *nodeMetrics) write(store *Store, concepts []Concept, assocs []Association) (WriteResult, error) {
	if m == nil {
		return store.Write(concepts, assocs)
	}
	start := time.Now()
	res, err := store.Write(concepts, assocs)
	m.writes.Observe(time.Since(start).Seconds())
	m.conceptsCreated.Add(float64(res.ConceptsCreated))
	m.conceptsExisting.Add(float64(res.ConceptsExisting))
	m.assocsCreated.Add(float64(res.AssociationsCreated))
	m.assocsExisting.Add(float64(res.AssociationsExisting))
	return res, err
}

// diskChecked records a reading of the data dir's free space.
func (m *nodeMetrics) diskChecked(free, reserve uint64) {
	if m == nil {
		return
	}
	m.diskFree.Set(float64(free))
	m.diskReserve.Set(float64(reserve))
}

// refused counts a write refused for reason.
func (m *nodeMetrics) refused(reason string) {
	if m == nil {
		return
	}
	m.refusedWrites.WithLabelValues(reason).Inc()
}
