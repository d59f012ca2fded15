package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/internal/secure"
	"github.com/sutragrid/grid/mtls"
)

// Default ports of an agent's listeners, all bound to Config.BindAddr.
const (
	DefaultHTTPPort   = 8000
	DefaultRPCPort    = 8001
	DefaultGossipPort = 7946
)

// Config configures an Agent. Start from DefaultConfig; a zero port asks the kernel for
// a free one (tests use that), so read the bound addresses back from the Agent.
type Config struct {
	// Name is the agent's unique name, in gossip and to the servers.
	// Default: the hostname, with the bind IP appended when BindAddr is one address.
	Name string
	// DataDir holds the agent's state (the nodes it runs), each node's log files and
	// the gossip snapshot (serf/local.snapshot). Required.
	DataDir string
	// BindAddr is the one IP every listener binds to, storage nodes' included.
	// Default: 127.0.0.1.
	BindAddr string

	RPCPort    int // gRPC, for the leader. Default: 8001.
	GossipPort int // memberlist, TCP and UDP. Default: 7946.
	// HTTPPort serves GET /v1/metrics and GET /v1/health, over HTTPS with TLS (with
	// the agent's certificate; no client certificate is asked). -1 turns it off.
	// Default: 8000.
	HTTPPort int

	// Join lists gossip addresses (host or host:port) to join at start.
	Join []string
	// RetryInterval is the longest wait between join attempts: the first retry
	// comes after 1s, and the wait doubles up to this. Default: 30s.
	RetryInterval time.Duration
	// RetryMax bounds join attempts; 0 retries forever. Default: 0.
	RetryMax int

	// MaxNodes is how many storage nodes the agent runs at most. Default: 10.
	MaxNodes int
	// HeartbeatInterval is how often the agent heartbeats; the servers may ask for
	// more often when it registers. Default: 5s.
	HeartbeatInterval time.Duration

	// StorageRoot is the directory inside which every node's storage path must lie.
	// Default: DataDir.
	StorageRoot string
	// StorageBinary is the grid binary run as `StorageBinary storage ...` for each
	// node. Default: this process's own executable.
	StorageBinary string
	// StartTimeout bounds how long a node may take to pass its health check after it
	// was started. Default: 30s.
	StartTimeout time.Duration
	// DisableCgroups runs nodes without cgroups even where the agent could use them:
	// their memory limit is then only the Go runtime's soft limit inside the node,
	// and a CPU limit is not enforced. Default: false (each node in a cgroup of its
	// own, under the agent's cgroup, where the host allows it; see package cgroup).
	DisableCgroups bool

	// GossipConfig, if set, is the base memberlist configuration under serf; tests
	// use it for fast failure detection. Its name, addresses and delegates are
	// overwritten.
	GossipConfig *memberlist.Config
	// EncryptKey is the gossip encryption key (-encrypt), 32 random bytes in base64,
	// the key the servers use. It seeds the keyring kept in the data dir
	// (serf/local.keyring); once that exists it is used instead, with the keys
	// rotated in since, and EncryptKey is ignored. Default: "" (plaintext gossip,
	// unless the data dir has a keyring).
	EncryptKey string
	// TLS, when set, is mutual TLS with an agent certificate on the gRPC listener
	// (which obeys servers only) and every dialer, to servers and to the agent's
	// storage nodes (tls.go). Default: nil (plaintext).
	TLS *mtls.Source
	// NodeCertFile and NodeKeyFile are the node certificate and key the agent's
	// storage nodes serve with; required with TLS.
	NodeCertFile, NodeKeyFile string
	// Authorizer is asked before every gRPC request to the agent; an error refuses
	// the call (PermissionDenied). Default nil: allow all.
	Authorizer auth.Authorizer
	// Token is the agent's ACL token, sent with every call to the servers (x-grid-token
	// metadata): with ACLs on, one whose policy has agent write. Default: "" (none).
	Token string
	// Insecure lets the agent run on an address other than loopback without TLS or
	// gossip encryption, which it otherwise refuses (-insecure); it then logs a warning
	// naming what is off. Default: false.
	Insecure bool

	// Logger is the agent's logger; components log to named sub-loggers
	// ("agent.gossip", "agent.client", "agent.supervisor").
	// Default: an hclog logger named "agent" at info level on stderr.
	Logger hclog.Logger
}

// DefaultConfig returns a Config with every default filled in except DataDir.
func DefaultConfig() *Config {
	return &Config{
		BindAddr:          "127.0.0.1",
		HTTPPort:          DefaultHTTPPort,
		RPCPort:           DefaultRPCPort,
		GossipPort:        DefaultGossipPort,
		RetryInterval:     30 * time.Second,
		MaxNodes:          10,
		HeartbeatInterval: 5 * time.Second,
		StartTimeout:      30 * time.Second,
	}
}

// DefaultName is the hostname, with the bind IP appended when the agent binds to one
// specific address, so that agents sharing a machine get distinct names.
func DefaultName(bindAddr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "grid"
	}
	if ip := net.ParseIP(bindAddr); ip != nil && !ip.IsUnspecified() {
		return host + "-" + bindAddr
	}
	return host
}

// validate checks the configuration and fills in defaults and what is derived.
func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("a data directory is required (-data-dir)")
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	if ip := net.ParseIP(c.BindAddr); ip == nil {
		return fmt.Errorf("bind address %q is not an IP address", c.BindAddr)
	}
	if c.Name == "" {
		c.Name = DefaultName(c.BindAddr)
	}
	if strings.ContainsAny(c.Name, " \t\n") {
		return fmt.Errorf("agent name %q must not contain white space", c.Name)
	}
	for name, p := range map[string]int{"rpc": c.RPCPort, "gossip": c.GossipPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%s port %d is out of range", name, p)
		}
	}
	if c.HTTPPort < -1 || c.HTTPPort > 65535 {
		return fmt.Errorf("http port %d is out of range (-1 turns it off)", c.HTTPPort)
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 30 * time.Second
	}
	if c.RetryMax < 0 {
		return fmt.Errorf("retry-max must be 0 or more, got %d", c.RetryMax)
	}
	if err := validEncryptKey(c.EncryptKey); err != nil {
		return err
	}
	if c.MaxNodes == 0 {
		c.MaxNodes = 10
	}
	if c.MaxNodes < 0 {
		return fmt.Errorf("max-nodes must be positive, got %d", c.MaxNodes)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	var err error
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if c.StorageRoot == "" {
		c.StorageRoot = c.DataDir
	}
	if c.StorageRoot, err = filepath.Abs(c.StorageRoot); err != nil {
		return fmt.Errorf("storage root: %w", err)
	}
	if c.StorageBinary == "" {
		if c.StorageBinary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the grid binary to run storage nodes with: %w", err)
		}
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "agent", Level: hclog.Info})
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

// CheckSecure refuses an agent on an address other than loopback without TLS and
// gossip encryption (a key, or a keyring in the data dir), unless Insecure; with
// Insecure it returns what is off, to warn of. ACLs are the servers' to enforce: an
// agent without a token is refused by servers with ACLs when it registers.
func (c *Config) CheckSecure() (off []string, err error) {
	return secure.Check(c.BindAddr, c.Insecure,
		secure.Protection{Name: "TLS (-ca-file, -cert-file, -key-file)", On: c.TLS != nil},
		secure.Protection{Name: "gossip encryption (-encrypt)", On: c.EncryptKey != "" || fileExists(filepath.Join(c.DataDir, gossipKeyring))},
	)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
