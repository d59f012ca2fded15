package command

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sutragrid/grid/api"
)

// StatusCommand is `grid status`: the cluster at a glance.
type StatusCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *StatusCommand) Synopsis() string {
	return "Show the cluster at a glance: leader, agents, nodes, events"
}

// Help implements cli.Command.
func (c *StatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid status [options]

  Show the cluster at a glance, as the leader sees it: which server leads and
  how many servers there are, the cluster's health, the agents by health, the
  storage nodes by status, and the event pipeline.

  Every change in the fleet becomes an event, numbered 1, 2, 3, ... The
  leader ships every event to every event store; until the stores have them
  they wait in the servers' replicated outbox, so none is lost while a store
  is down. The summary shows each event store: its state (in-sync,
  catching-up while it is backfilled from another store, down, or faulty when
  it answered wrong), how much of the history it holds, and its last fault;
  then how many events were shipped of how many there are, how many wait,
  when the leader last shipped some, and its last error, if shipping fails.

  With -json the output is an object with the fields leader (name, id,
  address), servers, agents (total, healthy, degraded, offline), nodes (total,
  pending, running, restarting, stopping, stopped, failed, lost),
  cluster_health, and events (last_seq, shipped_seq, waiting, event_store,
  store_reachable, last_error, last_shipped, and stores: each one's name,
  address, node, state, acked_seq, lag, holds_outbox, released, fault,
  fault_at, lost_from, lost_to, backfill_from, last_error, down_since,
  last_shipped).
` + clientHelp)
}

// Run implements cli.Command.
func (c *StatusCommand) Run(args []string) int {
	const name = "status"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	return show(&c.Meta, "get status", (*api.Client).Status, c.printStatus)
}

// printStatus writes the summary, one "Key = value" line each.
func (c *StatusCommand) printStatus(st *api.Status) {
	ev := st.Events
	lines := [][2]string{
		{"Leader", formatLeader(st.Leader)},
		{"Servers", strconv.Itoa(st.Servers)},
		{"Cluster Health", formatClusterHealth(st.ClusterHealth)},
		{"Agents", formatCounts(st.Agents.Total, true, []statusCount{
			{"healthy", st.Agents.Healthy}, {"degraded", st.Agents.Degraded}, {"offline", st.Agents.Offline}})},
		{"Nodes", formatCounts(st.Nodes.Total, false, []statusCount{
			{"pending", st.Nodes.Pending}, {"running", st.Nodes.Running}, {"restarting", st.Nodes.Restarting},
			{"stopping", st.Nodes.Stopping}, {"stopped", st.Nodes.Stopped}, {"failed", st.Nodes.Failed},
			{"lost", st.Nodes.Lost}})},
	}
	lines = append(lines, c.storeLines(ev)...)
	lines = append(lines, [][2]string{
		{"Events Shipped", fmt.Sprintf("%d of %d", ev.ShippedSeq, ev.LastSeq)},
		{"Events Waiting", waiting(ev)},
		{"Last Shipped", formatTime(c.now(), ev.LastShipped)},
		{"Last Error", orDash(ev.LastError)},
	}...)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t= %s\n", l[0], l[1])
	}
	tw.Flush()
	c.Ui.Output(strings.TrimRight(b.String(), "\n"))
}

// storeLines describes the event stores: a count by state, then one line each. A
// server that lists no stores (an older one) gives only their addresses.
func (c *StatusCommand) storeLines(ev api.StatusEvents) [][2]string {
	if len(ev.Stores) == 0 {
		store := "none (events wait in the outbox)"
		if ev.EventStore != "" {
			store = ev.EventStore + " (unreachable)"
			if ev.StoreReachable {
				store = ev.EventStore + " (reachable)"
			}
		}
		return [][2]string{{"Event Store", store}}
	}
	count := map[string]int{}
	for _, st := range ev.Stores {
		count[st.State]++
	}
	var states []statusCount
	for _, s := range []string{api.StoreInSync, api.StoreCatchingUp, api.StoreDown, api.StoreFaulty} {
		if count[s] > 0 {
			states = append(states, statusCount{s, count[s]})
		}
	}
	lines := [][2]string{{"Event Stores", formatCounts(len(ev.Stores), false, states)}}
	for _, st := range ev.Stores {
		lines = append(lines, [2]string{"  " + st.Name, c.describeStore(st, ev.LastSeq)})
	}
	return lines
}

// describeStore is one store's line: its state, how much of the history it holds,
// and what is wrong with it, if anything.
func (c *StatusCommand) describeStore(st api.EventStoreStatus, last uint64) string {
	parts := []string{st.State}
	if st.BackfillFrom != "" {
		parts[0] += " from " + st.BackfillFrom
	}
	parts = append(parts, fmt.Sprintf("holds seq %d of %d", st.AckedSeq, last))
	if st.Address != "" && st.Address != st.Name {
		parts = append(parts, "at "+st.Address)
	}
	if st.Released {
		parts = append(parts, "released from the outbox")
	}
	if st.LostFrom > 0 {
		parts = append(parts, fmt.Sprintf("lost %d-%d", st.LostFrom, st.LostTo))
	}
	if !st.DownSince.IsZero() {
		parts = append(parts, "down since "+formatTime(c.now(), st.DownSince))
	}
	if st.LastError != "" {
		parts = append(parts, "error: "+st.LastError)
	}
	if st.Fault != "" {
		parts = append(parts, "last fault: "+st.Fault)
	}
	return strings.Join(parts, ", ")
}

// formatLeader is "name (address)", or "none" while there is no leader.
func formatLeader(l api.StatusLeader) string {
	switch {
	case l.Name != "" && l.Address != "":
		return l.Name + " (" + l.Address + ")"
	case l.Name != "":
		return l.Name
	case l.Address != "":
		return l.Address
	}
	return "none"
}

// formatClusterHealth is "healthy", "degraded" or "critical"; "no agents" while no
// agent is registered, since the health is the agents'.
func formatClusterHealth(h string) string {
	if h == "" {
		return "no agents"
	}
	return strings.TrimPrefix(h, "cluster_")
}

// statusCount is how many agents or nodes have one status.
type statusCount struct {
	status string
	n      int
}

// formatCounts is "3 total: 2 healthy, 1 offline"; with all set, zero counts are
// shown too. Nothing follows a total of 0.
func formatCounts(total int, all bool, counts []statusCount) string {
	if total == 0 {
		return "0"
	}
	var parts []string
	for _, c := range counts {
		if c.n > 0 || all {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.status))
		}
	}
	return fmt.Sprintf("%d total: %s", total, strings.Join(parts, ", "))
}

// waiting renders the events waiting in the outbox, flagging an outbox over its bound.
func waiting(ev api.StatusEvents) string {
	s := strconv.FormatUint(ev.Waiting, 10)
	if ev.OverLimit {
		s += fmt.Sprintf(" (over the outbox bound of %d: is the event store down?)", ev.OutboxLimit)
	}
	return s
}
