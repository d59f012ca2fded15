package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// OperatorAutopilotCommand is `grid operator autopilot`.
type OperatorAutopilotCommand struct{}

// Synopsis implements cli.Command.
func (c *OperatorAutopilotCommand) Synopsis() string {
	return "Inspect and tune autopilot: server health, promotion and dead-server cleanup"
}

// Help implements cli.Command.
func (c *OperatorAutopilotCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator autopilot <subcommand> [options]

  Autopilot runs on the leader. It adds a new server to Raft as a non-voter
  and promotes it to voter once it has been healthy for the stabilization
  time; it removes a failed server from Raft once a replacement has joined,
  or after the dead-server cleanup time, never so many that quorum is lost.
  Its configuration is replicated: every leader applies the same.

Subcommands:

  get-config    Show the autopilot configuration
  set-config    Change the autopilot configuration
  health        Show each server's health as autopilot judges it

  Wait longer before promoting new servers:

      $ grid operator autopilot set-config -server-stabilization-time=30s

  Run 'grid operator autopilot <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *OperatorAutopilotCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *OperatorAutopilotCommand) Run(args []string) int { return cli.RunResultHelp }

// OperatorAutopilotGetCommand is `grid operator autopilot get-config`.
type OperatorAutopilotGetCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorAutopilotGetCommand) Synopsis() string {
	return "Show the autopilot configuration"
}

// Help implements cli.Command.
func (c *OperatorAutopilotGetCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator autopilot get-config [options]

  Show the autopilot configuration, as the leader holds it. Until the first
  leader has stored it, the servers' flags are in force, and ModifyIndex is 0.

  With -json the output is an object with the fields cleanup_dead_servers,
  dead_server_cleanup_after, last_contact_threshold, max_trailing_logs,
  min_quorum, server_stabilization_time (durations as strings such as
  "10s"), create_index and modify_index.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorAutopilotGetCommand) Run(args []string) int {
	const name = "operator autopilot get-config"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	return show(&c.Meta, "get the autopilot configuration", (*api.Client).AutopilotConfiguration, c.printConfig)
}

// printConfig writes the configuration as aligned "Name = value" lines, as Consul's
// get-config does.
func (m *Meta) printConfig(conf *api.AutopilotConfiguration) {
	rows := [][]string{
		{"CleanupDeadServers", "=", strconv.FormatBool(conf.CleanupDeadServers)},
		{"DeadServerCleanupAfter", "=", time.Duration(conf.DeadServerCleanupAfter).String()},
		{"LastContactThreshold", "=", time.Duration(conf.LastContactThreshold).String()},
		{"MaxTrailingLogs", "=", strconv.FormatUint(conf.MaxTrailingLogs, 10)},
		{"MinQuorum", "=", strconv.FormatUint(uint64(conf.MinQuorum), 10)},
		{"ServerStabilizationTime", "=", time.Duration(conf.ServerStabilizationTime).String()},
		{"ModifyIndex", "=", strconv.FormatUint(conf.ModifyIndex, 10)},
	}
	m.printTable(nil, rows)
}

// OperatorAutopilotSetCommand is `grid operator autopilot set-config`.
type OperatorAutopilotSetCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorAutopilotSetCommand) Synopsis() string {
	return "Change the autopilot configuration"
}

// Help implements cli.Command.
func (c *OperatorAutopilotSetCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator autopilot set-config [options]

  Change the autopilot configuration. Only the settings given change; the
  others keep their values. The change is written through Raft, so the next
  leader applies it too. It is a check-and-set: if someone else changed the
  configuration between this command's read and its write, nothing is
  written and the command fails; run it again.

  The new configuration is printed as get-config prints it.

Set Config Options:

  -cleanup-dead-servers=<bool>
    Remove failed servers from Raft once a replacement joins, or after
    -dead-server-cleanup-after.

  -dead-server-cleanup-after=<duration>
    How long a server may stay failed before it is removed though no
    replacement joined. 0 waits for a replacement.

  -last-contact-threshold=<duration>
    How long a server may go without hearing from the leader and still count
    as healthy.

  -max-trailing-logs=<count>
    How many log entries a healthy server may lag the leader by.

  -min-quorum=<count>
    The fewest voters dead-server cleanup leaves.

  -server-stabilization-time=<duration>
    How long a new server must stay healthy before it is promoted to voter.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorAutopilotSetCommand) Run(args []string) int {
	const name = "operator autopilot set-config"
	fs := c.clientFlags(name)
	var (
		cleanup                          boolValue
		cleanupAfter, contact, stabilize durationValue
		trailing, minQuorum              uintValue
	)
	fs.Var(&cleanup, "cleanup-dead-servers", "")
	fs.Var(&cleanupAfter, "dead-server-cleanup-after", "")
	fs.Var(&contact, "last-contact-threshold", "")
	fs.Var(&trailing, "max-trailing-logs", "")
	fs.Var(&minQuorum, "min-quorum", "")
	fs.Var(&stabilize, "server-stabilization-time", "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	if !cleanup.set && !cleanupAfter.set && !contact.set && !stabilize.set && !trailing.set && !minQuorum.set {
		return c.usageError(name, errors.New("give at least one setting to change"))
	}
	if contact.set && contact.v <= 0 {
		return c.usageError(name, fmt.Errorf("-last-contact-threshold must be positive, got %s", contact.v))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	conf, err := client.AutopilotConfiguration(ctx)
	if err != nil {
		return c.fail("get the autopilot configuration: %v", err)
	}
	if cleanup.set {
		conf.CleanupDeadServers = cleanup.v
	}
	if cleanupAfter.set {
		conf.DeadServerCleanupAfter = api.Duration(cleanupAfter.v)
	}
	if contact.set {
		conf.LastContactThreshold = api.Duration(contact.v)
	}
	if stabilize.set {
		conf.ServerStabilizationTime = api.Duration(stabilize.v)
	}
	if trailing.set {
		conf.MaxTrailingLogs = trailing.v
	}
	if minQuorum.set {
		conf.MinQuorum = uint(minQuorum.v)
	}
	stored, err := client.AutopilotCASConfiguration(ctx, conf, conf.ModifyIndex)
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == 409 {
		return c.fail("set the autopilot configuration: it changed while this command ran; run it again")
	}
	if err != nil {
		return c.fail("set the autopilot configuration: %v", err)
	}
	if c.json {
		return c.printJSON(stored)
	}
	c.printConfig(stored)
	return 0
}

// boolValue, durationValue and uintValue are flags that remember whether they
// were given, so that set-config changes only those.
type boolValue struct {
	v, set bool
}

func (b *boolValue) String() string { return strconv.FormatBool(b.v) }
func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	b.v, b.set = v, true
	return nil
}
func (b *boolValue) IsBoolFlag() bool { return true }

type durationValue struct {
	v   time.Duration
	set bool
}

func (d *durationValue) String() string { return d.v.String() }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 10s")
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	d.v, d.set = v, true
	return nil
}

type uintValue struct {
	v   uint64
	set bool
}

func (u *uintValue) String() string { return strconv.FormatUint(u.v, 10) }
func (u *uintValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("want a whole number, 0 or more")
	}
	u.v, u.set = v, true
	return nil
}

var _ flag.Value = (*uintValue)(nil)

// OperatorAutopilotHealthCommand is `grid operator autopilot health`.
type OperatorAutopilotHealthCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorAutopilotHealthCommand) Synopsis() string {
	return "Show each server's health as autopilot judges it"
}

// Help implements cli.Command.
func (c *OperatorAutopilotHealthCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator autopilot health [options]

  Show the health of every server in the Raft configuration, as the
  leader's autopilot judges it: its gossip status, its Raft state (leader,
  voter, non-voter), how long ago it last heard from the leader, the term
  and index of the last entry in its log, whether it is healthy, and since
  when that has held. A server is healthy when it is alive, heard from the
  leader within the last-contact threshold, is on the leader's term and
  trails the leader's log by at most max-trailing-logs entries.

  The first line says whether every server is healthy and how many voters
  may fail with the leader keeping quorum (the failure tolerance).

  The exit code is 0 when every server is healthy, 2 when one is not, and
  1 when the health could not be read.

  With -json the output is an object with the fields healthy,
  failure_tolerance, leader, voters and servers; each server has the fields
  id, name, address, serf_status, version, leader, voter, raft_state,
  last_contact, last_term, last_index, healthy and stable_since.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorAutopilotHealthCommand) Run(args []string) int {
	const name = "operator autopilot health"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	h, err := client.AutopilotHealth(ctx)
	if err != nil {
		return c.fail("get the autopilot health: %v", err)
	}
	code := 0
	if !h.Healthy {
		code = 2
	}
	if c.json {
		if rc := c.printJSON(h); rc != 0 {
			return rc
		}
		return code
	}
	state := "healthy"
	if !h.Healthy {
		state = "unhealthy"
	}
	c.Ui.Output(fmt.Sprintf("Grid %s, failure tolerance %d", state, h.FailureTolerance))
	rows := make([][]string, 0, len(h.Servers))
	for _, s := range h.Servers {
		node := s.Name
		if node == "" {
			node = "(unknown)"
		}
		contact := "-"
		if s.LastContact >= 0 && s.SerfStatus == "alive" {
			contact = time.Duration(s.LastContact).Round(time.Millisecond).String()
		}
		rows = append(rows, []string{node, s.ID, s.Address, s.SerfStatus, s.RaftState, contact,
			strconv.FormatUint(s.LastTerm, 10), strconv.FormatUint(s.LastIndex, 10),
			strconv.FormatBool(s.Healthy), s.StableSince.UTC().Format(time.RFC3339)})
	}
	c.printTable([]string{"Node", "ID", "Address", "Status", "RaftState", "LastContact", "LastTerm", "LastIndex", "Healthy", "StableSince"}, rows)
	return code
}
