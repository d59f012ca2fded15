package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// nodePollInterval is how often node spawn and node stop ask for a node's status
// while they wait for it, once it has taken a while. They first ask after
// nodePollFirst, then a quarter longer after each answer up to nodePollInterval: a
// node usually runs, or stops, within a hundred milliseconds, which a fixed 250ms
// would round up to 250ms, and doubling to 160ms.
const (
	nodePollFirst    = 10 * time.Millisecond
	nodePollInterval = 250 * time.Millisecond
)

// clock is the time source of the commands that show ages, and the poll interval of
// those that wait for a node. The zero value is the real clock and nodePollInterval;
// tests set both.
type clock struct {
	nowFunc  func() time.Time
	interval time.Duration
}

func (c clock) now() time.Time {
	if c.nowFunc != nil {
		return c.nowFunc()
	}
	return time.Now()
}

// pollInterval is the wait before the next status poll, given the last: the tests'
// fixed interval, or the backoff from nodePollFirst to nodePollInterval.
func (c clock) pollInterval(last time.Duration) time.Duration {
	switch {
	case c.interval > 0:
		return c.interval
	case last <= 0:
		return nodePollFirst
	}
	return min(last+last/4, nodePollInterval)
}

// NodeCommand is `grid node`: the parent of the commands that run and inspect
// storage nodes.
type NodeCommand struct{}

// Synopsis implements cli.Command.
func (c *NodeCommand) Synopsis() string {
	return "Spawn, stop and inspect storage nodes"
}

// Help implements cli.Command.
func (c *NodeCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid node <subcommand> [options] [args]

  Run storage nodes on the agents of a Grid cluster and inspect them. The
  servers record each node and its desired state; the node's agent starts,
  supervises, restarts and stops its process.

Subcommands:

  spawn     Start a storage node on an agent
  stop      Stop a storage node
  status    List storage nodes, or show one in detail
  logs      Print the tail of a storage node's logs

  Start a node and wait until it runs:

      $ grid node spawn -agent=agent-001 -port=50100

  List the nodes of one agent:

      $ grid node status -agent=agent-001

  Run 'grid node <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *NodeCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *NodeCommand) Run(args []string) int { return cli.RunResultHelp }

// nodeIDArg checks that args is exactly one node ID.
func nodeIDArg(args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", errors.New("missing argument: the NODE_ID")
	case len(args) > 1:
		return "", argsError(args[1:])
	case strings.TrimSpace(args[0]) == "":
		return "", errEmptyArg("NODE_ID")
	}
	return args[0], nil
}

// errEmptyArg is the error for a positional argument given as "".
func errEmptyArg(what string) error {
	return fmt.Errorf("the %s must not be empty", what)
}

// interruptContext returns a context that SIGINT or SIGTERM cancels, so a command
// that waits can say what state it left things in.
func interruptContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// errWaitInterrupted and errWaitTimeout say why waitNode gave up.
var (
	errWaitInterrupted = errors.New("interrupted")
	errWaitTimeout     = errors.New("timed out")
)

// waitNode polls node n every interval until its status is one of final, and returns
// the node as last seen. Each change of status is reported to progress. It gives up
// with errWaitInterrupted when ctx is cancelled, with errWaitTimeout after timeout,
// and at once when the node no longer exists; other errors (a server restarting, an
// election) are reported to progress and polling goes on. The node as last seen is
// returned with every error.
func waitNode(ctx context.Context, client *api.Client, n *api.Node, clk clock, timeout time.Duration,
	final []string, progress func(string)) (*api.Node, error) {
	isFinal := func(s string) bool {
		for _, f := range final {
			if s == f {
				return true
			}
		}
		return false
	}
	if isFinal(n.Status) {
		return n, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := clk.pollInterval(0)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	lastErr := ""
	for {
		select {
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return n, errWaitInterrupted
			}
			return n, errWaitTimeout
		case <-timer.C:
		}
		wait = clk.pollInterval(wait)
		timer.Reset(wait)
		reqCtx, reqCancel := context.WithTimeout(waitCtx, requestTimeout)
		cur, err := client.Node(reqCtx, n.ID)
		reqCancel()
		switch {
		case err != nil && waitCtx.Err() != nil:
			continue // reported by the select above
		case api.IsNotFound(err):
			return n, fmt.Errorf("node %s no longer exists", n.ID)
		case err != nil:
			if msg := err.Error(); msg != lastErr {
				progress(fmt.Sprintf("Could not get the status of node %s (retrying): %s", n.ID, msg))
				lastErr = msg
			}
			continue
		}
		lastErr = ""
		prev := n
		n = cur
		if isFinal(n.Status) {
			return n, nil
		}
		if n.Status != prev.Status || n.Restarts != prev.Restarts {
			progress(describeNodeChange(n))
		}
	}
}

// describeNodeChange says in one line what a node's new status means.
func describeNodeChange(n *api.Node) string {
	id := n.ID
	switch n.Status {
	case api.NodeRestarting:
		var why []string
		if n.ExitCode != nil {
			why = append(why, "exit code "+strconv.Itoa(*n.ExitCode))
		}
		if n.Signal != "" {
			why = append(why, "signal "+n.Signal)
		}
		if n.Error != "" {
			why = append(why, n.Error)
		}
		msg := fmt.Sprintf("Node %s crashed", id)
		if len(why) > 0 {
			msg += " (" + strings.Join(why, ", ") + ")"
		}
		return fmt.Sprintf("%s; %s is restarting it (restarts so far: %d)", msg, n.Agent, n.Restarts)
	case api.NodeLost:
		return fmt.Sprintf("Node %s is lost: agent %s is offline; waiting for it to return", id, n.Agent)
	case api.NodePending:
		return fmt.Sprintf("Node %s is pending on %s", id, n.Agent)
	case api.NodeRunning:
		return fmt.Sprintf("Node %s is running (pid %d)", id, n.PID)
	default:
		return fmt.Sprintf("Node %s is %s", id, n.Status)
	}
}

// progress prints a progress message on stderr, so that stdout holds only the result.
func (m *Meta) progress(msg string) {
	m.Ui.Error("==> " + msg)
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatAge says how long before now t was, as "3s ago", "4m10s ago", "2h5m ago" or
// "3d4h ago"; "never" for the zero time. A t in the future (clocks differ) is "0s ago".
func formatAge(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds ago", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds ago", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm ago", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%dh ago", s/86400, s%86400/3600)
	}
}

// formatTime is t as RFC 3339 followed by its age, or "-" for the zero time.
func formatTime(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339) + " (" + formatAge(now, t) + ")"
}

// formatDuration is d without the zero units that time.Duration.String appends:
// "30m" rather than "30m0s", "1h" rather than "1h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
