package command

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/sutragrid/grid/api"
)

// AgentStatusCommand is `grid agent status`: the agents as the servers see them.
type AgentStatusCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *AgentStatusCommand) Synopsis() string {
	return "List the agents and their health"
}

// Help implements cli.Command.
func (c *AgentStatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid agent status [options] [NAME]

  List the agents registered with the cluster, sorted by name, or only the
  agent NAME: each agent's name, address, status, how many of its storage
  nodes run out of how many it may run, when the leader last heard from it,
  and its Grid version.

  An agent is "healthy" while its heartbeats arrive, "degraded" when they
  are late, and "offline" when they have stopped; its nodes are then shown
  as "lost" until it returns. "never" in the Last heartbeat column means the
  current leader has not heard from the agent since it became leader.

  For one agent NAME, a line below the table says how the agent isolates its
  nodes, as it reported when it registered: "cgroup v2 under ..." (or v1)
  when it runs each node in a cgroup of its own that enforces the node's
  memory and CPU limits, or "none: " and why not. Agents older than this
  report leave the line out.

  With -json the output is a list of objects (one object for NAME) with the
  fields name, address, hostname, platform, version, status, nodes,
  max_nodes, storage_root, last_heartbeat, registered_at,
  status_changed_at and, when the agent reports it, isolation.
` + clientHelp)
}

// Run implements cli.Command.
func (c *AgentStatusCommand) Run(args []string) int {
	const name = "agent status"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return c.usageError(name, argsError(fs.Args()[1:]))
	}
	agentName := fs.Arg(0)
	if fs.NArg() == 1 && strings.TrimSpace(agentName) == "" {
		return c.usageError(name, errEmptyArg("NAME"))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()

	var agents []api.Agent
	if agentName != "" {
		a, err := client.Agent(ctx, agentName)
		if api.IsNotFound(err) {
			return c.fail("agent %q not found", agentName)
		}
		if err != nil {
			return c.fail("get agent %s: %v", agentName, err)
		}
		agents = []api.Agent{*a}
	} else {
		agents, err = client.Agents(ctx)
		if err != nil {
			return c.fail("list agents: %v", err)
		}
		if agents == nil {
			agents = []api.Agent{}
		}
		sort.SliceStable(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	}
	if c.json {
		return c.printJSON(agents)
	}
	now := c.now()
	rows := make([][]string, 0, len(agents))
	for _, a := range agents {
		nodes := strconv.Itoa(a.Nodes)
		if a.MaxNodes > 0 {
			nodes += "/" + strconv.Itoa(a.MaxNodes)
		}
		rows = append(rows, []string{a.Name, orDash(a.Address), orDash(a.Status), nodes,
			formatAge(now, a.LastHeartbeat), orDash(a.Version)})
	}
	c.printTable([]string{"Name", "Address", "Status", "Nodes", "Last heartbeat", "Version"}, rows)
	// The isolation is a sentence, too wide for a column of the list: it is shown
	// for one agent only, and not at all for agents that do not report it.
	if agentName != "" && agents[0].Isolation != "" {
		c.Ui.Output("\nIsolation = " + agents[0].Isolation)
	}
	return 0
}
