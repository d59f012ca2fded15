package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sutragrid/grid/mtls"
	"github.com/sutragrid/grid/server"
)

// ServerCommand runs a Grid server until SIGINT or SIGTERM.
type ServerCommand struct {
	Meta
}

func (c *ServerCommand) Synopsis() string { return "Run a Grid server" }

func (c *ServerCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid server -data-dir=DIR [options]

  Runs a Grid server: a Raft peer that keeps the cluster's replicated state, a gossip
  member, and the HTTP API. Servers find each other over gossip; once a server sees
  -bootstrap-expect servers, none of which belongs to a cluster yet, they bootstrap
  Raft together. A server with existing Raft state rejoins its cluster instead.

  Three servers on one machine, on loopback addresses:

    grid server -bind=127.0.0.11 -data-dir=/var/grid/s1 -bootstrap-expect=3
    grid server -bind=127.0.0.12 -data-dir=/var/grid/s2 -bootstrap-expect=3 -join=127.0.0.11
    grid server -bind=127.0.0.13 -data-dir=/var/grid/s3 -bootstrap-expect=3 -join=127.0.0.11

  SIGINT or SIGTERM makes the server leave gossip gracefully and exit 0.

Server Options:

  -data-dir=DIR
    Where the server keeps its Raft log, snapshots and ID. Required.

  -bind=IP
    The IP every listener binds to. Default: 127.0.0.1.

  -name=NAME
    The server's unique gossip name. Default: the hostname, with the bind IP
    appended when -bind is a specific address.

  -bootstrap-expect=N
    Bootstrap Raft once N servers are seen. 0 joins an existing cluster only;
    1 runs a single-server grid. Default: 0.

  -join=ADDR
    The gossip address (host or host:port) of a member to join. May be given
    several times. Default port: 7946.

  -retry-interval=DURATION
    The longest wait between join attempts: the first retry comes after 1s,
    and the wait doubles up to this. Default: 30s.

  -retry-max=N
    How many join attempts before giving up and exiting with an error;
    0 retries forever. Default: 0.

  -encrypt=KEY
    Encrypt gossip with KEY, 32 bytes in base64 ('grid operator gossip
    keyring -generate' makes one); every server and agent needs the same key.
    The key seeds the keyring kept in the data dir (serf/local.keyring); once
    that exists, it is used instead, with the keys rotated in since, and
    -encrypt is ignored. Default: none (plaintext gossip).

  -raft-multiplier=N
    Scales Raft's heartbeat, election and leader-lease timeouts (1-10) for slow
    machines. Default: 1.

  -heartbeat-interval=DURATION
    How often agents are asked to heartbeat. Default: 5s.

  -agent-degraded-after=DURATION
    How long an agent may stay silent before it is marked degraded. Default: 15s.

  -agent-offline-after=DURATION
    How long an agent may stay silent before it is marked offline; its nodes then
    show as lost until it returns. Default: 30s.

  -event-store=HOST:PORT
    The gRPC address of an event store (a grid storage node) that the leader
    ships every event to. May be given more than once: each store gets the whole
    history. Overrides GRID_EVENT_STORE (addresses separated by commas). Nodes
    spawned with -role=event-store are event stores too. Without any, events
    wait in the replicated outbox.

  -event-store-dead-after=DURATION
    How long an event store may stay unreachable before it stops holding the
    outbox back; it is backfilled from the other stores when it returns.
    Default: 10m.

  -event-outbox-limit=N
    Report (in the log and in grid status) when more than N events wait in the
    outbox for the event store. Nothing is dropped. Default: 1000000.

  -heartbeat-event-interval=DURATION
    Record an agent_heartbeat event at most this often per agent. 0 (the
    default) records none.

  -autopilot-cleanup-dead-servers=BOOL
    Let autopilot remove dead servers from Raft, as below. Seeds the
    replicated autopilot configuration, as the next two do. Default: true.

  -autopilot-dead-server-cleanup-after=DURATION
    Autopilot removes a failed server from Raft once a replacement joins, or
    after it has been failed this long; 0 waits for a replacement. Never so
    many that quorum is lost. Seeds the replicated autopilot configuration the
    first time a leader finds none ('grid operator autopilot set-config'
    changes it from then on). Default: 1h.

  -autopilot-server-stabilization-time=DURATION
    New servers join Raft as non-voters; autopilot promotes one to voter once
    it has been healthy this long. Seeds the replicated configuration, as
    above. Default: 10s.

  -acl-enabled
    Turn ACLs on: every request then needs a token that allows it, sent as
    X-Grid-Token (the CLI's -token or GRID_TOKEN). Give it to every server;
    then create the first token with 'grid acl bootstrap'.

  -insecure
    Run on an address other than loopback without TLS, gossip encryption
    (-encrypt) or ACLs (-acl-enabled), which the server otherwise refuses. The
    server logs a warning naming what is off at every start. On a loopback
    address (127.0.0.0/8, ::1) none of them is required. Default: false.

  -http-port, -rpc-port, -raft-port, -gossip-port
    The ports of the HTTP API (7000), gRPC (7001), Raft (7002) and gossip (7946).
` + tlsHelp + ` A server needs a server certificate
    of its own, naming it (grid tls cert create -server -name=NAME, NAME as
    -name); Raft, gRPC and the HTTP API (HTTPS) then use TLS, only servers may
    call the servers' internal service, and agents obey the leader's alone.

  -verify-https-client
    With TLS, require a client certificate (a client's or a server's) of every
    HTTPS client. Default: false.

Configuration and Logging Options:
` + configHelp + `
` + logHelp + `

  SIGHUP reads the configuration files again and applies log_level,
  heartbeat_interval, agent_degraded_after and agent_offline_after, and
  reloads the TLS certificates; a changed key that needs a restart is logged.
`)
}

// serverFlags binds the server flags to cfg.
type serverFlags struct {
	cfg         *server.Config
	join        stringList
	eventStores stringList
	log         logFlags
	tls         tlsFlags
}

func (c *ServerCommand) Run(args []string) int {
	sf := serverFlags{cfg: server.DefaultConfig()}
	fs := c.flagSet("server")
	cfg := sf.cfg
	fs.StringVar(&cfg.DataDir, "data-dir", "", "")
	fs.StringVar(&cfg.BindAddr, "bind", cfg.BindAddr, "")
	fs.StringVar(&cfg.NodeName, "name", "", "")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "")
	fs.Var(&sf.join, "join", "")
	fs.DurationVar(&cfg.RetryInterval, "retry-interval", cfg.RetryInterval, "")
	fs.IntVar(&cfg.RetryMax, "retry-max", 0, "")
	fs.IntVar(&cfg.RaftMultiplier, "raft-multiplier", cfg.RaftMultiplier, "")
	fs.StringVar(&cfg.EncryptKey, "encrypt", "", "")
	fs.IntVar(&cfg.HTTPPort, "http-port", cfg.HTTPPort, "")
	fs.IntVar(&cfg.RPCPort, "rpc-port", cfg.RPCPort, "")
	fs.IntVar(&cfg.RaftPort, "raft-port", cfg.RaftPort, "")
	fs.IntVar(&cfg.GossipPort, "gossip-port", cfg.GossipPort, "")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "")
	fs.DurationVar(&cfg.AgentDegradedAfter, "agent-degraded-after", cfg.AgentDegradedAfter, "")
	fs.DurationVar(&cfg.AgentOfflineAfter, "agent-offline-after", cfg.AgentOfflineAfter, "")
	fs.Var(&sf.eventStores, "event-store", "")
	fs.DurationVar(&cfg.EventStoreDeadAfter, "event-store-dead-after", cfg.EventStoreDeadAfter, "")
	fs.DurationVar(&cfg.HeartbeatEventInterval, "heartbeat-event-interval", 0, "")
	fs.Uint64Var(&cfg.EventOutboxLimit, "event-outbox-limit", cfg.EventOutboxLimit, "")
	sf.log.bind(fs)
	sf.tls.bind(fs)
	fs.BoolVar(&cfg.VerifyHTTPSClient, "verify-https-client", false, "")
	fs.BoolVar(&cfg.ACLEnabled, "acl-enabled", false, "")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "")
	fs.BoolVar(&cfg.Autopilot.CleanupDeadServers, "autopilot-cleanup-dead-servers", cfg.Autopilot.CleanupDeadServers, "")
	fs.DurationVar(&cfg.Autopilot.DeadServerCleanupAfter, "autopilot-dead-server-cleanup-after", cfg.Autopilot.DeadServerCleanupAfter, "")
	fs.DurationVar(&cfg.Autopilot.ServerStabilizationTime, "autopilot-server-stabilization-time", cfg.Autopilot.ServerStabilizationTime, "")
	conf, code, ok := c.parseConfigured(fs, "server", args)
	if !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("server", fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	cfg.Join = sf.join
	cfg.EventStores = sf.eventStores
	if len(cfg.EventStores) == 0 {
		cfg.EventStores = splitComma(os.Getenv("GRID_EVENT_STORE"))
	}
	var err error
	if cfg.TLS, err = sf.tls.load(mtls.RoleServer); err != nil {
		return c.usageError("server", err)
	}
	if cfg.VerifyHTTPSClient && cfg.TLS == nil {
		return c.usageError("server", fmt.Errorf("-verify-https-client needs TLS (-ca-file, -cert-file, -key-file)"))
	}
	logger, closeLog, err := sf.log.newLogger("server")
	if err != nil {
		return c.usageError("server", err)
	}
	defer closeLog()
	cfg.Logger = logger
	var reloader func(*server.Server) func() error
	if conf.hasFiles() {
		reloader = func(srv *server.Server) func() error {
			return conf.reloader(logger, sf.log.live(logger), liveThresholds(srv))
		}
	}
	return runServer(c.Ui, cfg, reloader)
}

// runServer starts a server and runs it until a signal, then shuts it down. SIGHUP
// runs what reloader (when not nil) returns for the server, then reloads the TLS
// certificates.
func runServer(ui interface{ Error(string) }, cfg *server.Config, reloader func(*server.Server) func() error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := catchHangups(cfg.TLS != nil || reloader != nil)
	srv, err := server.New(cfg)
	if err != nil {
		hup.serve(nil)
		ui.Error("Error: start server: " + err.Error())
		return 1
	}
	var reloadConfig, reloadTLS func() error
	if reloader != nil {
		reloadConfig = reloader(srv)
	}
	if cfg.TLS != nil {
		reloadTLS = srv.ReloadTLS
	}
	// The files first: a log level raised by them shows the TLS reload's lines.
	defer hup.serve(hangups(reloadConfig, reloadTLS))()
	code := 0
	select {
	case <-ctx.Done():
	case err := <-srv.Fatal():
		ui.Error("Error: " + err.Error())
		code = 1
	}
	stop() // a second signal kills the process the default way
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			cfg.Logger.Warn("shutdown finished with errors", "error", err)
		}
	case <-time.After(30 * time.Second):
		ui.Error("Error: shutdown timed out")
		return 1
	}
	return code
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty value")
	}
	*l = append(*l, v)
	return nil
}
