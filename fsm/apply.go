package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/sutragrid/grid/events"
)

// applyCtx carries one command through its application: the write transaction, the
// log index and envelope, and the events it derives. Events are derived here, from
// the command and the state it meets, so every server derives the same events with
// the same sequence numbers.
type applyCtx struct {
	txn   *memdb.Txn
	index uint64
	env   Envelope
	meta  EventMeta
	// metaDirty says meta changed and must be written back.
	metaDirty bool
	// emitted holds the events derived so far, in seq order.
	emitted []*events.Event
	// agentsChanged asks finish to re-evaluate the cluster's health.
	agentsChanged string
}

func newApplyCtx(txn *memdb.Txn, index uint64, env Envelope) (*applyCtx, error) {
	x := &applyCtx{txn: txn, index: index, env: env}
	raw, err := txn.First(tableMeta, "id", metaEvents)
	if err != nil {
		return nil, err
	}
	if m, ok := raw.(*EventMeta); ok {
		x.meta = *m
	} else {
		x.meta = EventMeta{ID: metaEvents}
	}
	return x, nil
}

// apply dispatches the command. Each handler validates everything it needs before its
// first write, so an error never leaves a partial change behind (and the transaction
// is aborted in any case).
func (x *applyCtx) apply() error {
	switch c := x.env.Command.(type) {
	case *RegisterAgent:
		return x.registerAgent(c)
	case *DeregisterAgent:
		return x.deregisterAgent(c)
	case *SetAgentStatus:
		return x.setAgentStatus(c)
	case *SampleHeartbeat:
		return x.sampleHeartbeat(c)
	case *SpawnNode:
		return x.spawnNode(c)
	case *EventsShipped:
		return x.eventsShipped(c)
	case *StrayStopped:
		return x.strayStopped(c)
	case *AutopilotSetConfig:
		return x.autopilotSetConfig(c)
	default:
		if ok, err := x.applyACL(c); ok {
			return err
		}
		if ok, err := x.applyEventStore(c); ok {
			return err
		}
		return x.nodeChange()
	}
}

// emit assigns e the next seq and the command's time, describes it, and queues it in
// the outbox. It returns the seq, for events that later ones will name as their cause.
func (x *applyCtx) emit(e *events.Event) uint64 {
	x.meta.LastSeq++
	x.metaDirty = true
	e.Seq = x.meta.LastSeq
	e.Timestamp = x.meta.nextTime(x.env.Time)
	e.Description = events.Describe(e)
	x.emitted = append(x.emitted, e)
	return e.Seq
}

// finish derives the cluster's health events, then writes the outbox and the event
// counters.
func (x *applyCtx) finish() error {
	if x.agentsChanged != "" {
		if err := x.clusterHealth(x.agentsChanged); err != nil {
			return err
		}
	}
	for _, e := range x.emitted {
		if err := x.txn.Insert(tableOutbox, e); err != nil {
			return err
		}
	}
	if len(x.emitted) > 0 {
		d, err := chainEvents(x.meta.Digest, x.emitted)
		if err != nil {
			return err
		}
		x.meta.Digest = d
	}
	if !x.metaDirty {
		return nil
	}
	m := x.meta
	return x.txn.Insert(tableMeta, &m)
}

// clusterHealth emits a cluster event when the health derived from the agents'
// statuses changed: critical when no agent is healthy, degraded when some are not,
// healthy when all are. With no agents at all there is no health to speak of.
func (x *applyCtx) clusterHealth(reason string) error {
	typ, err := x.healthType()
	if err != nil || typ == "" || string(typ) == x.meta.ClusterHealth {
		return err
	}
	agents, err := x.txn.Get(tableAgents, "id")
	if err != nil {
		return err
	}
	e := &events.Event{Type: typ, Reason: reason}
	for raw := agents.Next(); raw != nil; raw = agents.Next() {
		e.TotalAgents++
		switch raw.(*Agent).Status {
		case AgentHealthy:
			e.HealthyAgents++
		case AgentDegraded:
			e.DegradedAgents++
		case AgentOffline:
			e.OfflineAgents++
		}
	}
	x.meta.ClusterHealth, x.metaDirty = string(typ), true
	x.emit(e)
	return nil
}

// healthType is the cluster's health ("" without agents), from which statuses its
// agents have: a look-up in the status index per status, where counting the agents
// would read every one of them each time one registers (SetAgentStatus takes valid
// statuses only, so every agent has one of the three).
func (x *applyCtx) healthType() (events.Type, error) {
	var has [3]bool
	for i, st := range []AgentStatus{AgentHealthy, AgentDegraded, AgentOffline} {
		raw, err := x.txn.First(tableAgents, "status", string(st))
		if err != nil {
			return "", err
		}
		has[i] = raw != nil
	}
	healthy, unhealthy := has[0], has[1] || has[2]
	switch {
	case !healthy && !unhealthy:
		return "", nil
	case !unhealthy:
		return events.ClusterHealthy, nil
	case !healthy:
		return events.ClusterCritical, nil
	}
	return events.ClusterDegraded, nil
}

func (x *applyCtx) registerAgent(c *RegisterAgent) error {
	raw, err := x.txn.First(tableAgents, "id", c.Name)
	if err != nil {
		return err
	}
	t := x.env.Time
	a := &Agent{
		Name: c.Name, Address: c.Address, Hostname: c.Hostname, Platform: c.Platform,
		Version: c.Version, MaxNodes: c.MaxNodes, StorageRoot: c.StorageRoot,
		ReservedPaths: c.ReservedPaths, ReservedPorts: c.ReservedPorts, Isolation: c.Isolation, Status: AgentHealthy,
		RegisteredAt: t, StatusChangedAt: t, CreateIndex: x.index, ModifyIndex: x.index,
	}
	old, known := raw.(*Agent)
	switch {
	case !known:
		x.emit(&events.Event{Type: events.AgentRegistered, AgentID: c.Name, Hostname: c.Hostname, Platform: c.Platform, Address: c.Address})
		x.agentsChanged = fmt.Sprintf("agent %s registered", c.Name)
	case old.Status != AgentHealthy:
		a.RegisteredAt, a.CreateIndex = old.RegisteredAt, old.CreateIndex
		x.emit(&events.Event{Type: events.AgentRecovered, AgentID: c.Name, Hostname: c.Hostname,
			DowntimeSeconds: seconds(t.Sub(old.downSince()))})
		x.agentsChanged = fmt.Sprintf("agent %s recovered", c.Name)
	default:
		// A healthy agent registering again (it restarted quickly): nothing happened
		// that an operator needs to read about.
		a.RegisteredAt, a.CreateIndex, a.StatusChangedAt = old.RegisteredAt, old.CreateIndex, old.StatusChangedAt
	}
	// A name that registers again is an agent again, no longer a former one.
	if _, err := x.txn.DeleteAll(tableFormerAgents, "id", c.Name); err != nil {
		return err
	}
	return x.txn.Insert(tableAgents, a)
}

func (x *applyCtx) deregisterAgent(c *DeregisterAgent) error {
	raw, err := x.txn.First(tableAgents, "id", c.Name)
	if err != nil {
		return err
	}
	a, ok := raw.(*Agent)
	if !ok {
		return fmt.Errorf("agent %s: %w", c.Name, ErrNotFound)
	}
	if err := x.txn.Delete(tableAgents, a); err != nil {
		return err
	}
	former := &FormerAgent{Name: a.Name, Hostname: a.Hostname, RegisteredAt: a.RegisteredAt,
		UnregisteredAt: x.env.Time, ModifyIndex: x.index}
	if err := x.txn.Insert(tableFormerAgents, former); err != nil {
		return err
	}
	x.emit(&events.Event{Type: events.AgentUnregistered, AgentID: c.Name})
	x.agentsChanged = fmt.Sprintf("agent %s unregistered", c.Name)
	return nil
}

func (x *applyCtx) setAgentStatus(c *SetAgentStatus) error {
	raw, err := x.txn.First(tableAgents, "id", c.Name)
	if err != nil {
		return err
	}
	old, ok := raw.(*Agent)
	if !ok {
		return fmt.Errorf("agent %s: %w", c.Name, ErrNotFound)
	}
	if old.Status == c.Status {
		return nil
	}
	t := x.env.Time
	e := &events.Event{AgentID: c.Name, Hostname: old.Hostname}
	if !c.LastSeen.IsZero() {
		seen := c.LastSeen.UTC()
		e.LastSeen = &seen
		e.SecondsSinceHeartbeat = seconds(t.Sub(seen))
	}
	switch c.Status {
	case AgentDegraded:
		e.Type = events.AgentDegraded
	case AgentOffline:
		e.Type = events.AgentOffline
	case AgentHealthy:
		e.Type = events.AgentRecovered
		e.DowntimeSeconds = seconds(t.Sub(old.downSince()))
	}
	x.emit(e)
	x.agentsChanged = fmt.Sprintf("agent %s became %s", c.Name, c.Status)
	a := *old
	a.Status, a.StatusChangedAt, a.ModifyIndex = c.Status, t, x.index
	switch {
	case c.Status == AgentHealthy:
		a.LastSeen = time.Time{}
	case old.Status == AgentHealthy:
		// The agent went quiet: remember since when, for the downtime on recovery.
		a.LastSeen = c.LastSeen
		if a.LastSeen.IsZero() {
			a.LastSeen = t
		}
	}
	return x.txn.Insert(tableAgents, &a)
}

// downSince is when an unhealthy agent was last heard from: its downtime counts from
// there, not from its last change of status (degraded, then offline, come later).
func (a *Agent) downSince() time.Time {
	if !a.LastSeen.IsZero() {
		return a.LastSeen
	}
	return a.StatusChangedAt
}

func (x *applyCtx) sampleHeartbeat(c *SampleHeartbeat) error {
	raw, err := x.txn.First(tableAgents, "id", c.Name)
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("agent %s: %w", c.Name, ErrNotFound)
	}
	seen := c.LastSeen.UTC()
	x.emit(&events.Event{Type: events.AgentHeartbeat, AgentID: c.Name, LastSeen: &seen})
	return nil
}

// eventsShipped trims the outbox: the leader's shipper has stored every event up to
// UpTo in the event store.
func (x *applyCtx) eventsShipped(c *EventsShipped) error {
	if c.UpTo > x.meta.LastSeq {
		return rejected("cannot acknowledge seq %d: the last event is %d", c.UpTo, x.meta.LastSeq)
	}
	if c.UpTo <= x.meta.ShippedSeq {
		return nil // a repeated acknowledgement
	}
	it, err := x.txn.Get(tableOutbox, "id")
	if err != nil {
		return err
	}
	var done []*events.Event
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*events.Event)
		if e.Seq > c.UpTo {
			break
		}
		done = append(done, e)
	}
	for _, e := range done {
		if err := x.txn.Delete(tableOutbox, e); err != nil {
			return err
		}
	}
	x.meta.ShippedSeq, x.metaDirty = c.UpTo, true
	return nil
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
