package command

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sutragrid/grid/api"
)

// NodeStatusCommand is `grid node status`.
type NodeStatusCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *NodeStatusCommand) Synopsis() string {
	return "List storage nodes, or show one in detail"
}

// Help implements cli.Command.
func (c *NodeStatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid node status [options] [NODE_ID]

  Without NODE_ID, list the storage nodes of the cluster, or of one agent
  with -agent, sorted by agent and port: each node's ID, agent, port, status,
  process ID, restarts after crashes, and gRPC endpoint.

  With NODE_ID, show that node in detail: also its storage path, memory
  limit, restart policy, how its process last exited, why it failed, and
  when it was created and last updated.

  A node's status is one of:

    pending      recorded; its agent is starting it
    running      its process runs and passed its health check
    restarting   it crashed; its agent restarts it per its restart policy
    stopping     a stop was requested; its agent is stopping it
    stopped      stopped on request
    failed       it did not start, or crashed more often than its restart
                 policy allows
    lost         its agent is offline; shown until the agent returns

  With -json the output is a list of objects (one object for NODE_ID) with
  the fields id, agent, port, storage_path, memory_limit_mb, cpu_limit (when
  set), restart_policy, status, pid, restarts, endpoint, exit_code, signal,
  error, created_at and updated_at.

Status Options:

  -agent=<name>
    List only the nodes of this agent.
` + clientHelp)
}

// Run implements cli.Command.
func (c *NodeStatusCommand) Run(args []string) int {
	const name = "node status"
	var agent string
	fs := c.clientFlags(name)
	fs.StringVar(&agent, "agent", "", "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return c.usageError(name, argsError(fs.Args()[1:]))
	}
	id := fs.Arg(0)
	agent = strings.TrimSpace(agent)
	switch {
	case fs.NArg() == 1 && strings.TrimSpace(id) == "":
		return c.usageError(name, errEmptyArg("NODE_ID"))
	case id != "" && agent != "":
		return c.usageError(name, errors.New("-agent and NODE_ID are mutually exclusive: give one"))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()

	if id != "" {
		node, err := client.Node(ctx, id)
		if api.IsNotFound(err) {
			return c.fail("node %q not found", id)
		}
		if err != nil {
			return c.fail("get node %s: %v", id, err)
		}
		if c.json {
			return c.printJSON([]api.Node{*node})
		}
		c.printNode(node)
		return 0
	}

	nodes, err := client.Nodes(ctx, agent)
	if err != nil {
		if agent != "" {
			return c.fail("list nodes of %s: %v", agent, err)
		}
		return c.fail("list nodes: %v", err)
	}
	if nodes == nil {
		nodes = []api.Node{}
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.Agent != b.Agent {
			return a.Agent < b.Agent
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.ID < b.ID
	})
	if c.json {
		return c.printJSON(nodes)
	}
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, []string{n.ID, nameOf(n), n.Agent, strconv.Itoa(n.Port), n.Status, formatPID(n.PID),
			strconv.Itoa(n.Restarts), orDash(n.Endpoint)})
	}
	c.printTable([]string{"ID", "Name", "Agent", "Port", "Status", "PID", "Restarts", "Endpoint"}, rows)
	return 0
}

// printNode writes every field of n, one "Key = value" line each.
func (c *NodeStatusCommand) printNode(n *api.Node) {
	now := c.now()
	exitCode := "-"
	if n.ExitCode != nil {
		exitCode = strconv.Itoa(*n.ExitCode)
	}
	memory := "default"
	if n.MemoryLimitMB > 0 {
		memory = strconv.Itoa(n.MemoryLimitMB) + " MB"
	}
	cpu := "none"
	if n.CPULimit > 0 {
		cpu = formatCores(n.CPULimit)
	}
	lines := [][2]string{
		{"ID", n.ID},
		{"Name", nameOf(*n)},
		{"Agent", n.Agent},
		{"Port", strconv.Itoa(n.Port)},
		{"Status", n.Status},
		{"PID", formatPID(n.PID)},
		{"Restarts", strconv.Itoa(n.Restarts)},
		{"Endpoint", orDash(n.Endpoint)},
		{"Storage Path", orDash(n.StoragePath)},
		{"Memory Limit", memory},
		{"CPU Limit", cpu},
		{"Restart Attempts", formatAttempts(n.Restart.Attempts)},
		{"Restart Interval", formatPolicyDuration(n.Restart.Interval)},
		{"Restart Delay", formatPolicyDuration(n.Restart.Delay)},
		{"Restart Max Delay", formatPolicyDuration(n.Restart.MaxDelay)},
		{"Exit Code", exitCode},
		{"Signal", orDash(n.Signal)},
		{"Error", orDash(n.Error)},
		{"Created", formatTime(now, n.CreatedAt)},
		{"Updated", formatTime(now, n.UpdatedAt)},
	}
	if n.RequestedBy != "" {
		// The ACL token of the last spawn or stop request.
		lines = append(lines, [2]string{"Requested By", n.RequestedBy})
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t= %s\n", l[0], l[1])
	}
	tw.Flush()
	c.Ui.Output(strings.TrimRight(b.String(), "\n"))
}

// formatCores is a CPU limit in cores, in as few digits as say it exactly: "1.5
// cores", "0.25 cores", "1 core".
func formatCores(cores float64) string {
	s := strconv.FormatFloat(cores, 'f', -1, 64)
	if s == "1" {
		return s + " core"
	}
	return s + " cores"
}

// formatPID is a process ID, or "-" when the node has no process.
func formatPID(pid int) string {
	if pid <= 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

// formatAttempts is a restart policy's attempts; 0 means the server's default.
func formatAttempts(n *int) string {
	switch {
	case n == nil:
		return "default"
	case *n == 0:
		return "never"
	}
	return strconv.Itoa(*n)
}

// formatPolicyDuration is a restart policy's duration; 0 means the server's default.
func formatPolicyDuration(d api.Duration) string {
	if d == 0 {
		return "default"
	}
	return formatDuration(time.Duration(d))
}

// nameOf is a node's name; an older server sends none, and then the ID names it.
func nameOf(n api.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return n.ID
}
