package command

import (
	"context"
	"errors"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// ACLTokenCommand is `grid acl token`.
type ACLTokenCommand struct{}

// Synopsis implements cli.Command.
func (c *ACLTokenCommand) Synopsis() string {
	return "Create, list, show and delete ACL tokens"
}

// Help implements cli.Command.
func (c *ACLTokenCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token <subcommand> [options] [args]

  Manage ACL tokens. A token has an accessor ID, which names it, and a
  secret ID, which is the token itself: send it with -token, GRID_TOKEN or
  the X-Grid-Token header. The servers keep a hash of the secret, so the
  secret is shown once, when the token is created.

  'self' needs just a token; the other commands need a management token.

Subcommands:

  create    Create a token
  list      List the tokens
  info      Show a token
  delete    Delete a token: every server refuses it within a second
  self      Show the token you send

  Run 'grid acl token <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *ACLTokenCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *ACLTokenCommand) Run(args []string) int { return cli.RunResultHelp }

// tokenFieldsHelp describes the fields of a token in -json output.
const tokenFieldsHelp = `accessor_id, name,
  description, policies, management, create_time, create_index and
  modify_index`

// ACLTokenCreateCommand is `grid acl token create`.
type ACLTokenCreateCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLTokenCreateCommand) Synopsis() string { return "Create an ACL token" }

// Help implements cli.Command.
func (c *ACLTokenCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token create [options]

  Create a token that holds the policies given with -policy, or a management
  token (-management), and print it with its secret ID. This is the one time
  the secret is shown.

      $ grid acl token create -name=ci -policy=readers -policy=deploy

  The token's name is what spawn and stop events record as requested_by.
  With -json the output is an object with the fields secret_id, ` + tokenFieldsHelp + `.

Token Options:

  -name=<name>
    The token's name, for people: who or what holds it.

  -description=<text>
    What the token is for.

  -policy=<name>
    A policy the token holds. May be given several times. Required unless
    -management is given.

  -management
    Create a management token, which may do everything.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLTokenCreateCommand) Run(args []string) int {
	const name = "acl token create"
	var (
		req      api.ACLTokenRequest
		policies stringList
	)
	fs := c.clientFlags(name)
	fs.StringVar(&req.Name, "name", "", "")
	fs.StringVar(&req.Description, "description", "", "")
	fs.Var(&policies, "policy", "")
	fs.BoolVar(&req.Management, "management", false, "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	req.Policies = policies
	switch {
	case req.Management && len(policies) > 0:
		return c.usageError(name, errors.New("-management and -policy are mutually exclusive: a management token may do everything"))
	case !req.Management && len(policies) == 0:
		return c.usageError(name, errors.New("give at least one -policy, or -management"))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	tok, err := client.ACLTokenCreate(ctx, req)
	if err != nil {
		return c.fail("%s", prefixed("create ACL token: ", err.Error()))
	}
	if c.json {
		return c.printJSON(tok)
	}
	c.printToken(tok)
	return 0
}

// ACLTokenListCommand is `grid acl token list`.
type ACLTokenListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLTokenListCommand) Synopsis() string { return "List the ACL tokens" }

// Help implements cli.Command.
func (c *ACLTokenListCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token list [options]

  List the tokens, without their secrets: name, type, accessor ID and
  policies. With -json the output is a list of objects with the fields
  ` + tokenFieldsHelp + `.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLTokenListCommand) Run(args []string) int {
	const name = "acl token list"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	return show(&c.Meta, "list ACL tokens", listOf((*api.Client).ACLTokens), c.printTokens)
}

// printTokens writes the tokens as a table, without their secrets.
func (c *ACLTokenListCommand) printTokens(tokens []api.ACLToken) {
	if len(tokens) == 0 {
		c.Ui.Output("No ACL tokens")
		return
	}
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		typ, policies := "client", strings.Join(t.Policies, ",")
		if t.Management {
			typ, policies = "management", "-"
		}
		rows = append(rows, []string{orDash(t.Name), typ, t.AccessorID, policies})
	}
	c.printTable([]string{"Name", "Type", "Accessor ID", "Policies"}, rows)
}

// ACLTokenInfoCommand is `grid acl token info`.
type ACLTokenInfoCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLTokenInfoCommand) Synopsis() string { return "Show an ACL token" }

// Help implements cli.Command.
func (c *ACLTokenInfoCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token info [options] ACCESSOR_ID

  Show the token with ACCESSOR_ID, without its secret. With -json the output
  is an object with the fields ` + tokenFieldsHelp + `.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLTokenInfoCommand) Run(args []string) int {
	const name = "acl token info"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	id, err := oneArg(fs.Args(), "ACCESSOR_ID")
	if err != nil {
		return c.usageError(name, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	tok, err := client.ACLToken(ctx, id)
	switch {
	case api.IsNotFound(err):
		return c.fail("ACL token %q not found", id)
	case err != nil:
		return c.fail("read ACL token %s: %v", id, err)
	}
	if c.json {
		return c.printJSON(tok)
	}
	c.printToken(tok)
	return 0
}

// ACLTokenDeleteCommand is `grid acl token delete`.
type ACLTokenDeleteCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLTokenDeleteCommand) Synopsis() string { return "Delete an ACL token" }

// Help implements cli.Command.
func (c *ACLTokenDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token delete [options] ACCESSOR_ID

  Delete the token with ACCESSOR_ID. Every server refuses it as soon as it
  applies the deletion, within a second. With -json the output is
  {"deleted": ACCESSOR_ID}.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLTokenDeleteCommand) Run(args []string) int {
	const name = "acl token delete"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	id, err := oneArg(fs.Args(), "ACCESSOR_ID")
	if err != nil {
		return c.usageError(name, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	err = client.ACLTokenDelete(ctx, id)
	switch {
	case api.IsNotFound(err):
		return c.fail("ACL token %q not found", id)
	case err != nil:
		return c.fail("%s", prefixed("delete ACL token "+id+": ", err.Error()))
	}
	if c.json {
		return c.printJSON(map[string]string{"deleted": id})
	}
	c.Ui.Output("Deleted ACL token " + id)
	return 0
}

// ACLTokenSelfCommand is `grid acl token self`.
type ACLTokenSelfCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLTokenSelfCommand) Synopsis() string { return "Show the ACL token you send" }

// Help implements cli.Command.
func (c *ACLTokenSelfCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl token self [options]

  Show the token that -token or GRID_TOKEN gives, without its secret: which
  one it is and what it holds. Any token may read itself. With -json the
  output is an object with the fields ` + tokenFieldsHelp + `.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLTokenSelfCommand) Run(args []string) int {
	const name = "acl token self"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	return show(&c.Meta, "read your ACL token", (*api.Client).ACLTokenSelf, c.printToken)
}
