// Package command holds the grid CLI: one file per command, built on hashicorp/cli.
// Long-running commands (server, agent, storage, dev) run until SIGINT or SIGTERM; every
// other command is a client of a server's HTTP API (see api/).
package command

import (
	"fmt"
	"os"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/version"
)

// Main runs the CLI with args (without the program name) and returns the exit code.
func Main(args []string) int {
	ui := &cli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr}
	c := cli.NewCLI("grid", version.String())
	c.Args = args
	c.Commands = Commands(ui)
	c.HelpWriter = os.Stdout
	c.ErrorWriter = os.Stderr
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return code
}

// Commands returns the factory of every command, keyed by its name as typed.
func Commands(ui cli.Ui) map[string]cli.CommandFactory {
	m := func(c cli.Command) cli.CommandFactory { return func() (cli.Command, error) { return c, nil } }
	meta := Meta{Ui: ui}
	return map[string]cli.CommandFactory{
		"server":                    m(&ServerCommand{Meta: meta}),
		"dev":                       m(&DevCommand{Meta: meta}),
		"agent":                     m(&AgentCommand{Meta: meta}),
		"storage":                   m(&StorageCommand{Meta: meta}),
		"version":                   m(&VersionCommand{Meta: meta}),
		"members":                   m(&MembersCommand{Meta: meta}),
		"status":                    m(&StatusCommand{Meta: meta}),
		"agent status":              m(&AgentStatusCommand{Meta: meta}),
		"node":                      m(&NodeCommand{}),
		"node spawn":                m(&NodeSpawnCommand{Meta: meta}),
		"node stop":                 m(&NodeStopCommand{Meta: meta}),
		"node status":               m(&NodeStatusCommand{Meta: meta}),
		"node logs":                 m(&NodeLogsCommand{Meta: meta}),
		"event":                     m(&EventCommand{}),
		"event list":                m(&EventListCommand{Meta: meta}),
		"event show":                m(&EventShowCommand{Meta: meta}),
		"event tail":                m(&EventTailCommand{Meta: meta}),
		"operator":                  m(&OperatorCommand{}),
		"operator raft":             m(&OperatorRaftCommand{}),
		"operator raft list-peers":  m(&OperatorRaftListPeersCommand{Meta: meta}),
		"operator raft remove-peer": m(&OperatorRaftRemovePeerCommand{Meta: meta}),
		"operator snapshot":         m(&OperatorSnapshotCommand{}),
		"operator snapshot save":    m(&OperatorSnapshotSaveCommand{Meta: meta}),
		"operator snapshot restore": m(&OperatorSnapshotRestoreCommand{Meta: meta}),
	}
}
