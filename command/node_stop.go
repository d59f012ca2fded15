package command

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
)

// NodeStopCommand is `grid node stop`.
type NodeStopCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *NodeStopCommand) Synopsis() string {
	return "Stop a storage node"
}

// Help implements cli.Command.
func (c *NodeStopCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid node stop [options] NODE_ID

  Stop the storage node NODE_ID. The request is forwarded to the leader,
  which records the stop (status "stopping") and has the node's agent send
  the process SIGTERM, then SIGKILL if it has not exited after -kill-timeout.
  The command then waits until the node is stopped, or failed, or -timeout
  passes. Progress goes to stderr; the result to stdout. The node's data
  stays on disk.

  Stopping a node that is already stopped is an error.

  With -detach the command returns as soon as the stop is recorded. With
  -json it prints the node, as it was last seen, as an object with the same
  fields as 'grid node status -json'.

Stop Options:

  -kill-timeout=<duration>
    How long the agent waits after SIGTERM before it sends SIGKILL.
    Default: 5s.

  -detach
    Return once the stop is recorded, without waiting for the node to stop.

  -timeout=<duration>
    How long to wait for the node to stop. Default: 1m.
` + clientHelp)
}

// Run implements cli.Command.
func (c *NodeStopCommand) Run(args []string) int {
	const name = "node stop"
	var (
		killTimeout, timeout time.Duration
		detach               bool
	)
	fs := c.clientFlags(name)
	fs.DurationVar(&killTimeout, "kill-timeout", 5*time.Second, "")
	fs.BoolVar(&detach, "detach", false, "")
	fs.DurationVar(&timeout, "timeout", time.Minute, "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	id, err := nodeIDArg(fs.Args())
	if err != nil {
		return c.usageError(name, err)
	}
	switch {
	case killTimeout <= 0:
		return c.usageError(name, fmt.Errorf("-kill-timeout must be positive, not %s", killTimeout))
	case timeout <= 0:
		return c.usageError(name, fmt.Errorf("-timeout must be positive, not %s", timeout))
	}

	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, stop := interruptContext()
	defer stop()
	reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	node, err := client.StopNode(reqCtx, id, killTimeout)
	cancel()
	var se *api.StatusError
	switch {
	case api.IsNotFound(err):
		return c.fail("node %q not found", id)
	case errors.As(err, &se) && se.Code == http.StatusConflict:
		return c.fail("%s", prefixed("stop node "+id+": ", se.Message))
	case err != nil:
		return c.fail("%s", prefixed("stop node "+id+": ", err.Error()))
	}

	if detach {
		if c.json {
			return c.printJSON(node)
		}
		c.Ui.Output(fmt.Sprintf("Stop of node %s requested; check with 'grid node status %s'", node.ID, node.ID))
		return 0
	}

	c.progress(fmt.Sprintf("Stop of node %s recorded; waiting for %s to stop it", node.ID, node.Agent))
	node, err = waitNode(ctx, client, node, c.clock, timeout,
		// A node back to running after "stopping" is one whose agent failed to stop it.
		[]string{api.NodeStopped, api.NodeFailed, api.NodeRunning}, c.progress)
	if c.json {
		if code := c.printJSON(node); code != 0 {
			return code
		}
	}
	check := fmt.Sprintf("check with 'grid node status %s'", node.ID)
	switch {
	case errors.Is(err, errWaitTimeout):
		return c.fail("node %s is not stopped after %s (status %s); it may still stop: %s",
			node.ID, formatDuration(timeout), node.Status, check)
	case errors.Is(err, errWaitInterrupted):
		return c.fail("interrupted while node %s was %s; it may still stop: %s", node.ID, node.Status, check)
	case err != nil:
		return c.fail("wait for node %s: %v", node.ID, err)
	case node.Status == api.NodeFailed || node.Status == api.NodeRunning:
		return c.fail("node %s failed to stop: %s", node.ID, orDefault(node.Error, "no reason given"))
	}
	if !c.json {
		c.Ui.Output(fmt.Sprintf("Node %s stopped%s", node.ID, exitSummary(node)))
	}
	return 0
}

// exitSummary says how a node's process ended, as " (exit code 0)" or
// " (signal killed)", or "" when that is not known.
func exitSummary(n *api.Node) string {
	var parts []string
	if n.ExitCode != nil && *n.ExitCode >= 0 {
		parts = append(parts, fmt.Sprintf("exit code %d", *n.ExitCode))
	}
	if n.Signal != "" {
		parts = append(parts, "signal "+n.Signal)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// prefixed puts prefix in front of msg unless the servers' message starts with it.
func prefixed(prefix, msg string) string {
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + msg
}
