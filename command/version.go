package command

import (
	"strings"

	"github.com/sutragrid/grid/version"
)

// VersionCommand is `grid version`. It needs no server.
type VersionCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *VersionCommand) Synopsis() string {
	return "Print the version of this binary"
}

// Help implements cli.Command.
func (c *VersionCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid version [options]

  Print the version of this grid binary, for example "Grid v0.1.0-dev".
  It does not contact a server: run 'grid members' to see the version of
  every member of a cluster.

Output Options:

  -json
    Print the output as JSON: {"version": "0.1.0-dev"}.
`)
}

// versionOutput is the -json output of version.
type versionOutput struct {
	Version string `json:"version"`
}

// Run implements cli.Command.
func (c *VersionCommand) Run(args []string) int {
	const name = "version"
	fs := c.flagSet(name)
	fs.BoolVar(&c.json, "json", false, "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	if c.json {
		return c.printJSON(versionOutput{Version: version.String()})
	}
	c.Ui.Output("Grid v" + version.String())
	return 0
}
