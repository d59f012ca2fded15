package command

import (
	"context"
	"fmt"
	"strings"

	"github.com/sutragrid/grid/api"
)

// maxEventListLimit is the most events one listing returns.
const maxEventListLimit = 10000

// EventListCommand is `grid event list`.
type EventListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *EventListCommand) Synopsis() string {
	return "List events, filtered by agent, node, type and time"
}

// Help implements cli.Command.
func (c *EventListCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid event list [options]

  List the cluster's events, newest first: one line each with the event's
  time, seq, type and description. Filters narrow the list; a filter given
  a comma-separated list matches any of its values, and different filters
  must all match.

  Events that the event store does not hold yet are listed from the
  replicated outbox. If the event store cannot be reached, the listing holds
  only those, and a warning on stderr says so.

  With -json the output is a list of event objects, each with the fields seq,
  type, timestamp, agent_id, node_id, caused_by (null if no other event
  caused it) and description, and the fields of its type (such as pid,
  exit_code, error, reason).

List Options:

  -agent=<name>[,<name>...]
    List only the events that concern these agents.

  -node=<id>[,<id>...]
    List only the events that concern these storage nodes, by ID or by name.

  -entity=<name>[,<name>...]
    List only the events of these entities, named as the grid has ever known
    them, unregistered agents and stopped nodes too: an agent (its nodes'
    events included), a storage node (by name or ID), or cluster (the
    cluster_* events). A name the grid has never known is an error, and so
    is a mix that one listing cannot select (the cluster with an agent, or an
    agent with another agent's node): list each apart. Not with -agent or
    -node.

  -type=<type>[,<type>...]
    List only events of these types: agent_registered, agent_heartbeat,
    agent_degraded, agent_offline, agent_recovered, agent_unregistered,
    spawn_requested, spawn_succeeded, spawn_failed, stop_requested,
    stop_succeeded, stop_failed, node_crashed, node_restarted,
    cluster_healthy, cluster_degraded, cluster_critical, cluster_restored.

  -severity=<severity>
    List only events of this severity or more: info, warning, error or
    critical. With -type, only those of its types that are this severe.

  -since=<time>
    List only events at or after this time: an RFC 3339 time such as
    2024-05-01T12:00:00Z, or a duration such as 30m or 2h meaning that long
    ago.

  -until=<time>
    List only events before this time, given as for -since.

  -limit=<n>
    List at most this many events, 1 to 10000. When more match, a note on
    stderr says so. Default: 100.

  -asc
    List the oldest events first.
` + clientHelp)
}

// Run implements cli.Command.
func (c *EventListCommand) Run(args []string) int {
	const name = "event list"
	var (
		f     eventFilterFlags
		limit int
		asc   bool
	)
	fs := c.clientFlags(name)
	f.register(fs)
	fs.IntVar(&limit, "limit", 100, "")
	fs.BoolVar(&asc, "asc", false, "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	types, err := f.check()
	if err != nil {
		return c.usageError(name, err)
	}
	if limit < 1 || limit > maxEventListLimit {
		return c.usageError(name, fmt.Errorf("-limit must be from 1 to %d, not %d", maxEventListLimit, limit))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	list, err := client.Events(ctx, api.EventQuery{
		Agents: splitComma(f.agent), Nodes: splitComma(f.node), Entities: splitComma(f.entity), Types: types,
		Since: f.since, Until: f.until, Limit: limit, Ascending: asc,
	})
	if err != nil {
		return c.fail("list events: %v", err)
	}
	c.warnPartial(list.Partial)
	if c.json {
		return c.printJSON(toEventsJSON(list.Events))
	}
	for i := range list.Events {
		c.Ui.Output(formatEventLine(&list.Events[i]))
	}
	if list.NextPageToken != "" {
		c.progress(fmt.Sprintf("More events match: raise -limit (up to %d) or narrow -since and -until to see them", maxEventListLimit))
	}
	return 0
}

// splitComma splits a comma-separated flag value, dropping empty items.
func splitComma(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
