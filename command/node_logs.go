package command

import (
	"context"
	"fmt"
	"strings"

	"github.com/sutragrid/grid/api"
)

// NodeLogsCommand is `grid node logs`.
type NodeLogsCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *NodeLogsCommand) Synopsis() string {
	return "Print the tail of a storage node's logs"
}

// Help implements cli.Command.
func (c *NodeLogsCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid node logs [options] NODE_ID

  Print the last lines of the logs of the storage node NODE_ID: what its
  process wrote to stdout and to stderr. The node's agent reads its log
  files, so the agent must be online; the node itself need not be running.

  By default both logs are printed, each under a header, as tail(1) does
  for several files:

    ==> stdout <==
    ...

    ==> stderr <==
    ...

  With -stdout or -stderr only that log is printed, without a header.

  With -json the output is an object with the fields stdout and stderr,
  each the tail of that log as one string.

Logs Options:

  -n=<lines>
    How many lines to print from the end of each log. Default: 100.

  -stdout
    Print only the node's stdout.

  -stderr
    Print only the node's stderr.
` + clientHelp)
}

// Run implements cli.Command.
func (c *NodeLogsCommand) Run(args []string) int {
	const name = "node logs"
	var (
		lines          int
		stdout, stderr bool
	)
	fs := c.clientFlags(name)
	fs.IntVar(&lines, "n", 100, "")
	fs.BoolVar(&stdout, "stdout", false, "")
	fs.BoolVar(&stderr, "stderr", false, "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	id, err := nodeIDArg(fs.Args())
	if err != nil {
		return c.usageError(name, err)
	}
	if lines < 1 {
		return c.usageError(name, fmt.Errorf("-n must be at least 1, not %d", lines))
	}
	if !stdout && !stderr {
		stdout, stderr = true, true
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	logs, err := client.NodeLogs(ctx, id, lines)
	if err != nil {
		if api.IsNotFound(err) {
			return c.fail("node %q not found", id)
		}
		return c.fail("get logs of node %s: %v", id, err)
	}
	if c.json {
		return c.printJSON(logs)
	}
	switch {
	case stdout && stderr:
		out := "==> stdout <==\n" + withNewline(logs.Stdout) + "\n==> stderr <==\n" + withNewline(logs.Stderr)
		c.Ui.Output(strings.TrimSuffix(out, "\n"))
	case stdout:
		c.printLog(logs.Stdout)
	default:
		c.printLog(logs.Stderr)
	}
	return 0
}

// printLog writes one log as it is; nothing at all when it is empty.
func (c *NodeLogsCommand) printLog(s string) {
	if s != "" {
		c.Ui.Output(strings.TrimSuffix(s, "\n"))
	}
}

// withNewline returns s ending in a newline, unless s is empty.
func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
