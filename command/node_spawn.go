package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	gridrestart "github.com/sutragrid/grid/restart"
)

// NodeSpawnCommand is `grid node spawn`.
type NodeSpawnCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *NodeSpawnCommand) Synopsis() string {
	return "Start a storage node on an agent"
}

// Help implements cli.Command.
func (c *NodeSpawnCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid node spawn -agent=NAME -port=PORT [options]

  Start a storage node on the agent NAME, listening on PORT. The request is
  forwarded to the leader, which records the node (status "pending") and has
  the agent start it. The command then waits until the node runs and prints
  its ID and endpoint, or until it fails or -timeout passes. Progress goes to
  stderr; the result to stdout.

  The agent must be healthy, PORT must be free among its nodes, and the
  agent must have room for one more node.

  With -detach the command prints the new node's ID as soon as it is
  recorded and does not wait. With -json it prints the node, as it was last
  seen, as an object with the fields id, agent, port, storage_path,
  memory_limit_mb, cpu_limit (when set), restart_policy, status, pid,
  restarts, endpoint, exit_code, signal, error, created_at and updated_at.

  The exit code is 0 when the node runs (or, with -detach, was recorded) and
  1 otherwise. A node that did not run before -timeout may still start:
  'grid node status ID' shows how it is doing.

Spawn Options:

  -agent=<name>
    The agent that runs the node. Required.

  -port=<port>
    The port of the node's gRPC endpoint, 1-65535. Required.

  -name=<name>
    A name for the node, unique among the grid's nodes: 1 to 63 letters,
    digits, '-', '_' and '.'. It shows in 'grid node status', in the node's
    events (node_name), and names the node in 'grid event list -node='.
    Default: the node's ID.

  -role=event-store
    Make the node one of the grid's event stores: the leader backfills it with
    the whole event history, then ships it every new event, and reads may go to
    it. Its agent supervises it like any other node (restarts, re-adoption).
    Stopping it removes it from the event stores. Default: none.

  -storage-path=<path>
    Where the node keeps its data, inside the agent's storage root.
    Default: a directory named after the node in the agent's storage root.

  -memory-limit-mb=<n>
    The node's memory limit in MiB. Default: 512.

  -cpu-limit=<cores>
    CPU time the node may use, in cores (e.g. 0.5); the agent enforces it
    with a cgroup where it can. Default: 0, no limit.

  -restart-attempts=<n>
    How many times the agent restarts the node after crashes within
    -restart-interval before it gives up and marks the node failed.
    Default: 3. 0 means the node is never restarted.

  -restart-interval=<duration>
    The window in which -restart-attempts are counted. Default: 30m.

  -restart-delay=<duration>
    The wait before the first restart; each next wait doubles, up to
    -restart-max-delay, with some jitter. Default: 5s.

  -restart-max-delay=<duration>
    The longest wait between restarts. Default: 5m.

  -detach
    Print the node's ID once it is recorded, without waiting for it to run.

  -timeout=<duration>
    How long to wait for the node to run. Default: 2m.
` + clientHelp)
}

// Run implements cli.Command.
func (c *NodeSpawnCommand) Run(args []string) int {
	const name = "node spawn"
	var (
		req     api.SpawnRequest
		detach  bool
		timeout time.Duration
		restart struct {
			attempts                  int
			interval, delay, maxDelay time.Duration
		}
	)
	fs := c.clientFlags(name)
	fs.StringVar(&req.Agent, "agent", "", "")
	fs.IntVar(&req.Port, "port", 0, "")
	fs.StringVar(&req.StoragePath, "storage-path", "", "")
	fs.StringVar(&req.Name, "name", "", "")
	fs.StringVar(&req.Role, "role", "", "")
	fs.IntVar(&req.MemoryLimitMB, "memory-limit-mb", 512, "")
	fs.Float64Var(&req.CPULimit, "cpu-limit", 0, "")
	fs.IntVar(&restart.attempts, "restart-attempts", gridrestart.DefaultAttempts, "")
	fs.DurationVar(&restart.interval, "restart-interval", gridrestart.DefaultInterval, "")
	fs.DurationVar(&restart.delay, "restart-delay", gridrestart.DefaultDelay, "")
	fs.DurationVar(&restart.maxDelay, "restart-max-delay", gridrestart.DefaultMaxDelay, "")
	fs.BoolVar(&detach, "detach", false, "")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	req.Agent = strings.TrimSpace(req.Agent)
	req.StoragePath = strings.TrimSpace(req.StoragePath)
	req.Restart.Attempts = api.Attempts(restart.attempts)
	if err := checkSpawnFlags(&req, restart.interval, restart.delay, restart.maxDelay, timeout); err != nil {
		return c.usageError(name, err)
	}
	req.Restart.Interval = api.Duration(restart.interval)
	req.Restart.Delay = api.Duration(restart.delay)
	req.Restart.MaxDelay = api.Duration(restart.maxDelay)

	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, stop := interruptContext()
	defer stop()
	reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	node, err := client.SpawnNode(reqCtx, &req)
	cancel()
	if err != nil {
		return c.fail("%s", prefixed(fmt.Sprintf("spawn node on %s: ", req.Agent), err.Error()))
	}

	if detach {
		c.progress(fmt.Sprintf("Node %s recorded; %s will start it. Check with 'grid node status %s'",
			node.ID, node.Agent, node.ID))
		if c.json {
			return c.printJSON(node)
		}
		c.Ui.Output(node.ID)
		return 0
	}

	c.progress(fmt.Sprintf("Node %s recorded; waiting for %s to start it", node.ID, node.Agent))
	node, err = waitNode(ctx, client, node, c.clock, timeout,
		[]string{api.NodeRunning, api.NodeFailed, api.NodeStopped}, c.progress)
	if c.json {
		if code := c.printJSON(node); code != 0 {
			return code
		}
	}
	check := fmt.Sprintf("check with 'grid node status %s'", node.ID)
	switch {
	case errors.Is(err, errWaitTimeout):
		return c.fail("node %s is not running after %s (status %s); it may still start: %s",
			node.ID, formatDuration(timeout), node.Status, check)
	case errors.Is(err, errWaitInterrupted):
		return c.fail("interrupted while node %s was %s; it may still start: %s", node.ID, node.Status, check)
	case err != nil:
		return c.fail("wait for node %s: %v", node.ID, err)
	case node.Status == api.NodeFailed:
		return c.fail("node %s failed to start on %s: %s", node.ID, node.Agent, orDefault(node.Error, "no reason given"))
	case node.Status == api.NodeStopped:
		return c.fail("node %s was stopped before it started", node.ID)
	}
	if !c.json {
		c.Ui.Output(fmt.Sprintf("Node %s is running on %s at %s", node.ID, node.Agent, orDash(node.Endpoint)))
	}
	return 0
}

// maxCPULimit is the servers' bound on a node's CPU limit (fsm.MaxCPULimit), checked
// here too so that a typo fails before anything is sent.
const maxCPULimit = 1024

// checkSpawnFlags checks the flags of node spawn before anything is sent.
func checkSpawnFlags(req *api.SpawnRequest, interval, delay, maxDelay, timeout time.Duration) error {
	switch {
	case req.Agent == "":
		return errors.New("-agent is required")
	case req.Port == 0:
		return errors.New("-port is required")
	case req.Port < 1 || req.Port > 65535:
		return fmt.Errorf("-port must be between 1 and 65535, not %d", req.Port)
	case req.MemoryLimitMB < 0:
		return fmt.Errorf("-memory-limit-mb must not be negative, not %d", req.MemoryLimitMB)
	case req.CPULimit < 0:
		return fmt.Errorf("-cpu-limit must not be negative, not %v", req.CPULimit)
	// The flag package parses "NaN" and "Inf" too; NaN fails every comparison, so
	// the bound is negated to catch it.
	case !(req.CPULimit <= maxCPULimit):
		return fmt.Errorf("-cpu-limit must be at most %d cores, not %v", maxCPULimit, req.CPULimit)
	case req.Restart.Attempts != nil && *req.Restart.Attempts < 0:
		return fmt.Errorf("-restart-attempts must not be negative, not %d", *req.Restart.Attempts)
	case interval < 0:
		return fmt.Errorf("-restart-interval must not be negative, not %s", interval)
	case delay < 0:
		return fmt.Errorf("-restart-delay must not be negative, not %s", delay)
	case maxDelay < 0:
		return fmt.Errorf("-restart-max-delay must not be negative, not %s", maxDelay)
	case delay > 0 && maxDelay > 0 && delay > maxDelay:
		return fmt.Errorf("-restart-delay (%s) must not be longer than -restart-max-delay (%s)",
			formatDuration(delay), formatDuration(maxDelay))
	case timeout <= 0:
		return fmt.Errorf("-timeout must be positive, not %s", timeout)
	case req.Role != "" && req.Role != api.NodeRoleEventStore:
		return fmt.Errorf("-role must be %q or empty, not %q", api.NodeRoleEventStore, req.Role)
	}
	return nil
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
