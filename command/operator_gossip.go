package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/gossip"
)

// OperatorGossipCommand is `grid operator gossip`.
type OperatorGossipCommand struct{}

// Synopsis implements cli.Command.
func (c *OperatorGossipCommand) Synopsis() string {
	return "Manage the gossip encryption keys"
}

// Help implements cli.Command.
func (c *OperatorGossipCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator gossip <subcommand> [options]

  Operate the gossip pool that servers and agents share: manage the keys
  that encrypt it.

Subcommands:

  keyring    List, install, use and remove gossip encryption keys

  Rotate the gossip key of a grid, without a restart:

      $ NEW=$(grid operator gossip keyring -generate)
      $ grid operator gossip keyring -install=$NEW
      $ grid operator gossip keyring -use=$NEW
      $ grid operator gossip keyring -remove=<the old key>

  Run 'grid operator gossip <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *OperatorGossipCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *OperatorGossipCommand) Run(args []string) int { return cli.RunResultHelp }

// OperatorGossipKeyringCommand is `grid operator gossip keyring`.
type OperatorGossipKeyringCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorGossipKeyringCommand) Synopsis() string {
	return "List, install, use and remove gossip encryption keys"
}

// Help implements cli.Command.
func (c *OperatorGossipKeyringCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator gossip keyring [options]

  Manage the keys that encrypt gossip. Every member, server or agent, started
  with -encrypt holds a keyring: it encrypts gossip with the keyring's primary
  key and decrypts with any of its keys. Each change goes to every alive
  member through the server at -address, and each member keeps its keyring
  in its data directory (serf/local.keyring), so a rotation needs no restart
  and no downtime. Exactly one operation is required.

  Rotate the key:

      $ grid operator gossip keyring -generate
      3JlvX7a8gxbmeG1Bk0Tz2sl3d7ZC8B3ux1R4cy0pq0E=
      $ grid operator gossip keyring -install=3JlvX7a8gxbmeG1Bk0Tz2sl3d7ZC8B3ux1R4cy0pq0E=
      $ grid operator gossip keyring -use=3JlvX7a8gxbmeG1Bk0Tz2sl3d7ZC8B3ux1R4cy0pq0E=
      $ grid operator gossip keyring -remove=<the old key>

  A member that is down during a rotation misses it; once the old key is
  removed it can no longer join. Check with -list that every member holds
  every key before -use and -remove.

Keyring Options:

  -generate
    Print a new random key, 32 bytes in base64, for -encrypt or -install.
    Needs no server.

  -list
    List the keys installed on the members: how many use each key as their
    primary key, and how many hold it. With -json: an object with members,
    responses and keys, each with key, members and primary_members.

  -install=<key>
    Install a key on every member, which then decrypts gossip encrypted
    with it too.

  -use=<key>
    Make an installed key every member's primary key, the one it
    encrypts with.

  -remove=<key>
    Remove a key from every member. The primary key cannot be removed.
` + clientHelp)
}

// keyringOps are the operations of the keyring command, one of which is required.
var keyringOps = []string{"generate", "list", "install", "use", "remove"}

// Run implements cli.Command.
func (c *OperatorGossipKeyringCommand) Run(args []string) int {
	const name = "operator gossip keyring"
	var generate, list bool
	var install, use, remove string
	fs := c.clientFlags(name)
	fs.BoolVar(&generate, "generate", false, "")
	fs.BoolVar(&list, "list", false, "")
	fs.StringVar(&install, "install", "", "")
	fs.StringVar(&use, "use", "", "")
	fs.StringVar(&remove, "remove", "", "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	op, err := keyringOp(fs)
	if err != nil {
		return c.usageError(name, err)
	}
	key := map[string]string{"install": install, "use": use, "remove": remove}[op]
	if op == "install" || op == "use" || op == "remove" {
		if err := gossip.ValidKey(key); err != nil {
			return c.usageError(name, fmt.Errorf("-%s: %w", op, err))
		}
	}
	if op == "generate" {
		return c.generate()
	}

	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if op == "list" {
		resp, err := client.KeyringList(ctx)
		if err != nil {
			return c.fail("list gossip keys: %v", err)
		}
		return c.printKeyring(resp)
	}
	change := map[string]struct {
		call       func(context.Context, string) (*api.KeyringResponse, error)
		what, done string
	}{
		"install": {client.KeyringInstall, "install gossip key", "Installed the key on"},
		"use":     {client.KeyringUse, "use gossip key", "Made the key primary on"},
		"remove":  {client.KeyringRemove, "remove gossip key", "Removed the key from"},
	}[op]
	resp, err := change.call(ctx, key)
	if err != nil {
		return c.fail("%s: %v", change.what, err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	c.Ui.Output(change.done + " " + allMembers(resp.Members))
	c.printMessages(resp.Messages)
	return 0
}

// allMembers says "all 4 members", or "the one member".
func allMembers(n int) string {
	if n == 1 {
		return "the one member"
	}
	return fmt.Sprintf("all %d members", n)
}

// keyringOp returns the one operation the flags ask for.
func keyringOp(fs *flag.FlagSet) (string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var ops []string
	for _, op := range keyringOps {
		if set[op] {
			ops = append(ops, "-"+op)
		}
	}
	switch len(ops) {
	case 0:
		return "", errors.New("one of -generate, -list, -install, -use or -remove is required")
	case 1:
		return strings.TrimPrefix(ops[0], "-"), nil
	}
	return "", fmt.Errorf("%s are mutually exclusive: give one", strings.Join(ops, " and "))
}

// generatedKey is the -json output of -generate.
type generatedKey struct {
	Key string `json:"key"`
}

func (c *OperatorGossipKeyringCommand) generate() int {
	key, err := gossip.GenerateKey()
	if err != nil {
		return c.fail("%v", err)
	}
	if c.json {
		return c.printJSON(generatedKey{Key: key})
	}
	c.Ui.Output(key)
	return 0
}

// printKeyring prints the keys of a listing, with how many of the members use each
// as their primary key and how many hold it.
func (c *OperatorGossipKeyringCommand) printKeyring(resp *api.KeyringResponse) int {
	if resp.Keys == nil {
		resp.Keys = []api.KeyringKey{}
	}
	if c.json {
		return c.printJSON(resp)
	}
	rows := make([][]string, 0, len(resp.Keys))
	for _, k := range resp.Keys {
		rows = append(rows, []string{k.Key,
			fmt.Sprintf("%d/%d", k.PrimaryMembers, resp.Members),
			fmt.Sprintf("%d/%d", k.Members, resp.Members)})
	}
	c.printTable([]string{"Key", "Primary", "Installed"}, rows)
	c.printMessages(resp.Messages)
	return 0
}

// printMessages prints what members said besides success, such as a truncated key
// list, on stderr.
func (c *OperatorGossipKeyringCommand) printMessages(msgs map[string]string) {
	names := make([]string, 0, len(msgs))
	for n := range msgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.Ui.Warn(fmt.Sprintf("Note: %s: %s", n, msgs[n]))
	}
}
