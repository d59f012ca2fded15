package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sutragrid/grid/telemetry"
)

// agentMetrics are the agent's own metrics, served with gossip's on the agent's HTTP
// listener (website/metrics.md lists them). The client and the supervisor hold a
// pointer that may be nil (their unit tests make them alone), so each update goes
// through a method that checks.
type agentMetrics struct {
	reg *telemetry.Registry
	rpc *telemetry.RPCMetrics

	heartbeats        prometheus.Counter
	heartbeatFailures prometheus.Counter
	restarts          prometheus.Counter
	oomKills          prometheus.Counter
}

func newAgentMetrics(a *Agent) *agentMetrics {
	reg := telemetry.New()
	counter := func(sub, name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: sub, Name: name, Help: help})
	}
	m := &agentMetrics{
		reg:               reg,
		rpc:               telemetry.NewRPCMetrics(reg),
		heartbeats:        counter("agent", "heartbeats_sent_total", "Heartbeats the servers took from this agent."),
		heartbeatFailures: counter("agent", "heartbeat_failures_total", "Heartbeats that failed (no server answered in time, or it refused)."),
		restarts:          counter("node", "restarts_total", "Storage nodes this agent restarted after a crash."),
		oomKills:          counter("node", "oom_kills_total", "Storage nodes of this agent the kernel killed at their cgroup's memory limit."),
	}
	reg.Register(m.heartbeats, m.heartbeatFailures, m.restarts, m.oomKills, &agentCollector{a: a})
	return m
}

func (m *agentMetrics) heartbeat(err error) {
	switch {
	case m == nil:
	case err == nil:
		m.heartbeats.Inc()
	default:
		m.heartbeatFailures.Inc()
	}
}

func (m *agentMetrics) nodeRestarted() {
	if m != nil {
		m.restarts.Inc()
	}
}

func (m *agentMetrics) nodeOOMKilled() {
	if m != nil {
		m.oomKills.Inc()
	}
}

// agentCollector reads, when scraped, what the agent holds anyway.
type agentCollector struct{ a *Agent }

var (
	descAgentNodes = prometheus.NewDesc("grid_agent_nodes",
		"Storage nodes this agent supervises, by state: running (passed its health check) or starting (starting, or restarting after a crash).",
		[]string{"state"}, nil)
	descReports = prometheus.NewDesc("grid_agent_reports_queued",
		"Node reports waiting to be delivered to the servers.", nil, nil)
	descServers = prometheus.NewDesc("grid_agent_servers_known",
		"Servers this agent knows of through gossip.", nil, nil)
	descRegistered = prometheus.NewDesc("grid_agent_registered",
		"1 while this agent is registered with the servers, else 0.", nil, nil)
	descCgroups = prometheus.NewDesc("grid_agent_cgroup_version",
		"The cgroup version this agent runs its nodes in (2 or 1), 0 when it runs them without cgroups (see grid agent status).", nil, nil)
)

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAgentNodes
	ch <- descReports
	ch <- descServers
	ch <- descRegistered
	ch <- descCgroups
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if a.sup != nil {
		// Counted under the supervisor's lock, which guards the flags; nothing else
		// is done while holding it.
		var running, starting int
		a.sup.mu.Lock()
		for _, n := range a.sup.nodes {
			if n.running {
				running++
			} else if !n.stopping {
				starting++
			}
		}
		a.sup.mu.Unlock()
		gauge(descAgentNodes, float64(running), "running")
		gauge(descAgentNodes, float64(starting), "starting")
		gauge(descCgroups, float64(a.sup.cgroups.Version))
	}
	if a.client != nil {
		gauge(descReports, float64(a.client.queue.len()))
		registered, _, _ := a.client.state()
		v := 0.0
		if registered {
			v = 1
		}
		gauge(descRegistered, v)
	}
	gauge(descServers, float64(len(a.servers.list())))
}
