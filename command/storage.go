package command

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sutragrid/grid/storage"
)

// StorageCommand runs a storage node until SIGINT or SIGTERM.
type StorageCommand struct {
	Meta
}

func (c *StorageCommand) Synopsis() string { return "Run a storage node" }

func (c *StorageCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid storage -data-dir=DIR [options]

  Runs a storage node: a durable store of concepts (an ID, content, attributes, a
  time) and typed associations between them, served over gRPC with indexed
  time-range, filter, aggregate, graph and full-text queries. Agents run storage
  nodes on their hosts; the grid's event store is one too.

  A write is acknowledged only once it is on disk. The node locks its data dir, serves
  the standard gRPC health service and server reflection, and on SIGINT or SIGTERM
  finishes the requests in flight and exits 0.

    grid storage -bind=127.0.0.31 -port=50052 -data-dir=/var/grid/events

Storage Options:

  -data-dir=DIR
    Where the node keeps its store, lock and node ID. Required.

  -bind=IP
    The IP the gRPC listener binds to. Default: 127.0.0.1.

  -port=PORT
    The gRPC port; 0 picks a free one. Default: 50051.

  -metrics-port=PORT
    Serve GET /v1/metrics (JSON, or ?format=prometheus) and GET /v1/health on
    this port of -bind, over HTTPS with TLS. 0 turns it off. Default: 0. Nodes
    an agent spawns run without it.

  -node-id=ID
    The node's ID. Default: a random ID, generated on first start and kept in the
    data dir. An ID that differs from the one kept there is an error.

  -memory-limit-mb=N
    The process's soft memory limit; it also sizes the store's caches. 0 means no
    limit. Default: 0.

  -retention=DURATION
    Remove concepts older than this (with their associations and index entries) in
    the background, e.g. 720h. 0 keeps everything. Default: 0.

  -max-content-bytes=N
    The largest content a concept may have. Default: 1048576 (1 MiB).

  -max-message-mb=N
    The largest gRPC message the node receives, a LearnBatch included; a
    larger one is refused with RESOURCE_EXHAUSTED before it is read. It must
    leave room for a concept of -max-content-bytes. Default: 16.

  -max-concurrent-batches=N
    How many LearnBatch requests are decoded and written at once; as many more
    (at least 4) wait for their turn (up to their deadline), and the rest are refused with
    RESOURCE_EXHAUSTED. 0 means the default: 4, or with -memory-limit-mb what
    fits in a quarter of it at 8 times -max-message-mb a batch, at least 1
    (512 MB and 16 MB: 1). Default: 0.

  -disk-reserve-mb=N
    The free space the node keeps on its data dir's filesystem: at or below
    it, writes are refused with RESOURCE_EXHAUSTED, reads go on, and writes
    resume once space is freed. 0 means 5% of the filesystem, at most 1024;
    -1 means none. Default: 0.
` + tlsHelp + ` A storage node needs a node or a
    server certificate (grid tls cert create -node).

  -callers=ROLES
    With TLS: the roles (by certificate) that may call the node, of server,
    agent and client. Default: server, as the grid's event store wants. An
    agent starts its nodes with server,agent,client.

Configuration and Logging Options:
` + configHelp + `
` + logHelp + `

  SIGHUP reads the configuration files again and applies log_level, and
  reloads the TLS certificates; a changed key that needs a restart is logged.
`)
}

func (c *StorageCommand) Run(args []string) int {
	cfg := storage.DefaultConfig()
	var lf logFlags
	fs := c.flagSet("storage")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "")
	fs.StringVar(&cfg.BindAddr, "bind", cfg.BindAddr, "")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "")
	metricsPort := fs.Int("metrics-port", 0, "")
	fs.StringVar(&cfg.NodeID, "node-id", "", "")
	fs.IntVar(&cfg.MemoryLimitMB, "memory-limit-mb", 0, "")
	fs.DurationVar(&cfg.Retention, "retention", 0, "")
	fs.IntVar(&cfg.MaxContentBytes, "max-content-bytes", cfg.MaxContentBytes, "")
	fs.IntVar(&cfg.MaxMessageMB, "max-message-mb", cfg.MaxMessageMB, "")
	fs.IntVar(&cfg.MaxConcurrentBatches, "max-concurrent-batches", 0, "")
	fs.IntVar(&cfg.DiskReserveMB, "disk-reserve-mb", 0, "")
	lf.bind(fs)
	var tf tlsFlags
	tf.bind(fs)
	callers := fs.String("callers", "", "")
	conf, code, ok := c.parseConfigured(fs, "storage", args)
	if !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return c.usageError("storage", fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	case cfg.DataDir == "":
		return c.usageError("storage", fmt.Errorf("-data-dir is required"))
	case cfg.MaxContentBytes <= 0:
		return c.usageError("storage", fmt.Errorf("-max-content-bytes must be positive"))
	case cfg.MaxMessageMB <= 0:
		return c.usageError("storage", fmt.Errorf("-max-message-mb must be positive"))
	case cfg.MaxConcurrentBatches < 0:
		return c.usageError("storage", fmt.Errorf("-max-concurrent-batches must not be negative"))
	case cfg.DiskReserveMB < -1:
		return c.usageError("storage", fmt.Errorf("-disk-reserve-mb must be -1 (none), 0 (the default) or a size"))
	case *metricsPort < 0 || *metricsPort > 65535:
		return c.usageError("storage", fmt.Errorf("-metrics-port %d is out of range", *metricsPort))
	case *metricsPort > 0:
		cfg.MetricsAddr = net.JoinHostPort(cfg.BindAddr, strconv.Itoa(*metricsPort))
	}
	logger, closeLog, err := lf.newLogger("storage")
	if err != nil {
		return c.usageError("storage", err)
	}
	defer closeLog()
	// Before the node serves: an agent may send SIGHUP as soon as it is healthy.
	reloadTLS, err := storageTLS(cfg, &tf, *callers, logger)
	if err != nil {
		return c.usageError("storage", err)
	}
	defer onHangup(hangups(conf.reloader(logger, lf.live(logger)), reloadTLS))()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logger = logger
	srv, err := storage.New(cfg)
	if err != nil {
		return c.fail("start storage node: %v", err)
	}
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	if err := srv.Serve(ctx); err != nil {
		return c.fail("storage node: %v", err)
	}
	return 0
}
