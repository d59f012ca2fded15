package command

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/cli"
)

// requestTimeout bounds one HTTP API call of a client command. Snapshot transfers,
// which carry the whole replicated state, use snapshotTimeout instead.
const requestTimeout = 30 * time.Second

// parseFlags parses args into fs. When the command must stop it returns false and the
// exit code: cli.RunResultHelp for -help (hashicorp/cli then prints Help), or a usage
// error for a bad flag.
func (m *Meta) parseFlags(fs *flag.FlagSet, cmd string, args []string) (int, bool) {
	err := fs.Parse(args)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		return cli.RunResultHelp, false
	}
	return m.usageError(cmd, err), false
}

// parseNoArgs is parseFlags for a command that takes no arguments: one given is a
// usage error.
func (m *Meta) parseNoArgs(fs *flag.FlagSet, cmd string, args []string) (int, bool) {
	if code, ok := m.parseFlags(fs, cmd, args); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		return m.usageError(cmd, argsError(fs.Args())), false
	}
	return 0, true
}

// argsError describes positional arguments that a command did not expect. A flag given
// after the arguments ends up here too (Go's flag package stops at the first argument),
// so the message says so.
func argsError(extra []string) error {
	for _, a := range extra {
		if strings.HasPrefix(a, "-") {
			return fmt.Errorf("unexpected argument %q: flags must come before arguments", a)
		}
	}
	if len(extra) == 1 {
		return fmt.Errorf("unexpected argument %q", extra[0])
	}
	return fmt.Errorf("unexpected arguments %q", extra)
}

// parentHelpTemplate renders a parent command's Help as it is: the Help text lists
// the subcommands itself, so hashicorp/cli must not append its own list.
const parentHelpTemplate = "{{.Help}}"

// OperatorCommand is `grid operator`: the parent of the commands that operate the
// servers themselves rather than the fleet they manage.
type OperatorCommand struct{}

// Synopsis implements cli.Command.
func (c *OperatorCommand) Synopsis() string {
	return "Operate the Grid servers: Raft peers, snapshots and gossip keys"
}

// Help implements cli.Command.
func (c *OperatorCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator <subcommand> [options] [args]

  Operate the servers of a Grid cluster: inspect and change the set of Raft
  peers, save or restore snapshots of the replicated state, and rotate the
  keys that encrypt gossip. Day-to-day use of a cluster does not need these
  commands; recovering from the loss of servers, moving a cluster's state or
  rotating its keys does.

Subcommands:

  autopilot   Inspect and tune server health, promotion and dead-server cleanup
  gossip      Manage the gossip encryption keys
  raft        Inspect and change the Raft peer set
  snapshot    Save and restore snapshots of the replicated state

  Run 'grid operator <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *OperatorCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *OperatorCommand) Run(args []string) int { return cli.RunResultHelp }

// OperatorRaftCommand is `grid operator raft`.
type OperatorRaftCommand struct{}

// Synopsis implements cli.Command.
func (c *OperatorRaftCommand) Synopsis() string {
	return "Inspect and change the Raft peer set"
}

// Help implements cli.Command.
func (c *OperatorRaftCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator raft <subcommand> [options]

  Inspect and change the Raft configuration of the servers: which servers
  hold a copy of the replicated state, which of them votes, and which leads.

Subcommands:

  list-peers     List the servers in the Raft configuration
  remove-peer    Remove a server from the Raft configuration

  List the peers, asking any server:

      $ grid operator raft list-peers -address=http://127.0.0.12:7000

  Remove a server that is gone for good:

      $ grid operator raft remove-peer -peer-id=<raft-id>

  Run 'grid operator raft <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *OperatorRaftCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *OperatorRaftCommand) Run(args []string) int { return cli.RunResultHelp }

// OperatorSnapshotCommand is `grid operator snapshot`.
type OperatorSnapshotCommand struct{}

// Synopsis implements cli.Command.
func (c *OperatorSnapshotCommand) Synopsis() string {
	return "Save and restore snapshots of the replicated state"
}

// Help implements cli.Command.
func (c *OperatorSnapshotCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator snapshot <subcommand> [options] FILE

  Save the replicated state of a cluster to a file, or replace the state of a
  cluster with one saved earlier. A snapshot is an archive holding the state,
  a description of it (meta.json) and checksums of both.

Subcommands:

  save       Save a snapshot of the replicated state to a file
  restore    Replace the replicated state with a saved snapshot

  Save a snapshot:

      $ grid operator snapshot save backup.snap

  Restore it:

      $ grid operator snapshot restore backup.snap

  Run 'grid operator snapshot <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *OperatorSnapshotCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *OperatorSnapshotCommand) Run(args []string) int { return cli.RunResultHelp }
