package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/mtls"
)

// Config configures a storage node. Start from DefaultConfig.
type Config struct {
	// BindAddr is the IP the gRPC listener binds. Default 127.0.0.1.
	BindAddr string
	// Port is the gRPC port; 0 picks a free one (see Server.Addr). Default 50051.
	Port int
	// MetricsAddr, when not "", is the host:port of an HTTP listener serving GET
	// /v1/metrics and GET /v1/health (HTTPS with TLS, with the node's certificate; no
	// client certificate asked); port 0 picks a free one (see Server.MetricsAddr).
	// Default "": none.
	MetricsAddr string
	// DataDir holds the store, its lock and the node ID. Required.
	DataDir string
	// NodeID names the node. Default: a random ID generated on first start and kept
	// in DataDir/node-id. A NodeID that differs from the one kept there is an error,
	// so that a data dir cannot silently change hands.
	NodeID string
	// MemoryLimitMB, if not zero, is set as the Go runtime's soft memory limit, and
	// sizes pebble's cache (a quarter of it) and memtables (a sixteenth each).
	// Default 0: no limit, a 64 MiB cache and 64 MiB memtables.
	MemoryLimitMB int
	// Retention, if not zero, removes concepts older than it in the background.
	// Default 0: keep everything.
	Retention time.Duration
	// RetentionInterval is how often retention runs. Default: a tenth of Retention,
	// between 1s and 1m.
	RetentionInterval time.Duration
	// MaxContentBytes bounds a concept's content. Default 1 MiB.
	MaxContentBytes int
	// TLS, if set, serves gRPC over mutual TLS: a caller needs a certificate of the
	// grid, naming one of Callers for any method but the health check (tls.go).
	// Default nil: plaintext.
	TLS *mtls.Source
	// Callers are the roles that may call the node with TLS. Default: servers only,
	// as the event store wants; an agent gives its nodes server, agent and client.
	Callers []mtls.Role
	// Authorizer is asked before every RPC; an error refuses the call
	// (PermissionDenied, unless it is a status error with a code of its own).
	// Default nil: allow all.
	Authorizer auth.Authorizer
	// Logger is the node's logger; pebble logs to its "pebble" sub-logger.
	// Default: no logging.
	Logger hclog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() *Config {
	return &Config{
		BindAddr:        "127.0.0.1",
		Port:            50051,
		MaxContentBytes: DefaultMaxContentBytes,
	}
}

// validate checks c and fills in defaults that depend on other fields.
func (c *Config) validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("a data dir is required")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("port %d is not between 0 and 65535", c.Port)
	case c.MemoryLimitMB < 0:
		return fmt.Errorf("memory limit %d MB is negative", c.MemoryLimitMB)
	case c.Retention < 0:
		return fmt.Errorf("retention %s is negative", c.Retention)
	case c.MaxContentBytes < 0:
		return fmt.Errorf("max content bytes %d is negative", c.MaxContentBytes)
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.MaxContentBytes == 0 {
		c.MaxContentBytes = DefaultMaxContentBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention > 0 && c.RetentionInterval <= 0 {
		c.RetentionInterval = min(max(c.Retention/10, time.Second), time.Minute)
	}
	return nil
}
