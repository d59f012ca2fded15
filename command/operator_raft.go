package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sutragrid/grid/api"
)

// OperatorRaftListPeersCommand is `grid operator raft list-peers`.
type OperatorRaftListPeersCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorRaftListPeersCommand) Synopsis() string {
	return "List the servers in the Raft configuration"
}

// Help implements cli.Command.
func (c *OperatorRaftListPeersCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator raft list-peers [options]

  List the servers in the committed Raft configuration, as the server at
  -address sees it: each server's gossip name, Raft ID and Raft address,
  whether it leads or follows, whether it votes, and the Raft protocol
  version it speaks. Any server answers.

  With -json the output is a list of objects with the fields node, id,
  address, state ("leader" or "follower"), leader, voter and raft_protocol.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorRaftListPeersCommand) Run(args []string) int {
	const name = "operator raft list-peers"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	peers := func(cl *api.Client, ctx context.Context) ([]api.RaftServer, error) {
		conf, err := cl.RaftConfiguration(ctx)
		if err != nil {
			return nil, err
		}
		return conf.Servers, nil
	}
	return show(&c.Meta, "list Raft peers", listOf(peers), c.printPeers)
}

// printPeers writes the Raft servers as a table.
func (c *OperatorRaftListPeersCommand) printPeers(servers []api.RaftServer) {
	rows := make([][]string, 0, len(servers))
	for _, s := range servers {
		node := s.Node
		if node == "" {
			node = "(unknown)"
		}
		rows = append(rows, []string{node, s.ID, s.Address, s.State,
			strconv.FormatBool(s.Voter), s.RaftProtocol})
	}
	c.printTable([]string{"Node", "ID", "Address", "State", "Voter", "RaftProtocol"}, rows)
}

// OperatorRaftRemovePeerCommand is `grid operator raft remove-peer`.
type OperatorRaftRemovePeerCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorRaftRemovePeerCommand) Synopsis() string {
	return "Remove a server from the Raft configuration"
}

// Help implements cli.Command.
func (c *OperatorRaftRemovePeerCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator raft remove-peer [options]

  Remove a server from the Raft configuration. A server that stops, even
  gracefully, stays in the configuration so that it rejoins as it was when it
  restarts; while it is away it still counts towards the quorum. Remove a
  server that is gone for good, so that the others do not wait for it. The
  request is forwarded to the leader.

  Name the server by its Raft ID or by its Raft address, as listed by
  'grid operator raft list-peers'; exactly one of the two is required.

Remove Peer Options:

  -peer-id=<id>
    The Raft ID of the server to remove.

  -peer-address=<host:port>
    The Raft address of the server to remove, for example 127.0.0.13:7002.
` + clientHelp)
}

// removedPeer is the -json output of remove-peer.
type removedPeer struct {
	ID      string `json:"id,omitempty"`
	Address string `json:"address,omitempty"`
	Removed bool   `json:"removed"`
}

// Run implements cli.Command.
func (c *OperatorRaftRemovePeerCommand) Run(args []string) int {
	const name = "operator raft remove-peer"
	var id, addr string
	fs := c.clientFlags(name)
	fs.StringVar(&id, "peer-id", "", "")
	fs.StringVar(&addr, "peer-address", "", "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
	switch {
	case id == "" && addr == "":
		return c.usageError(name, errors.New("one of -peer-id or -peer-address is required"))
	case id != "" && addr != "":
		return c.usageError(name, errors.New("-peer-id and -peer-address are mutually exclusive: give one"))
	case addr != "":
		if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
			return c.usageError(name, fmt.Errorf("invalid -peer-address %q: want host:port", addr))
		}
	}

	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var what string
	if id != "" {
		what = fmt.Sprintf("ID %q", id)
		err = client.RaftRemovePeerByID(ctx, id)
	} else {
		what = fmt.Sprintf("address %q", addr)
		err = client.RaftRemovePeerByAddress(ctx, addr)
	}
	if err != nil {
		return c.fail("remove Raft peer with %s: %v", what, err)
	}
	if c.json {
		return c.printJSON(removedPeer{ID: id, Address: addr, Removed: true})
	}
	c.Ui.Output("Removed Raft peer with " + what)
	return 0
}
