package command

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// EventCommand is `grid event`: the parent of the commands that read the cluster's
// history of events.
type EventCommand struct{}

// Synopsis implements cli.Command.
func (c *EventCommand) Synopsis() string {
	return "List, show and follow the cluster's events"
}

// Help implements cli.Command.
func (c *EventCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid event <subcommand> [options] [args]

  Read the history of a Grid cluster. Every change in the fleet becomes an
  event: an agent registered, went offline or recovered; a storage node was
  spawned, crashed, restarted or stopped; the cluster's health changed. Each
  event has a sequence number (seq), 1, 2, 3, ... without gaps, a type, a
  time, the agent and node it concerns, a one-line description, and, when
  another event caused it, that event's seq.

  The leader ships events to the event store. Until the store has them they
  wait in the servers' replicated outbox, and these commands read them from
  there, so the history is complete even while the store is down.

Subcommands:

  count   Count events, grouped by type, agent or node and by time
  list    List events, filtered by agent, node, type, severity and time
  show    Show one event, what caused it and what it caused
  tail    Follow events as they happen

  What happened on agent-001 in the last hour:

      $ grid event list -agent=agent-001 -since=1h

  Why did event 42 happen, and what followed:

      $ grid event show 42

  Run 'grid event <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *EventCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *EventCommand) Run(args []string) int { return cli.RunResultHelp }

// eventTypeWidth is the length of the longest event type, agent_unregistered.
const eventTypeWidth = 18

// formatEventLine is one event on one line: time, seq, type and description.
func formatEventLine(e *api.Event) string {
	desc := e.Description
	if desc == "" {
		desc = events.Describe(e)
	}
	return fmt.Sprintf("%s  %6d  %-*s  %s", e.Timestamp.Format(time.RFC3339), e.Seq, eventTypeWidth, e.Type, desc)
}

// eventJSON is an event as the event commands print it with -json: the event's own
// fields, with agent_id, node_id and caused_by always present ("" and null when the
// event has none), and the common fields first.
type eventJSON struct {
	Seq         uint64      `json:"seq"`
	Type        events.Type `json:"type"`
	Timestamp   time.Time   `json:"timestamp"`
	AgentID     string      `json:"agent_id"`
	NodeID      string      `json:"node_id"`
	CausedBy    *uint64     `json:"caused_by"`
	Description string      `json:"description"`
	*api.Event
}

func toEventJSON(e *api.Event) eventJSON {
	out := eventJSON{Seq: e.Seq, Type: e.Type, Timestamp: e.Timestamp, AgentID: e.AgentID, NodeID: e.NodeID,
		Description: e.Description, Event: e}
	if e.CausedBy != 0 {
		cb := e.CausedBy
		out.CausedBy = &cb
	}
	return out
}

func toEventsJSON(evs []api.Event) []eventJSON {
	out := make([]eventJSON, len(evs))
	for i := range evs {
		out[i] = toEventJSON(&evs[i])
	}
	return out
}

// warnPartial says on stderr that an answer may lack events, and why.
func (m *Meta) warnPartial(reason string) {
	if reason != "" {
		m.Ui.Error("Warning: the answer may be incomplete: " + reason)
	}
}

// parseEventTimeFlag checks a -since or -until value: an RFC 3339 time or a
// positive duration. The value is sent as it is; the server resolves durations.
func parseEventTimeFlag(name, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return nil
	}
	return fmt.Errorf("-%s must be an RFC 3339 time (2024-05-01T12:00:00Z) or a duration such as 1h, not %q", name, v)
}

// eventFields lists the fields of e that apply to it, as label and value, for
// `grid event show`.
func eventFields(now time.Time, e *api.Event) [][2]string {
	out := [][2]string{
		{"Seq", strconv.FormatUint(e.Seq, 10)},
		{"Type", string(e.Type)},
		{"Severity", string(e.Severity())},
		{"Time", formatTime(now, e.Timestamp)},
		{"Description", e.Description},
	}
	add := func(label, v string) {
		if v != "" {
			out = append(out, [2]string{label, v})
		}
	}
	num := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	secs := func(f float64) string {
		if f == 0 {
			return ""
		}
		return strconv.FormatFloat(f, 'f', -1, 64) + "s"
	}
	add("Agent", e.AgentID)
	add("Node", e.NodeID)
	add("Hostname", e.Hostname)
	add("Platform", e.Platform)
	add("Address", e.Address)
	add("Port", num(e.Port))
	add("Storage Path", e.StoragePath)
	if e.MemoryLimitMB > 0 {
		add("Memory Limit", strconv.Itoa(e.MemoryLimitMB)+" MB")
	}
	if e.CPULimit > 0 {
		add("CPU Limit", formatCores(e.CPULimit))
	}
	add("PID", num(e.PID))
	add("New PID", num(e.NewPID))
	add("Restart Count", num(e.RestartCount))
	if e.ExitCode != nil {
		add("Exit Code", strconv.Itoa(*e.ExitCode))
	}
	add("Signal", e.Signal)
	add("Error", e.Error)
	add("Since Heartbeat", secs(e.SecondsSinceHeartbeat))
	add("Downtime", secs(e.DowntimeSeconds))
	if e.LastSeen != nil {
		add("Last Seen", formatTime(now, *e.LastSeen))
	}
	if e.TotalAgents > 0 {
		add("Agents", fmt.Sprintf("%d total: %d healthy, %d degraded, %d offline",
			e.TotalAgents, e.HealthyAgents, e.DegradedAgents, e.OfflineAgents))
	}
	add("Reason", e.Reason)
	if e.SnapshotIndex != 0 {
		add("Snapshot Index", strconv.FormatUint(e.SnapshotIndex, 10))
	}
	if e.SnapshotTime != nil {
		add("Snapshot Saved", formatTime(now, *e.SnapshotTime))
	}
	if e.CausedBy != 0 {
		add("Caused By", strconv.FormatUint(e.CausedBy, 10))
	}
	return out
}

// formatFields renders "Label = value" lines, aligned.
func formatFields(lines [][2]string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t= %s\n", l[0], l[1])
	}
	tw.Flush()
	return strings.TrimRight(b.String(), "\n")
}
