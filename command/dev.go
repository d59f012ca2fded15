package command

import (
	"fmt"
	"os"
	"strings"

	"github.com/sutragrid/grid/server"
)

// DevCommand runs a whole grid in one process for trying Grid on one machine.
type DevCommand struct {
	Meta
}

func (c *DevCommand) Synopsis() string { return "Run a single-process grid for development" }

func (c *DevCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid dev [options]

  Runs a grid on this machine for trying Grid out: one server that bootstraps
  itself (-bootstrap-expect=1) on 127.0.0.1 with the default ports, keeping its
  state in a temporary directory that is removed on exit. Nothing it does
  survives a restart.

Options:

  -bind=IP
    The IP to listen on. Default: 127.0.0.1.

  -log-level=LEVEL
    trace, debug, info, warn or error. Default: info.
`)
}

func (c *DevCommand) Run(args []string) int {
	cfg := server.DefaultConfig()
	var logLevel string
	fs := c.flagSet("dev")
	fs.StringVar(&cfg.BindAddr, "bind", cfg.BindAddr, "")
	fs.StringVar(&logLevel, "log-level", "info", "")
	if err := fs.Parse(args); err != nil {
		return c.usageError("dev", err)
	}
	logger, err := newLogger("dev", logLevel)
	if err != nil {
		return c.usageError("dev", err)
	}
	dir, err := os.MkdirTemp("", "grid-dev-*")
	if err != nil {
		return c.fail("create data dir: %v", err)
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir
	cfg.BootstrapExpect = 1
	cfg.NodeName = "dev"
	cfg.Logger = logger
	addr := fmt.Sprintf("http://%s:%d", cfg.BindAddr, cfg.HTTPPort)
	c.Ui.Output(fmt.Sprintf(`==> Grid dev mode: one server, state in %s (removed on exit)

    HTTP API:  %s
    Try:       grid members -address=%s
               grid operator raft list-peers -address=%s

    Press Ctrl-C to stop.
`, dir, addr, addr, addr))
	return runServer(c.Ui, cfg)
}
