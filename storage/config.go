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
	// MaxMessageMB bounds a gRPC message the node receives, a LearnBatch request
	// included: a larger one is refused with ResourceExhausted before it is read into
	// memory. It must leave room for a concept of MaxContentBytes. Default 16.
	MaxMessageMB int
	// MaxConcurrentBatches is how many LearnBatch requests are decoded and written at
	// once; as many more (at least 4) wait for a turn (up to their deadline), and the rest are
	// refused with ResourceExhausted (limits.go says why). A batch in flight costs
	// up to about batchCostFactor times its message (the message, two decoded
	// copies, the pebble batch and its index entries, the memtable's copy), so the
	// default is 4, or, with MemoryLimitMB, what fits in a quarter of it (pebble's
	// cache and memtables take half, see New): MemoryLimitMB / (4 * batchCostFactor *
	// MaxMessageMB), at least 1 (512 MB and 16 MB: 1; 2 GB: 4). Default 0: that
	// default.
	MaxConcurrentBatches int
	// DiskReserveMB is the free space the node keeps on its data dir's filesystem:
	// writes are refused with ResourceExhausted once free space is at or below it
	// (reads go on), and accepted again once space is freed. Pebble cannot survive a
	// write that fails for lack of space; the reserve is its room for flushes and
	// compactions. Default 0: 5% of the filesystem, at most 1 GiB; negative: none.
	DiskReserveMB int
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
		MaxMessageMB:    DefaultMaxMessageMB,
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
	case c.MaxMessageMB < 0:
		return fmt.Errorf("max message size %d MB is negative", c.MaxMessageMB)
	case c.MaxConcurrentBatches < 0:
		return fmt.Errorf("max concurrent batches %d is negative", c.MaxConcurrentBatches)
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
	if c.MaxMessageMB == 0 {
		c.MaxMessageMB = DefaultMaxMessageMB
	}
	if need := c.MaxContentBytes + messageOverhead; c.MaxMessageMB<<20 < need {
		return fmt.Errorf("max message size %d MB cannot carry a concept of the max content size (%d bytes): it needs %d MB",
			c.MaxMessageMB, c.MaxContentBytes, (need+(1<<20)-1)>>20)
	}
	if c.MaxConcurrentBatches == 0 {
		c.MaxConcurrentBatches = defaultConcurrentBatches(c.MemoryLimitMB, c.MaxMessageMB)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention > 0 && c.RetentionInterval <= 0 {
		c.RetentionInterval = min(max(c.Retention/10, time.Second), time.Minute)
	}
	return nil
}

// DefaultMaxMessageMB is Config.MaxMessageMB's default.
const DefaultMaxMessageMB = 16

// messageOverhead is room in a message for what a concept carries beyond its content
// (ID, attributes, time) and the batch's framing.
const messageOverhead = 64 << 10

// batchCostFactor is what a batch in flight costs in memory, in multiples of its
// message: the message as received, the decoder's two copies (batchcodec.go), the
// pebble batch with the text and attribute index entries (write.go's
// estimateBatchSize allows 1.5 times the content plus the keys), and pebble's copy
// in the memtable. It is an allowance from the code, rounded up; measured with 16 MB
// batches of text on a node with a 512 MB memory limit, each further batch in flight
// raised the peak by about 70 MB (4.5 times): one batch at a time peaked at 360 to
// 410 MB, two at 430 to 540 MB (see website/storage.md, Bounds).
const batchCostFactor = 8

// defaultConcurrentBatches is Config.MaxConcurrentBatches's default.
func defaultConcurrentBatches(memoryLimitMB, maxMessageMB int) int {
	const def = 4
	if memoryLimitMB <= 0 {
		return def
	}
	return min(def, max(1, memoryLimitMB/(4*batchCostFactor*maxMessageMB)))
}
