package command

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/sutragrid/grid/api"
)

// MembersCommand is `grid members`: the gossip pool as one server sees it.
type MembersCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *MembersCommand) Synopsis() string {
	return "List the members of the gossip pool"
}

// Help implements cli.Command.
func (c *MembersCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid members [options]

  List the servers and agents in the gossip pool, as the server at -address
  sees them: each member's name, gossip address, status (alive, failed, or
  left after a graceful stop), role (server or agent), and whether it is the
  Raft leader.
  Members are sorted by name.

  Gossip is eventually consistent: right after a change, two servers may
  briefly disagree.

  With -json the output is a list of objects with the fields name, address,
  port, status, role, leader, version and tags.
` + clientHelp)
}

// Run implements cli.Command.
func (c *MembersCommand) Run(args []string) int {
	const name = "members"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	byName := func(cl *api.Client, ctx context.Context) ([]api.Member, error) {
		members, err := cl.Members(ctx)
		sort.SliceStable(members, func(i, j int) bool { return members[i].Name < members[j].Name })
		return members, err
	}
	return show(&c.Meta, "list members", listOf(byName), c.printMembers)
}

// printMembers writes the members as a table.
func (c *MembersCommand) printMembers(members []api.Member) {
	rows := make([][]string, 0, len(members))
	for _, m := range members {
		addr := m.Address
		if m.Port != 0 {
			addr = net.JoinHostPort(m.Address, strconv.Itoa(m.Port))
		}
		rows = append(rows, []string{m.Name, addr, m.Status, m.Role, strconv.FormatBool(m.Leader)})
	}
	c.printTable([]string{"Name", "Address", "Status", "Role", "Leader"}, rows)
}
