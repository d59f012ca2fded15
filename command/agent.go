package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sutragrid/grid/agent"
	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/mtls"
)

// AgentCommand runs a Grid agent until SIGINT (leave) or SIGTERM (restart).
type AgentCommand struct {
	Meta
}

func (c *AgentCommand) Synopsis() string { return "Run a Grid agent" }

func (c *AgentCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid agent -data-dir=DIR -join=ADDR [options]

  Runs a Grid agent: it joins the servers' gossip pool, registers with the leader,
  heartbeats, and runs the storage nodes the leader orders, restarting them when
  they crash under each node's restart policy and reporting what happens.

    grid agent -bind=127.0.0.21 -name=agent-001 -data-dir=/var/grid/a1 -join=127.0.0.11

  SIGINT (Ctrl-C) makes the agent leave: it stops its storage nodes, unregisters and
  leaves gossip, then exits 0. SIGTERM makes it exit 0 and leave its storage nodes
  running: an agent started again on the same -data-dir adopts the nodes still alive
  and restarts the ones that died. A second signal kills the agent at once.

  Agents run on Linux only; the other commands run on macOS and Windows too.

Agent Options:

  -data-dir=DIR
    Where the agent keeps its state and its nodes' log files. Required.

  -bind=IP
    The IP the agent's listeners and its storage nodes bind to. Default: 127.0.0.1.

  -name=NAME
    The agent's unique name. Default: the hostname, with the bind IP appended when
    -bind is a specific address.

  -join=ADDR
    The gossip address (host or host:port) of a server or agent to join. May be
    given several times. Default port: 7946.

  -retry-interval=DURATION
    The longest wait between join attempts: the first retry comes after 1s,
    and the wait doubles up to this. Default: 30s.

  -retry-max=N
    How many join attempts before giving up and exiting with an error;
    0 retries forever. Default: 0.

  -encrypt=KEY
    Encrypt gossip with KEY, 32 bytes in base64: the servers' key. The key
    seeds the keyring kept in the data dir (serf/local.keyring); once that
    exists, it is used instead, with the keys rotated in since, and -encrypt
    is ignored. Default: none (plaintext gossip).

  -max-nodes=N
    How many storage nodes the agent runs at most. Default: 10.

  -disable-cgroups
    Run nodes without cgroups. By default each node runs in a cgroup of its
    own under the agent's (v2 where the host has it, v1 otherwise): its
    memory limit is a hard limit the kernel enforces, its CPU limit is
    enforced, and stopping it stops every process it started. Where cgroups
    cannot be used (no permission, a container without them) the agent says
    so in its log and in 'grid agent status', and runs nodes without them.
    Default: false.

  -heartbeat-interval=DURATION
    How often the agent heartbeats to the servers. Default: 5s.

  -storage-root=DIR
    The directory inside which every node's storage path must lie.
    Default: the data dir.

  -token=TOKEN
    The agent's ACL token, sent with its calls to the servers: with ACLs on,
    a token whose policy has agent { policy = "write" }, which the agent
    alone should hold (see 'grid acl token create'). Overrides GRID_TOKEN.

  -insecure
    Run on an address other than loopback without TLS or gossip encryption
    (-encrypt), which the agent otherwise refuses. The agent logs a warning
    naming what is off at every start. On a loopback address (127.0.0.0/8, ::1)
    neither is required. Default: false.

  -rpc-port, -gossip-port
    The ports of the agent's gRPC endpoint (8001) and gossip (7946).

  -http-port=PORT
    The port of the agent's HTTP listener, which serves GET /v1/metrics (JSON,
    or ?format=prometheus) and GET /v1/health (200 while the agent runs), over
    HTTPS with TLS. -1 turns it off. Default: 8000.
` + tlsHelp + ` An agent needs an agent certificate
    (grid tls cert create -agent), and obeys callers with a server certificate
    only.

  -node-cert-file=FILE, -node-key-file=FILE
    With TLS: the node certificate and key (grid tls cert create -node) that the
    agent's storage nodes serve with. The agent copies them, with the CA, into
    each node's directory (tls/, mode 0600) and hands them on again on SIGHUP.

Configuration and Logging Options:
` + configHelp + `
` + logHelp + `

  SIGHUP reads the configuration files again and applies log_level, and
  reloads the TLS certificates; a changed key that needs a restart is logged.
`)
}

func (c *AgentCommand) Run(args []string) int {
	// Before the flags: on a Mac the answer is this, not a missing -data-dir.
	if err := agent.CheckPlatform(); err != nil {
		return c.fail("%v", err)
	}
	cfg := agent.DefaultConfig()
	var join stringList
	var lf logFlags
	fs := c.flagSet("agent")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "")
	fs.StringVar(&cfg.BindAddr, "bind", cfg.BindAddr, "")
	fs.StringVar(&cfg.Name, "name", "", "")
	fs.Var(&join, "join", "")
	fs.DurationVar(&cfg.RetryInterval, "retry-interval", cfg.RetryInterval, "")
	fs.IntVar(&cfg.RetryMax, "retry-max", 0, "")
	fs.IntVar(&cfg.MaxNodes, "max-nodes", cfg.MaxNodes, "")
	fs.BoolVar(&cfg.DisableCgroups, "disable-cgroups", cfg.DisableCgroups, "")
	fs.StringVar(&cfg.EncryptKey, "encrypt", "", "")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "")
	fs.StringVar(&cfg.StorageRoot, "storage-root", "", "")
	fs.StringVar(&cfg.Token, "token", os.Getenv(api.TokenEnv), "")
	fs.IntVar(&cfg.RPCPort, "rpc-port", cfg.RPCPort, "")
	fs.IntVar(&cfg.GossipPort, "gossip-port", cfg.GossipPort, "")
	fs.IntVar(&cfg.HTTPPort, "http-port", cfg.HTTPPort, "")
	lf.bind(fs)
	var tf tlsFlags
	tf.bind(fs)
	fs.StringVar(&cfg.NodeCertFile, "node-cert-file", "", "")
	fs.StringVar(&cfg.NodeKeyFile, "node-key-file", "", "")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "")
	conf, code, ok := c.parseConfigured(fs, "agent", args)
	if !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return c.usageError("agent", argsError(fs.Args()))
	case cfg.DataDir == "":
		return c.usageError("agent", fmt.Errorf("-data-dir is required"))
	case cfg.MaxNodes < 1:
		return c.usageError("agent", fmt.Errorf("-max-nodes must be at least 1"))
	case cfg.HeartbeatInterval <= 0:
		return c.usageError("agent", fmt.Errorf("-heartbeat-interval must be positive"))
	case cfg.RetryInterval <= 0:
		return c.usageError("agent", fmt.Errorf("-retry-interval must be positive"))
	}
	cfg.Join = join
	var err error
	if cfg.TLS, err = tf.load(mtls.RoleAgent); err != nil {
		return c.usageError("agent", err)
	}
	logger, closeLog, err := lf.newLogger("agent")
	if err != nil {
		return c.usageError("agent", err)
	}
	defer closeLog()
	cfg.Logger = logger
	return runAgent(c.Ui, cfg, conf.reloader(logger, lf.live(logger)))
}

// runAgent starts an agent and runs it until a signal: SIGINT leaves for good,
// SIGTERM (or a fatal error) shuts down and leaves the storage nodes running.
// SIGHUP runs reloadConfig (when not nil), then reloads the TLS certificates.
func runAgent(ui interface{ Error(string) }, cfg *agent.Config, reloadConfig func() error) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hup := catchHangups(cfg.TLS != nil || reloadConfig != nil)
	a, err := agent.New(cfg)
	if err != nil {
		hup.serve(nil)
		ui.Error("Error: start agent: " + err.Error())
		return 1
	}
	var reloadTLS func() error
	if cfg.TLS != nil {
		reloadTLS = a.ReloadTLS
	}
	defer hup.serve(hangups(reloadConfig, reloadTLS))()
	code, leave := 0, false
	select {
	case sig := <-sigs:
		leave = sig == os.Interrupt
		cfg.Logger.Info("caught signal", "signal", sig.String(), "leave", leave)
	case err := <-a.Fatal():
		ui.Error("Error: " + err.Error())
		code = 1
	}
	signal.Stop(sigs) // a second signal kills the process the default way
	stop, timeout := a.Shutdown, 30*time.Second
	if leave {
		stop, timeout = a.Leave, 90*time.Second
	}
	done := make(chan error, 1)
	go func() { done <- stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			cfg.Logger.Warn("stopped with errors", "error", err)
		}
	case <-ctx.Done():
		ui.Error("Error: agent shutdown timed out")
		return 1
	}
	return code
}
