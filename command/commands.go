// Package command holds the grid CLI: one file per command, built on hashicorp/cli.
// Long-running commands (server, agent, storage, dev) run until SIGINT or SIGTERM; every
// other command is a client of a server's HTTP API (see api/).
//
// What the long-running commands share: config_file.go reads the -config files of
// server, agent and storage, whose keys are the command's flags, and sets the flags
// from them; config_reload.go reads them again on SIGHUP and applies what may change
// while the command runs; logging.go makes their loggers (-log-level, -log-json,
// -log-file) and logfile.go rotates the log file by size; tls_flags.go has the TLS
// flags and the SIGHUP handler.
package command

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/version"
)

// Main runs the CLI with args (without the program name) and returns the exit code.
func Main(args []string) int {
	return run(args, os.Stdin, os.Stdout, os.Stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ui := &cli.BasicUi{Reader: stdin, Writer: stdout, ErrorWriter: stderr}
	c := cli.NewCLI("grid", version.String())
	c.Args = args
	c.Commands = Commands(ui)
	c.HiddenCommands = hiddenCommands
	c.HelpWriter = stdout
	c.ErrorWriter = stderr
	// hashicorp/cli answers a command it does not know with the list of commands
	// and exit code 127, and a bare "grid" likewise: the CLI's errors say what is
	// wrong on one "Error:" line on stderr and exit 1 instead.
	if !c.IsHelp() && !c.IsVersion() {
		if name, parent, ok := unknownCommand(c); !ok {
			fmt.Fprintf(stderr, "Error: unknown command %q\nRun '%s -help' for usage.\n", name, strings.TrimSpace("grid "+parent))
			return 1
		} else if name == "" {
			fmt.Fprintln(stderr, c.HelpFunc(topLevel(c.Commands)))
			return 1
		}
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return code
}

// unknownCommand reports whether the command line names a command: it returns the
// command as typed ("" for none) and, for one that does not exist, the parent command
// whose help lists those that do ("" for grid itself). The CLI matches the longest
// known command, so "grid node bogus" runs the parent "node" with the argument
// "bogus": a parent command takes no arguments but flags.
func unknownCommand(c *cli.CLI) (name, parent string, ok bool) {
	name = c.Subcommand()
	if name == "" {
		return "", "", true
	}
	if _, known := c.Commands[name]; !known {
		return name, "", false
	}
	if args := c.SubcommandArgs(); len(args) > 0 && !strings.HasPrefix(args[0], "-") && isParent(c.Commands, name) {
		return name + " " + args[0], name, false
	}
	return name, "", true
}

// topLevel returns the commands that are not subcommands, as grid's help lists them.
func topLevel(commands map[string]cli.CommandFactory) map[string]cli.CommandFactory {
	out := map[string]cli.CommandFactory{}
	for k, f := range commands {
		if !strings.Contains(k, " ") {
			out[k] = f
		}
	}
	return out
}

// isParent reports whether name has subcommands.
func isParent(commands map[string]cli.CommandFactory, name string) bool {
	for k := range commands {
		if strings.HasPrefix(k, name+" ") {
			return true
		}
	}
	return false
}

// hiddenCommands run but stay out of the command list: they are for machines (a
// container's HEALTHCHECK), not for operators.
var hiddenCommands = []string{"healthcheck"}

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
		"ask":                       m(&AskCommand{Meta: meta}),
		"event":                     m(&EventCommand{}),
		"event count":               m(&EventCountCommand{Meta: meta}),
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
		"tls":                       m(&TLSCommand{}),
		"tls ca":                    m(&TLSCACommand{}),
		"tls ca create":             m(&TLSCACreateCommand{Meta: meta}),
		"tls cert":                  m(&TLSCertCommand{}),
		"tls cert create":           m(&TLSCertCreateCommand{Meta: meta}),
		"operator gossip":           m(&OperatorGossipCommand{}),
		"operator gossip keyring":   m(&OperatorGossipKeyringCommand{Meta: meta}),
		"acl":                       m(&ACLCommand{}),
		"acl bootstrap":             m(&ACLBootstrapCommand{Meta: meta}),
		"acl policy":                m(&ACLPolicyCommand{}),
		"acl policy apply":          m(&ACLPolicyApplyCommand{Meta: meta}),
		"acl policy list":           m(&ACLPolicyListCommand{Meta: meta}),
		"acl policy info":           m(&ACLPolicyInfoCommand{Meta: meta}),
		"acl policy delete":         m(&ACLPolicyDeleteCommand{Meta: meta}),
		"acl token":                 m(&ACLTokenCommand{}),
		"acl token create":          m(&ACLTokenCreateCommand{Meta: meta}),
		"acl token list":            m(&ACLTokenListCommand{Meta: meta}),
		"acl token info":            m(&ACLTokenInfoCommand{Meta: meta}),
		"acl token delete":          m(&ACLTokenDeleteCommand{Meta: meta}),
		"acl token self":            m(&ACLTokenSelfCommand{Meta: meta}),
		"healthcheck":               m(&HealthcheckCommand{Meta: meta}),

		"operator autopilot":            m(&OperatorAutopilotCommand{}),
		"operator autopilot get-config": m(&OperatorAutopilotGetCommand{Meta: meta}),
		"operator autopilot set-config": m(&OperatorAutopilotSetCommand{Meta: meta}),
		"operator autopilot health":     m(&OperatorAutopilotHealthCommand{Meta: meta}),
	}
}
