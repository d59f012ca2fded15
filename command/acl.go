package command

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// ACLCommand is `grid acl`: the parent of the commands that manage ACLs.
type ACLCommand struct{}

// Synopsis implements cli.Command.
func (c *ACLCommand) Synopsis() string {
	return "Bootstrap ACLs and manage their policies and tokens"
}

// Help implements cli.Command.
func (c *ACLCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl <subcommand> [options] [args]

  Manage the access control of a Grid cluster. A token (sent with -token,
  GRID_TOKEN or the X-Grid-Token header) holds policies; a policy grants deny,
  read or write on each of the resources agent, node, event and operator. A
  management token may do everything. The servers enforce ACLs when they run
  with -acl-enabled; policies and tokens can be created before, so that agents
  have their tokens when ACLs are turned on.

Subcommands:

  bootstrap    Create the first management token
  policy       Create, list, show and delete policies
  token        Create, list, show and delete tokens

  Bootstrap the ACLs once, and keep the secret it prints:

      $ grid acl bootstrap

  Give a CI job a token that may read everything and spawn and stop nodes:

      $ grid acl policy apply -name=deploy deploy.hcl
      $ grid acl token create -name=ci -policy=deploy

  Run 'grid acl <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *ACLCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *ACLCommand) Run(args []string) int { return cli.RunResultHelp }

// ACLBootstrapCommand is `grid acl bootstrap`.
type ACLBootstrapCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLBootstrapCommand) Synopsis() string {
	return "Create the first management token"
}

// Help implements cli.Command.
func (c *ACLBootstrapCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl bootstrap [options]

  Create the first management token of a cluster, and print it with its
  secret ID. The servers keep only a hash
  of the secret: this is the one time it is shown. Keep it safe; use it to
  create policies and less powerful tokens.

  The bootstrap works once. A second one fails with the reset index; to
  bootstrap again (the management token is lost), write that number into
  the file acl-bootstrap-reset in the leader's data directory and run the
  command again. See website/security.md.

  With -json the output is an object with the fields of 'grid acl token info'
  and secret_id.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLBootstrapCommand) Run(args []string) int {
	const name = "acl bootstrap"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	tok, err := client.ACLBootstrap(ctx)
	if err != nil {
		return c.fail("ACL bootstrap: %s", strings.TrimPrefix(err.Error(), "ACL bootstrap: "))
	}
	if c.json {
		return c.printJSON(tok)
	}
	c.printToken(tok)
	return 0
}

// printToken prints a token's fields, its secret ID when it has one.
func (m *Meta) printToken(t *api.ACLToken) {
	typ, policies := "client", strings.Join(t.Policies, ", ")
	if t.Management {
		typ, policies = "management", "n/a"
	}
	lines := [][2]string{{"Accessor ID", t.AccessorID}}
	if t.SecretID != "" {
		lines = append(lines, [2]string{"Secret ID", t.SecretID})
	}
	lines = append(lines,
		[2]string{"Name", orDash(t.Name)},
		[2]string{"Description", orDash(t.Description)},
		[2]string{"Type", typ},
		[2]string{"Policies", orDash(policies)},
		[2]string{"Create Time", t.CreateTime.UTC().Format("2006-01-02T15:04:05Z07:00")},
		[2]string{"Create Index", strconv.FormatUint(t.CreateIndex, 10)},
	)
	m.printFields(lines)
}

// printFields prints "Key = value" lines, the values aligned.
func (m *Meta) printFields(lines [][2]string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t= %s\n", l[0], l[1])
	}
	tw.Flush()
	m.Ui.Output(strings.TrimRight(b.String(), "\n"))
}

// oneArg checks that args is exactly one non-empty argument, what.
func oneArg(args []string, what string) (string, error) {
	switch {
	case len(args) == 0:
		return "", fmt.Errorf("missing argument: the %s", what)
	case len(args) > 1:
		return "", argsError(args[1:])
	case strings.TrimSpace(args[0]) == "":
		return "", errEmptyArg(what)
	}
	return args[0], nil
}
