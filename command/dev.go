package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/agent"
	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/mtls"
	"github.com/sutragrid/grid/server"
	"github.com/sutragrid/grid/storage"
)

// The dev grid's names and the ports that are not its members' defaults: the agent
// shares the machine with the server, so it gossips on the next port.
const (
	devServerName      = "dev"
	devAgentName       = "dev-agent"
	devAgentGossipPort = server.DefaultGossipPort + 1
	devEventStorePort  = 50052
)

// Budgets of the dev grid's shutdown, step by step.
const (
	devAgentLeaveTimeout = 90 * time.Second // stop every node, report, unregister
	devServerStopTimeout = 30 * time.Second
	devStoreStopTimeout  = 20 * time.Second
)

// DevCommand runs a whole grid in one process for trying Grid on one machine.
type DevCommand struct {
	Meta
}

func (c *DevCommand) Synopsis() string {
	return "Run a server, an agent and an event store in one process"
}

func (c *DevCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid dev [options]

  Runs a complete grid on this machine, in one process, for trying Grid out:

    - an event store (a storage node) on port 50052,
    - one server that bootstraps itself (-bootstrap-expect=1), named "dev",
      with the default ports (HTTP 7000, gRPC 7001, Raft 7002, gossip 7946)
      and the event store configured, and
    - one agent named "dev-agent" (HTTP 8000 for its metrics, gRPC 8001,
      gossip 7947) that joins the server and runs the storage nodes you spawn.

  Everything listens on 127.0.0.1 (or -bind: a loopback address, unless
  -secure or -insecure is given) and keeps its state in one temporary
  directory that is removed on exit: nothing survives a restart.

  Once the agent has registered, grid dev prints commands to try in another
  terminal, such as 'grid status' and
  'grid node spawn -agent=dev-agent -port=50061'.

  Ctrl-C (SIGINT) or SIGTERM stops it: the agent stops its storage nodes and
  leaves, then the server and the event store stop, and grid dev exits 0. A
  second signal kills it at once.

  With -secure, the dev grid runs as a grid off loopback must: with mutual
  TLS, gossip encryption and ACLs. grid dev makes a CA, the certificates of
  the server, the agent, the storage nodes and a client, and a gossip key, in
  its directory (tls/); bootstraps ACLs; gives the agent a token of its own;
  and prints the exports (GRID_ADDR, GRID_CACERT, GRID_CLIENT_CERT,
  GRID_CLIENT_KEY, GRID_TOKEN, the management token) that the CLI needs in
  another terminal.

  Like agents, grid dev runs on Linux only.

Options:

  -bind=IP
    The IP every listener binds to. Default: 127.0.0.1.

  -secure
    Run with TLS, gossip encryption and ACLs, as described above. The HTTP API
    then requires the client certificate. Default: false.

  -insecure
    With -bind other than a loopback address, run without TLS, gossip
    encryption and ACLs, as the server's and the agent's -insecure; the server
    and the agent each log a warning. Without -secure or -insecure, grid dev
    refuses such an address. Default: false.

  -log-level=LEVEL
    trace, debug, info, warn or error. Default: info.
`)
}

func (c *DevCommand) Run(args []string) int {
	const name = "dev"
	if err := agent.CheckPlatform(); err != nil {
		return c.fail("grid dev runs an agent, and %v", err)
	}
	var bind, logLevel string
	var secure, insecure bool
	fs := c.flagSet(name)
	fs.StringVar(&bind, "bind", "127.0.0.1", "")
	fs.BoolVar(&secure, "secure", false, "")
	fs.BoolVar(&insecure, "insecure", false, "")
	fs.StringVar(&logLevel, "log-level", "info", "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	ip := net.ParseIP(bind)
	switch {
	case ip == nil:
		return c.usageError(name, fmt.Errorf("-bind=%q is not an IP address", bind))
	case secure && insecure:
		return c.usageError(name, fmt.Errorf("-secure and -insecure exclude each other"))
	case !ip.IsLoopback() && !secure && !insecure:
		return c.usageError(name, fmt.Errorf("-bind=%s is not a loopback address: give -secure to run with TLS, gossip encryption and ACLs, or -insecure to run without them", bind))
	}
	logger, err := newLogger("dev", logLevel)
	if err != nil {
		return c.usageError(name, err)
	}
	dir, err := os.MkdirTemp("", "grid-dev-*")
	if err != nil {
		return c.fail("create the dev grid's directory: %v", err)
	}
	defer os.RemoveAll(dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Ui.Output(fmt.Sprintf("==> Starting a Grid dev grid in %s (removed on exit)", dir))
	var sec *devSecurity
	if secure {
		if sec, err = newDevSecurity(dir, bind); err != nil {
			return c.fail("set up the dev grid's TLS and gossip key: %v", err)
		}
		c.Ui.Output(fmt.Sprintf("==> Secure: a CA and certificates in %s, a gossip key, and ACLs", filepath.Dir(sec.ca)))
	}
	g, err := startDevGrid(ctx, dir, bind, sec, insecure, logger)
	if err != nil {
		return c.fail("start the dev grid: %v", err)
	}
	code := 0
	switch err := g.waitReady(ctx, logger); {
	case err == nil:
		c.Ui.Output(devBanner(g, bind, sec))
		err = g.run(ctx)
		if err != nil {
			c.Ui.Error("Error: " + err.Error())
			code = 1
		}
	case ctx.Err() == nil:
		c.Ui.Error("Error: " + err.Error())
		code = 1
	}
	stop() // a second signal kills the process the default way
	logger.Info("stopping: the agent stops its nodes and leaves, then the server and the event store stop")
	if err := g.stop(logger); err != nil {
		c.Ui.Error("Error: " + err.Error())
		return 1
	}
	return code
}

// devGrid is the dev grid's three members, running in this process.
type devGrid struct {
	store       *storage.Server
	storeCancel context.CancelFunc
	storeDone   chan error
	server      *server.Server
	agent       *agent.Agent
}

// startDevGrid starts the event store, the server, and the agent, in that order, with
// their state under dir. With sec, everything runs with TLS and gossip encryption,
// and the server with ACLs, which it bootstraps before the agent starts, with a
// token of its own. On error it stops what it started.
func startDevGrid(ctx context.Context, dir, bind string, sec *devSecurity, insecure bool, logger hclog.Logger) (_ *devGrid, err error) {
	g := &devGrid{}
	defer func() {
		if err != nil {
			if serr := g.stop(logger); serr != nil {
				logger.Warn("stopping after a failed start", "error", serr)
			}
		}
	}()

	scfg := storage.DefaultConfig()
	scfg.BindAddr, scfg.Port, scfg.DataDir = bind, devEventStorePort, filepath.Join(dir, "event-store")
	scfg.Logger = logger.Named("event-store")
	if sec != nil {
		if scfg.TLS, err = mtls.LoadRole(sec.node, mtls.RoleNode); err != nil {
			return g, fmt.Errorf("event store: %w", err)
		}
	}
	if g.store, err = storage.New(scfg); err != nil {
		return g, fmt.Errorf("event store: %w", err)
	}
	storeCtx, cancel := context.WithCancel(context.Background())
	g.storeCancel, g.storeDone = cancel, make(chan error, 1)
	go func() { g.storeDone <- g.store.Serve(storeCtx) }()

	cfg := server.DefaultConfig()
	cfg.NodeName = devServerName
	cfg.BindAddr = bind
	cfg.DataDir = filepath.Join(dir, "server")
	cfg.BootstrapExpect = 1
	cfg.EventStores = []string{g.store.Addr().String()}
	cfg.Logger = logger.Named("server")
	cfg.Insecure = insecure
	if sec != nil {
		if cfg.TLS, err = mtls.LoadRole(sec.server, mtls.RoleServer); err != nil {
			return g, fmt.Errorf("server: %w", err)
		}
		cfg.EncryptKey, cfg.ACLEnabled, cfg.VerifyHTTPSClient = sec.gossipKey, true, true
	}
	if g.server, err = server.New(cfg); err != nil {
		return g, fmt.Errorf("server: %w", err)
	}
	if sec != nil {
		if err := sec.bootstrap(ctx, g.server); err != nil {
			return g, err
		}
	}

	acfg := agent.DefaultConfig()
	acfg.Name = devAgentName
	acfg.BindAddr = bind
	acfg.DataDir = filepath.Join(dir, "agent")
	acfg.GossipPort = devAgentGossipPort
	acfg.Join = []string{g.server.GossipAddr()}
	acfg.RetryInterval = time.Second
	if acfg.StorageBinary, err = os.Executable(); err != nil {
		return g, fmt.Errorf("find the grid binary to run storage nodes with: %w", err)
	}
	acfg.Logger = logger.Named("agent")
	acfg.Insecure = insecure
	if sec != nil {
		if acfg.TLS, err = mtls.LoadRole(sec.agent, mtls.RoleAgent); err != nil {
			return g, fmt.Errorf("agent: %w", err)
		}
		acfg.NodeCertFile, acfg.NodeKeyFile = sec.node.CertFile, sec.node.KeyFile
		acfg.EncryptKey, acfg.Token = sec.gossipKey, sec.agentToken
	}
	if g.agent, err = agent.New(acfg); err != nil {
		return g, fmt.Errorf("agent: %w", err)
	}
	return g, nil
}

// waitReady waits until the server leads and the agent has registered healthy. It
// warns, and keeps waiting, when that takes long.
func (g *devGrid) waitReady(ctx context.Context, logger hclog.Logger) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	warn := time.After(30 * time.Second)
	for {
		if g.server.IsLeader() {
			if a, err := g.server.State().Agent(devAgentName); err == nil && a != nil && a.Status == fsm.AgentHealthy {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-g.server.Fatal():
			return fmt.Errorf("server: %w", err)
		case err := <-g.agent.Fatal():
			return fmt.Errorf("agent: %w", err)
		case err := <-g.storeDone:
			g.storeDone <- err // for stop
			return fmt.Errorf("event store stopped: %v", err)
		case <-warn:
			logger.Warn("still waiting for the server to lead and the agent to register", "agent", devAgentName)
		case <-tick.C:
		}
	}
}

// run waits for a signal (ctx) or for a member to fail.
func (g *devGrid) run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-g.server.Fatal():
		return fmt.Errorf("server: %w", err)
	case err := <-g.agent.Fatal():
		return fmt.Errorf("agent: %w", err)
	case err := <-g.storeDone:
		g.storeDone <- err
		return fmt.Errorf("event store stopped: %v", err)
	}
}

// stop stops what runs: the agent leaves (stopping its nodes and reporting them
// stopped while the server still runs), then the server stops, then the event store.
func (g *devGrid) stop(logger hclog.Logger) error {
	var errs []error
	if g.agent != nil {
		if err := within(devAgentLeaveTimeout, g.agent.Leave); errors.Is(err, errTimedOut) {
			errs = append(errs, fmt.Errorf("agent: leave %w", err))
		} else if err != nil {
			logger.Warn("the agent left with errors", "error", err)
		}
	}
	if g.server != nil {
		if err := within(devServerStopTimeout, g.server.Shutdown); errors.Is(err, errTimedOut) {
			errs = append(errs, fmt.Errorf("server: shutdown %w", err))
		} else if err != nil {
			logger.Warn("the server stopped with errors", "error", err)
		}
	}
	if g.storeCancel != nil {
		g.storeCancel()
		select {
		case err := <-g.storeDone:
			if err != nil {
				logger.Warn("the event store stopped with errors", "error", err)
			}
		case <-time.After(devStoreStopTimeout):
			errs = append(errs, fmt.Errorf("event store: stop %w", errTimedOut))
		}
	} else if g.store != nil {
		_ = g.store.Close() // created but never served
	}
	return errors.Join(errs...)
}

var errTimedOut = errors.New("timed out")

// within runs f and returns its error, or errTimedOut if it takes longer than timeout
// (f then goes on in the background).
func within(timeout time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return errTimedOut
	}
}

// devBanner tells how to reach the dev grid and what to try.
func devBanner(g *devGrid, bind string, sec *devSecurity) string {
	addr := "http://" + net.JoinHostPort(bind, strconv.Itoa(server.DefaultHTTPPort))
	var env string
	switch {
	case sec != nil:
		addr = "https" + strings.TrimPrefix(addr, "http")
		env = sec.exports(bind)
	case addr != api.DefaultAddress:
		env = "    export GRID_ADDR=" + addr + "\n"
	}
	return fmt.Sprintf(`==> Grid dev grid is ready: a server, an agent and an event store in one process

    Server:       %s, HTTP API %s
    Agent:        %s, gRPC %s
    Event store:  %s
    Control UI:   %s/ui/ (in a browser)

==> Try, in another terminal:

%s    grid status
    grid agent status
    grid node spawn -agent=%s -port=50061
    grid node status
    grid event list
    grid event tail

    Press Ctrl-C to stop: the agent stops its nodes and leaves, then the
    server and the event store stop, and the state is removed.
`, devServerName, addr, g.agent.Name(), g.agent.RPCAddr(), g.store.Addr(), addr, env, devAgentName)
}
