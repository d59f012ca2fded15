package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/internal/secure"
	"github.com/sutragrid/grid/mtls"
)

// Default ports of a server's listeners, all bound to Config.BindAddr.
const (
	DefaultHTTPPort   = 7000
	DefaultRPCPort    = 7001
	DefaultRaftPort   = 7002
	DefaultGossipPort = 7946
)

// Config configures a Server. Start from DefaultConfig; a zero port asks the kernel for
// a free one (tests use that), so read the bound addresses back from the Server.
type Config struct {
	// NodeName is the server's unique name in the gossip pool.
	// Default: DefaultNodeName(BindAddr).
	NodeName string
	// DataDir holds the Raft log, snapshots, the server's ID and the gossip snapshot
	// (serf/local.snapshot). Required.
	DataDir string
	// BindAddr is the one IP every listener binds to. Default: 127.0.0.1.
	// With 0.0.0.0 the server advertises its first private IP.
	BindAddr string

	HTTPPort   int // HTTP API and UI. Default: 7000.
	RPCPort    int // gRPC: agents and forwarded writes. Default: 7001.
	RaftPort   int // Raft transport. Default: 7002.
	GossipPort int // memberlist, TCP and UDP. Default: 7946.

	// BootstrapExpect is how many servers bootstrap the cluster together: the server
	// waits until it sees that many over gossip. 0 means never bootstrap (join an
	// existing cluster). Default: 0.
	BootstrapExpect int

	// Join lists gossip addresses (host or host:port) to join at start.
	Join []string
	// RetryInterval is the longest wait between join attempts: the first retry
	// comes after 1s, and the wait doubles up to this. Default: 30s.
	RetryInterval time.Duration
	// RetryMax bounds join attempts; 0 retries forever. Default: 0.
	RetryMax int

	// RaftMultiplier scales Raft's heartbeat, election and leader-lease timeouts, 1-10,
	// for slow or busy machines. Default: 1, which is a 500ms heartbeat timeout, a 500ms
	// election timeout and a 500ms leader lease (half of hashicorp/raft's heartbeat and
	// election timeouts, for failover within about a second; see defaultRaftConfig).
	RaftMultiplier int
	// RaftConfig, if set, is the base Raft configuration before the multiplier is
	// applied; tests use it for fast timeouts. Its LocalID and NotifyCh are overwritten.
	RaftConfig *raft.Config
	// GossipConfig, if set, is the base memberlist configuration under serf; tests
	// use it for fast failure detection. Its name, addresses and delegates are
	// overwritten.
	GossipConfig *memberlist.Config
	// EncryptKey is the gossip encryption key (-encrypt), 32 random bytes in base64:
	// gossip is then encrypted, and members without a key of the keyring cannot
	// join. It seeds the keyring kept in the data dir (serf/local.keyring); once
	// that exists it is used instead, with the keys rotated in since, and EncryptKey
	// is ignored. Default: "" (plaintext gossip, unless the data dir has a keyring).
	EncryptKey string

	// TLS, when set, is mutual TLS with a server certificate on every listener (Raft,
	// gRPC, HTTPS) and dialer; every one takes its configuration from here (tls.go).
	// Default: nil (plaintext).
	TLS *mtls.Source
	// VerifyHTTPSClient requires a client certificate of every HTTPS client.
	VerifyHTTPSClient bool
	// Authorizer is asked before every HTTP and gRPC request. Default: allow all.
	Authorizer auth.Authorizer
	// ACLEnabled turns ACLs on: the Authorizer becomes acl's (acl.go), so that every
	// request needs a token that allows it. Default: false.
	ACLEnabled bool
	// Insecure lets the server run on an address other than loopback without TLS,
	// gossip encryption or ACLs, which it otherwise refuses (-insecure); it then logs
	// a warning naming what is off. Default: false.
	Insecure bool

	// HeartbeatInterval is how often agents are told to heartbeat. Default: 5s.
	HeartbeatInterval time.Duration
	// AgentDegradedAfter is how long an agent may stay silent before the leader marks
	// it degraded. Default: 15s.
	AgentDegradedAfter time.Duration
	// AgentOfflineAfter is how long an agent may stay silent before the leader marks
	// it offline; its nodes then show as lost. Default: 30s.
	AgentOfflineAfter time.Duration

	// EventStores are the gRPC addresses (host:port) of the event stores, the storage
	// nodes that the leader ships every event to, besides the nodes the grid runs with
	// the event-store role. None keeps events in the outbox. Default: none.
	EventStores []string
	// EventStoreDeadAfter is how long an event store may stay unreachable before it
	// stops holding the outbox back: the outbox then lets go of events the other
	// stores have, and the store is backfilled from them when it returns. Default: 10m.
	EventStoreDeadAfter time.Duration
	// EventOutboxLimit is the number of events waiting in the outbox above which the
	// leader reports, in its log and in /v1/status, that the outbox is over its bound.
	// Events are never dropped: the outbox is the only copy of an unshipped event.
	// Default: 1,000,000 (about 1 GiB of memory on every server).
	EventOutboxLimit uint64
	// HeartbeatEventInterval samples agent_heartbeat events: at most one per agent per
	// interval. 0 records none. Default: 0.
	HeartbeatEventInterval time.Duration

	// ApplyTimeout bounds how long a write waits to be committed. Default: 30s.
	ApplyTimeout time.Duration

	// Autopilot seeds the autopilot configuration (autopilot.go) the first time a
	// leader finds none in the replicated state; `grid operator autopilot
	// set-config` changes it from then on.
	Autopilot AutopilotConfig

	// Logger is the server's logger; components log to named sub-loggers.
	// Default: an hclog logger at info level on stderr.
	Logger hclog.Logger
}

// AutopilotConfig is the autopilot part of Config: the settings that seed the
// replicated configuration, and how often autopilot looks, which is each server's own.
type AutopilotConfig struct {
	// CleanupDeadServers lets autopilot remove failed servers from the Raft
	// configuration, once a replacement joins or after DeadServerCleanupAfter.
	// Default (DefaultConfig): true.
	CleanupDeadServers bool
	// DeadServerCleanupAfter is how long a server may stay failed (or left) before
	// autopilot removes it though no replacement joined; 0 waits for a
	// replacement. Default: 1h.
	DeadServerCleanupAfter time.Duration
	// ServerStabilizationTime is how long a new server must stay healthy as a
	// non-voter before autopilot promotes it to voter. Default: 10s.
	ServerStabilizationTime time.Duration
	// LastContactThreshold is how long a server may go without hearing from the
	// leader and still count as healthy. Default: 200ms.
	LastContactThreshold time.Duration
	// MaxTrailingLogs is how many log entries a healthy server may lag the leader
	// by. Default: 250.
	MaxTrailingLogs uint64
	// MinQuorum is the fewest voters dead-server cleanup leaves. Default: 0 (only
	// autopilot's quorum rule applies).
	MinQuorum uint
	// UpdateInterval is how often the leader's autopilot gathers the servers'
	// health, and ReconcileInterval how often it promotes and removes servers.
	// Tests shorten them. Default: 2s and 10s (raft-autopilot's own).
	UpdateInterval, ReconcileInterval time.Duration
}

// Default autopilot settings; the flags' help and website/commands/server.md say
// the same.
const (
	DefaultDeadServerCleanupAfter  = time.Hour
	DefaultServerStabilizationTime = 10 * time.Second
	DefaultLastContactThreshold    = 200 * time.Millisecond
	DefaultMaxTrailingLogs         = 250
)

// DefaultConfig returns a Config with every default filled in except DataDir.
func DefaultConfig() *Config {
	return &Config{
		BindAddr:       "127.0.0.1",
		HTTPPort:       DefaultHTTPPort,
		RPCPort:        DefaultRPCPort,
		RaftPort:       DefaultRaftPort,
		GossipPort:     DefaultGossipPort,
		RetryInterval:  30 * time.Second,
		RaftMultiplier: 1,
		ApplyTimeout:   30 * time.Second,

		EventOutboxLimit:    1_000_000,
		EventStoreDeadAfter: 10 * time.Minute,
		HeartbeatInterval:   5 * time.Second,
		AgentDegradedAfter:  15 * time.Second,
		AgentOfflineAfter:   30 * time.Second,

		Autopilot: AutopilotConfig{
			CleanupDeadServers:      true,
			DeadServerCleanupAfter:  DefaultDeadServerCleanupAfter,
			ServerStabilizationTime: DefaultServerStabilizationTime,
			LastContactThreshold:    DefaultLastContactThreshold,
			MaxTrailingLogs:         DefaultMaxTrailingLogs,
		},
	}
}

// DefaultNodeName is the hostname, with the bind IP appended when the server binds to
// one specific address, so that servers sharing a machine on loopback IPs get distinct
// names ("host-127.0.0.11").
func DefaultNodeName(bindAddr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "grid"
	}
	if ip := net.ParseIP(bindAddr); ip != nil && !ip.IsUnspecified() {
		return host + "-" + bindAddr
	}
	return host
}

// validate checks the configuration and fills in what is derived.
func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("a data directory is required (-data-dir)")
	}
	if ip := net.ParseIP(c.BindAddr); ip == nil {
		return fmt.Errorf("bind address %q is not an IP address", c.BindAddr)
	}
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName(c.BindAddr)
	}
	if strings.ContainsAny(c.NodeName, " \t\n") {
		return fmt.Errorf("node name %q must not contain white space", c.NodeName)
	}
	if err := c.checkCertName(); err != nil {
		return err
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap-expect must be 0 or more, got %d", c.BootstrapExpect)
	}
	if c.RaftMultiplier == 0 {
		c.RaftMultiplier = 1
	}
	if c.RaftMultiplier < 1 || c.RaftMultiplier > 10 {
		return fmt.Errorf("raft-multiplier must be between 1 and 10, got %d", c.RaftMultiplier)
	}
	for name, p := range map[string]int{"http": c.HTTPPort, "rpc": c.RPCPort, "raft": c.RaftPort, "gossip": c.GossipPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%s port %d is out of range", name, p)
		}
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 30 * time.Second
	}
	if c.RetryMax < 0 {
		return fmt.Errorf("retry-max must be 0 or more, got %d", c.RetryMax)
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 30 * time.Second
	}
	if c.EventStoreDeadAfter == 0 {
		c.EventStoreDeadAfter = 10 * time.Minute
	}
	if c.EventOutboxLimit == 0 {
		c.EventOutboxLimit = 1_000_000
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.AgentDegradedAfter <= 0 {
		c.AgentDegradedAfter = 15 * time.Second
	}
	if c.AgentOfflineAfter <= 0 {
		c.AgentOfflineAfter = 30 * time.Second
	}
	if c.AgentOfflineAfter < c.AgentDegradedAfter {
		return fmt.Errorf("agent-offline-after (%s) must not be shorter than agent-degraded-after (%s)", c.AgentOfflineAfter, c.AgentDegradedAfter)
	}
	if err := c.Autopilot.validate(); err != nil {
		return err
	}
	if err := validEncryptKey(c.EncryptKey); err != nil {
		return err
	}
	if c.Authorizer == nil {
		c.Authorizer = auth.AllowAll{}
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "server", Level: hclog.Info})
	}
	off, err := c.CheckSecure()
	if err != nil {
		return err
	}
	if len(off) > 0 {
		c.Logger.Warn(secure.Warning(c.BindAddr, off))
	}
	return nil
}

// CheckSecure refuses a server on an address other than loopback without TLS, gossip
// encryption (a key, or a keyring in the data dir) and ACLs, unless Insecure; with
// Insecure it returns what is off, to warn of.
func (c *Config) CheckSecure() (off []string, err error) {
	return secure.Check(c.BindAddr, c.Insecure,
		secure.Protection{Name: "TLS (-ca-file, -cert-file, -key-file)", On: c.TLS != nil},
		secure.Protection{Name: "gossip encryption (-encrypt)", On: c.EncryptKey != "" || fileExists(filepath.Join(c.DataDir, gossipKeyring))},
		secure.Protection{Name: "ACLs (-acl-enabled)", On: c.ACLEnabled},
	)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// validate checks the autopilot settings and fills in the ones left zero that
// cannot be.
func (a *AutopilotConfig) validate() error {
	if a.DeadServerCleanupAfter < 0 {
		return fmt.Errorf("autopilot-dead-server-cleanup-after must not be negative, got %s", a.DeadServerCleanupAfter)
	}
	if a.ServerStabilizationTime < 0 {
		return fmt.Errorf("autopilot-server-stabilization-time must not be negative, got %s", a.ServerStabilizationTime)
	}
	if a.LastContactThreshold <= 0 {
		a.LastContactThreshold = DefaultLastContactThreshold
	}
	if a.MaxTrailingLogs == 0 {
		a.MaxTrailingLogs = DefaultMaxTrailingLogs
	}
	return nil
}
