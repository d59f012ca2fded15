package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/api"
)

// ACLPolicyCommand is `grid acl policy`.
type ACLPolicyCommand struct{}

// Synopsis implements cli.Command.
func (c *ACLPolicyCommand) Synopsis() string {
	return "Create, list, show and delete ACL policies"
}

// Help implements cli.Command.
func (c *ACLPolicyCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl policy <subcommand> [options] [args]

  Manage ACL policies. A policy is written in HCL, one block per resource
  (agent, node, event, operator), each with a policy of "deny", "read" or
  "write"; write implies read, and deny in any policy of a token wins:

      agent    { policy = "read" }
      node     { policy = "write" }
      event    { policy = "read" }
      operator { policy = "deny" }

  Every command needs a management token.

Subcommands:

  apply     Create or replace a policy from a file
  list      List the policies
  info      Show a policy and its rules
  delete    Delete a policy

  Run 'grid acl policy <subcommand> -help' for the details of each.
`)
}

// HelpTemplate implements cli.CommandHelpTemplate.
func (c *ACLPolicyCommand) HelpTemplate() string { return parentHelpTemplate }

// Run implements cli.Command: a parent command only prints its help.
func (c *ACLPolicyCommand) Run(args []string) int { return cli.RunResultHelp }

// ACLPolicyApplyCommand is `grid acl policy apply`.
type ACLPolicyApplyCommand struct {
	Meta
	// stdin is read for the file "-"; nil means os.Stdin.
	stdin io.Reader
}

// Synopsis implements cli.Command.
func (c *ACLPolicyApplyCommand) Synopsis() string {
	return "Create or replace an ACL policy from a file"
}

// Help implements cli.Command.
func (c *ACLPolicyApplyCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl policy apply -name=NAME [options] FILE

  Create the policy NAME from the HCL in FILE ("-" reads standard input), or
  replace its rules and description if it exists. Tokens that hold the
  policy follow the new rules at once. The rules are checked before they are
  sent: an error names the line and the key at fault.

  With -json the output is the policy, as 'grid acl policy info -json'
  prints it.

Policy Options:

  -name=<name>
    The policy's name: letters, digits, '-', '_' and '.'. Required.

  -description=<text>
    What the policy is for.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyApplyCommand) Run(args []string) int {
	const name = "acl policy apply"
	var policyName, description string
	fs := c.clientFlags(name)
	fs.StringVar(&policyName, "name", "", "")
	fs.StringVar(&description, "description", "", "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	file, err := oneArg(fs.Args(), "FILE")
	if err != nil {
		return c.usageError(name, err)
	}
	if err := acl.ValidPolicyName(policyName); err != nil {
		return c.usageError(name, fmt.Errorf("-name: %w", err))
	}
	var src []byte
	if file == "-" {
		in := c.stdin
		if in == nil {
			in = os.Stdin
		}
		src, err = io.ReadAll(io.LimitReader(in, acl.MaxPolicyBytes+1))
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return c.fail("read policy: %v", err)
	}
	if _, err := acl.ParsePolicy(string(src)); err != nil {
		return c.fail("policy %s: %v", file, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	p, err := client.ACLPolicyApply(ctx, policyName, api.ACLPolicyRequest{Description: description, Rules: string(src)})
	if err != nil {
		return c.fail("%s", prefixed("apply ACL policy "+policyName+": ", err.Error()))
	}
	if c.json {
		return c.printJSON(p)
	}
	c.Ui.Output(fmt.Sprintf("Applied ACL policy %s (modify index %d)", p.Name, p.ModifyIndex))
	return 0
}

// ACLPolicyListCommand is `grid acl policy list`.
type ACLPolicyListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLPolicyListCommand) Synopsis() string { return "List the ACL policies" }

// Help implements cli.Command.
func (c *ACLPolicyListCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl policy list [options]

  List the ACL policies: name and description. With -json the output is a
  list of objects with the fields name, description, create_index and
  modify_index.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyListCommand) Run(args []string) int {
	const name = "acl policy list"
	fs := c.clientFlags(name)
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	return show(&c.Meta, "list ACL policies", listOf((*api.Client).ACLPolicies), c.printPolicies)
}

// printPolicies writes the policies as a table.
func (c *ACLPolicyListCommand) printPolicies(policies []api.ACLPolicy) {
	if len(policies) == 0 {
		c.Ui.Output("No ACL policies")
		return
	}
	rows := make([][]string, 0, len(policies))
	for _, p := range policies {
		rows = append(rows, []string{p.Name, orDash(p.Description)})
	}
	c.printTable([]string{"Name", "Description"}, rows)
}

// ACLPolicyInfoCommand is `grid acl policy info`.
type ACLPolicyInfoCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLPolicyInfoCommand) Synopsis() string { return "Show an ACL policy and its rules" }

// Help implements cli.Command.
func (c *ACLPolicyInfoCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl policy info [options] NAME

  Show the policy NAME: its description and its rules as written. With -json
  the output is an object with the fields name, description, rules,
  create_index and modify_index.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyInfoCommand) Run(args []string) int {
	const name = "acl policy info"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	policyName, err := oneArg(fs.Args(), "NAME")
	if err != nil {
		return c.usageError(name, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	p, err := client.ACLPolicy(ctx, policyName)
	switch {
	case api.IsNotFound(err):
		return c.fail("ACL policy %q not found", policyName)
	case err != nil:
		return c.fail("read ACL policy %s: %v", policyName, err)
	}
	if c.json {
		return c.printJSON(p)
	}
	c.printFields([][2]string{
		{"Name", p.Name},
		{"Description", orDash(p.Description)},
		{"Create Index", strconv.FormatUint(p.CreateIndex, 10)},
		{"Modify Index", strconv.FormatUint(p.ModifyIndex, 10)},
	})
	c.Ui.Output("\nRules:\n\n" + strings.TrimRight(p.Rules, "\n"))
	return 0
}

// ACLPolicyDeleteCommand is `grid acl policy delete`.
type ACLPolicyDeleteCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *ACLPolicyDeleteCommand) Synopsis() string { return "Delete an ACL policy" }

// Help implements cli.Command.
func (c *ACLPolicyDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid acl policy delete [options] NAME

  Delete the policy NAME. Tokens that hold it keep its name, which then
  grants nothing; a policy created again under the name applies to them.
  With -json the output is {"deleted": NAME}.
` + clientHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyDeleteCommand) Run(args []string) int {
	const name = "acl policy delete"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	policyName, err := oneArg(fs.Args(), "NAME")
	if err != nil {
		return c.usageError(name, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	err = client.ACLPolicyDelete(ctx, policyName)
	switch {
	case api.IsNotFound(err):
		return c.fail("ACL policy %q not found", policyName)
	case err != nil:
		return c.fail("%s", prefixed("delete ACL policy "+policyName+": ", err.Error()))
	}
	if c.json {
		return c.printJSON(map[string]string{"deleted": policyName})
	}
	c.Ui.Output("Deleted ACL policy " + policyName)
	return 0
}
