package server

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/telemetry"
)

// serverMetrics are the server's own metrics (website/metrics.md lists them). Counters
// and histograms are updated where things happen, each a single atomic operation;
// what the replicated state already knows (agents and nodes by status, the outbox) is
// read from it when scraped instead, so no hot path pays for it.
type serverMetrics struct {
	reg  *telemetry.Registry
	http *telemetry.HTTPMetrics
	rpc  *telemetry.RPCMetrics

	heartbeats prometheus.Counter
	// derived holds a counter per event type, made once: the event hook runs inside
	// Raft's Apply and only looks one up.
	derived       map[events.Type]prometheus.Counter
	nodeRestarts  prometheus.Counter
	shipped       prometheus.Counter
	storeWrite    prometheus.Histogram
	storeFailures prometheus.Counter
	storeFaults   prometheus.Counter
	ask           prometheus.Histogram
	// sent is the last seq the shipper stored, ahead of the replicated shipped seq
	// until its acknowledgement commits (shipper.go).
	sent atomic.Uint64
}

func newServerMetrics(s *Server) *serverMetrics {
	reg := telemetry.New()
	counter := func(sub, name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: sub, Name: name, Help: help})
	}
	m := &serverMetrics{
		reg:        reg,
		http:       telemetry.NewHTTPMetrics(reg),
		rpc:        telemetry.NewRPCMetrics(reg),
		heartbeats: counter("agent", "heartbeats_received_total", "Heartbeats this server received from agents (the leader receives them all)."),
		nodeRestarts: counter("node", "restarts_total",
			"Node restarts applied to the replicated state since this server started (each server applies them all)."),
		shipped:       counter("events", "shipped_total", "Events this server stored in the event stores while it led (an event stored in two stores counts twice)."),
		storeFailures: counter("shipper", "store_failures_total", "Batches of events an event store did not take (they are sent again)."),
		storeFaults: counter("shipper", "store_faults_total",
			"Faults this server found in event stores while it led: lost data, garbage, other content under an event's ID, down for too long."),
		storeWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: telemetry.Namespace, Subsystem: "shipper", Name: "store_write_duration_seconds",
			Help:    "Time for the event store to take one batch of events (LearnBatch), successful or not.",
			Buckets: telemetry.LatencyBuckets,
		}),
		ask: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: telemetry.Namespace, Subsystem: "ask", Name: "duration_seconds",
			Help:    "Time to answer a question (POST /v1/ask) on the server that answered it.",
			Buckets: telemetry.LatencyBuckets,
		}),
		derived: map[events.Type]prometheus.Counter{},
	}
	derived := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "events", Name: "derived_total",
		Help: "Events derived from the replicated log since this server started, by type (each server derives them all).",
	}, []string{"type"})
	for _, t := range events.Types {
		m.derived[t] = derived.WithLabelValues(string(t))
	}
	reg.Register(m.heartbeats, m.nodeRestarts, m.shipped, m.storeFailures, m.storeFaults, m.storeWrite, m.ask, derived, &stateCollector{s: s})
	return m
}

// eventsDerived counts events as the FSM derives them; it runs inside Apply.
func (m *serverMetrics) eventsDerived(evs []*events.Event) {
	for _, e := range evs {
		if c, ok := m.derived[e.Type]; ok {
			c.Inc()
		}
		if e.Type == events.NodeRestarted {
			m.nodeRestarts.Inc()
		}
	}
}

// stateCollector reads the gauges that the replicated state holds when scraped.
type stateCollector struct{ s *Server }

var (
	descAgents = prometheus.NewDesc("grid_agents", "Registered agents by status, in this server's state.", []string{"status"}, nil)
	descNodes  = prometheus.NewDesc("grid_nodes", "Storage nodes by status, in this server's state.", []string{"status"}, nil)
	descOutbox = prometheus.NewDesc("grid_events_outbox",
		"Events derived and not yet acknowledged as stored: they wait in the outbox of every server.", nil, nil)
	descLastSeq   = prometheus.NewDesc("grid_events_last_seq", "Seq of the last event derived.", nil, nil)
	descLagEvents = prometheus.NewDesc("grid_shipper_lag_events",
		"Events derived that the event store has not stored yet, as this server knows.", nil, nil)
	descLagSeconds = prometheus.NewDesc("grid_shipper_lag_seconds",
		"Age of the oldest event the event store has not stored yet; 0 when it has them all.", nil, nil)
	descLeader = prometheus.NewDesc("grid_server_leader", "1 while this server is the Raft leader, else 0.", nil, nil)
	// Raft's term goes up by one with each election any server starts: a term that
	// moves while the leader stays is a grid holding needless elections.
	descRaftTerm = prometheus.NewDesc("grid_raft_term",
		"The Raft term this server is in; it grows with every election started.", nil, nil)
	descRaftApplied = prometheus.NewDesc("grid_raft_applied_index",
		"Index of the last Raft log entry applied to this server's state.", nil, nil)
	// Each event store's replicated cursor, by store name (its address, or node:ID).
	descStoreAcked = prometheus.NewDesc("grid_event_store_acked_seq",
		"Seq up to which the event store holds every event, as this server's state records it.", []string{"store"}, nil)
	descStoreLag = prometheus.NewDesc("grid_event_store_lag_events",
		"Events derived that the event store does not hold yet (last seq - acked seq).", []string{"store"}, nil)
	descStoreFaulty = prometheus.NewDesc("grid_event_store_faulty",
		"1 while the event store is faulty (it answered garbage, or holds other content under an event's ID), else 0.", []string{"store"}, nil)
	descStoreHolds = prometheus.NewDesc("grid_event_store_holds_outbox",
		"1 while the outbox keeps events until the event store has them (it is complete, trusted and not released), else 0.", []string{"store"}, nil)
	// Only the leader's autopilot judges the servers: the others do not report these.
	descAutopilotHealthy = prometheus.NewDesc("grid_autopilot_healthy",
		"On the leader: 1 while autopilot judges every server healthy, else 0.", nil, nil)
	descAutopilotTolerance = prometheus.NewDesc("grid_autopilot_failure_tolerance",
		"On the leader: how many voters may fail with the others keeping a quorum, as autopilot judges them.", nil, nil)
)

var (
	agentStatuses = []fsm.AgentStatus{fsm.AgentHealthy, fsm.AgentDegraded, fsm.AgentOffline}
	nodeStatuses  = []fsm.NodeStatus{fsm.NodeStatusPending, fsm.NodeStatusRunning, fsm.NodeStatusRestarting,
		fsm.NodeStatusStopping, fsm.NodeStatusStopped, fsm.NodeStatusFailed}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgents, descNodes, descOutbox, descLastSeq, descLagEvents, descLagSeconds,
		descLeader, descRaftTerm, descRaftApplied, descAutopilotHealthy, descAutopilotTolerance,
		descStoreAcked, descStoreLag, descStoreFaulty, descStoreHolds} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	if s.fsm == nil || s.raft == nil {
		return // scraped while starting
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	leader := 0.0
	if s.IsLeader() {
		leader = 1
	}
	gauge(descLeader, leader)
	gauge(descRaftTerm, float64(s.raft.CurrentTerm()))
	gauge(descRaftApplied, float64(s.raft.AppliedIndex()))
	if st := s.autopilot.GetState(); leader == 1 && st != nil && len(st.Servers) > 0 {
		healthy := 0.0
		if st.Healthy {
			healthy = 1
		}
		gauge(descAutopilotHealthy, healthy)
		gauge(descAutopilotTolerance, float64(st.FailureTolerance))
	}
	state := s.fsm.State()
	if agents, err := state.Agents(); err == nil {
		// Every status is reported, 0 included, so that a dashboard sees the series
		// before the first agent degrades.
		count := map[fsm.AgentStatus]int{}
		for _, a := range agents {
			count[a.Status]++
		}
		for _, st := range agentStatuses {
			gauge(descAgents, float64(count[st]), string(st))
		}
	}
	if nodes, err := state.Nodes(""); err == nil {
		count := map[fsm.NodeStatus]int{}
		for _, n := range nodes {
			count[n.Status]++
		}
		for _, st := range nodeStatuses {
			gauge(descNodes, float64(count[st]), string(st))
		}
	}
	meta, err := state.EventMeta()
	if err != nil {
		return
	}
	gauge(descOutbox, float64(meta.LastSeq-meta.ShippedSeq))
	gauge(descLastSeq, float64(meta.LastSeq))
	stored := max(meta.ShippedSeq, min(s.metrics.sent.Load(), meta.LastSeq))
	gauge(descLagEvents, float64(meta.LastSeq-stored))
	lag := 0.0
	if meta.LastSeq > stored {
		if evs, err := state.Outbox(stored, 1); err == nil && len(evs) > 0 {
			lag = max(time.Since(evs[0].Timestamp).Seconds(), 0)
		}
	}
	gauge(descLagSeconds, lag)
	for _, c := range meta.Stores {
		gauge(descStoreAcked, float64(c.Acked), c.Key())
		gauge(descStoreLag, float64(meta.LastSeq-min(c.Acked, meta.LastSeq)), c.Key())
		gauge(descStoreFaulty, bool01(c.Faulty), c.Key())
		gauge(descStoreHolds, bool01(c.Complete(meta.ShippedSeq) && !c.Released), c.Key())
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
