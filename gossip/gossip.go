// Package gossip is the membership layer the servers and the agents share. It is a
// thin layer on hashicorp/serf, used the way Nomad and Consul use it: serf runs the
// memberlist gossip and failure detection, tells a graceful leave from a failure by
// the leave intent a member broadcasts before it goes, keeps reconnecting to failed
// members so that a healed network partition heals the pool too, reaps failed and
// left members after a while, keeps a snapshot of the members it knew so that a
// restarted member rejoins them by itself, and holds the keyring for gossip
// encryption.
//
// What Grid adds is small: the metadata every member gossips about itself (Tags), a
// table of the members kept up to date from serf's events with lookups by name and
// by server ID that cost O(1) (Members, members.go), and a Pool that creates serf,
// joins the configured addresses with a backoff (1s, doubling up to RetryInterval)
// and leaves gracefully (gossip.go). keyring.go seeds the keyring from an
// encryption key or the keyring file kept in the data dir, and lists, installs,
// switches and removes keys across the pool through serf's KeyManager; keylog.go
// says in plain words, in the log and in join errors, when a member is refused
// because its key does not match.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Defaults of Config.
const (
	// DefaultPort is the gossip port, TCP and UDP, and the port join addresses
	// without one get.
	DefaultPort = 7946
	// DefaultRetryInterval is the longest wait between join attempts.
	DefaultRetryInterval = 30 * time.Second
	// DefaultReconnectInterval is how often serf tries to reconnect to failed
	// members (serf's own default is 30s). Members share the work: the pool as a
	// whole tries each failed member about once per interval, so a healed partition
	// heals the pool within seconds at the cost of one connection attempt per failed
	// member and interval.
	DefaultReconnectInterval = 5 * time.Second
	// DefaultReconnectTimeout is how long a failed member is kept, shown as failed
	// and reconnected to, before it is reaped.
	DefaultReconnectTimeout = 24 * time.Hour
	// DefaultTombstoneTimeout is how long a member that left is kept, shown as left,
	// before it is reaped.
	DefaultTombstoneTimeout = 24 * time.Hour
	// DefaultReapInterval is how often serf reaps the members whose timeout passed.
	DefaultReapInterval = 15 * time.Second

	// minQueryTimeout is the least time a serf query waits for the members' answers.
	minQueryTimeout = 3 * time.Second

	// firstRetryInterval is the wait after the first failed join attempt; each
	// failure doubles it up to RetryInterval. Members started together by a script
	// find each other within a second or two rather than a whole RetryInterval.
	firstRetryInterval = time.Second
)

// Config configures a Pool. Zero values mean the defaults given with each field.
type Config struct {
	// Name is the member's unique name in the pool. Required.
	Name string
	// BindAddr is the address to bind and, unless it is unspecified, to advertise.
	// Default: "" (memberlist's base, 0.0.0.0 in the LAN config).
	BindAddr string
	// Port is the gossip port, bound and advertised; 0 lets the kernel choose one.
	Port int
	// Tags is the metadata the member gossips about itself.
	Tags Tags
	// Base, if set, is the memberlist configuration to start from; tests use it for
	// fast failure detection. It is copied, and the name, addresses, delegates,
	// logger and keyring are set on the copy (encryption comes from EncryptKey and
	// KeyringFile). Default: memberlist.DefaultLANConfig().
	Base *memberlist.Config
	// Members is the table that membership changes are reported to. Default: a new
	// one, which Pool.Members returns either way.
	Members *Members
	// Logger receives serf's and memberlist's log and the join loop's. Default: no
	// logging.
	Logger hclog.Logger

	// Join lists addresses (host or host:port; DefaultPort if none) that JoinLoop
	// joins.
	Join []string
	// RetryInterval is the longest wait between join attempts: the first retry
	// comes after a second, and the wait doubles up to this. Default:
	// DefaultRetryInterval.
	RetryInterval time.Duration
	// RetryMax bounds join attempts; 0 retries forever. Default: 0.
	RetryMax int

	// SnapshotPath is the file where serf records the members it knows, so that a
	// restarted member rejoins them without being told where; keep it in the data
	// dir. Its directory is created. Default: "" (no snapshot).
	SnapshotPath string
	// RejoinAfterLeave makes a member rejoin from its snapshot even after a
	// graceful Leave. Servers want it: one stopped and started again is still a Raft
	// peer. Without it, a member that left stays out until told to join. Default:
	// false.
	RejoinAfterLeave bool

	// EncryptKey, if set, is the gossip encryption key, KeySize bytes in base64 (see
	// DecodeKey): every gossip message is then encrypted and authenticated with
	// AES-256-GCM, and members without a key of the keyring cannot join. It seeds
	// the keyring the first time; once KeyringFile exists, the keyring kept there is
	// used and EncryptKey is ignored, with a log line: it holds the keys rotated in
	// since. Default: "" (plaintext gossip, unless KeyringFile exists).
	EncryptKey string
	// KeyringFile is where the keyring is kept, readable by the owner only: written
	// when EncryptKey seeds it, and after each change through InstallKey, UseKey and
	// RemoveKey (serf's KeyringFile), so that a restarted member keeps the keys
	// rotated while it ran. Keep it in the data dir. Default: "" (the keyring lives
	// in memory only).
	KeyringFile string

	// ReconnectInterval is how often the pool tries to reconnect to failed members.
	// Default: DefaultReconnectInterval.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a failed member is kept and reconnected to
	// before it is reaped. Default: DefaultReconnectTimeout.
	ReconnectTimeout time.Duration
	// TombstoneTimeout is how long a member that left is kept before it is reaped.
	// Default: DefaultTombstoneTimeout.
	TombstoneTimeout time.Duration
	// ReapInterval is how often members past their timeout are reaped. Default:
	// DefaultReapInterval.
	ReapInterval time.Duration
}

// Pool is this member's membership of a gossip pool. Create starts it; Leave and
// Shutdown stop it.
type Pool struct {
	config  Config
	serf    *serf.Serf
	members *Members
	logger  hclog.Logger
	// keyring is memberlist's keyring, which serf changes; nil without encryption.
	keyring *memberlist.Keyring
	// events receives serf's events; handleEvents applies them to members.
	events chan serf.Event
	wg     sync.WaitGroup
}

// eventBuffer is the room in the channel that serf sends its events to: serf blocks
// while it is full, so it absorbs the bursts of a large pool's join.
const eventBuffer = 2048

// Create starts serf with cfg's tags; the pool has only this member until it joins
// another, or until it rejoins the members in its snapshot, which it starts doing at
// once.
func Create(cfg Config) (*Pool, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("gossip: a member name is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Members == nil {
		cfg.Members = NewMembers()
	}
	setDefault(&cfg.RetryInterval, DefaultRetryInterval)
	setDefault(&cfg.ReconnectInterval, DefaultReconnectInterval)
	setDefault(&cfg.ReconnectTimeout, DefaultReconnectTimeout)
	setDefault(&cfg.TombstoneTimeout, DefaultTombstoneTimeout)
	setDefault(&cfg.ReapInterval, DefaultReapInterval)

	// memberlist's and serf's lines go through keyLog, which adds a plain one when a
	// member is refused for its key.
	std := log.New(newKeyLog(cfg.Logger.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}), cfg.Logger), "", 0)
	mc := memberlist.DefaultLANConfig()
	if cfg.Base != nil {
		copied := *cfg.Base
		mc = &copied
	}
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.Port
	mc.AdvertisePort = cfg.Port
	mc.Logger = std
	mc.LogOutput = nil
	keyring, err := setupKeyring(cfg, cfg.Logger)
	if err != nil {
		return nil, err
	}
	mc.Keyring, mc.SecretKey = keyring, nil

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.Name
	sc.Tags = cfg.Tags.encode()
	sc.MemberlistConfig = mc
	sc.Logger = std
	sc.LogOutput = nil
	sc.ReconnectInterval = cfg.ReconnectInterval
	sc.ReconnectTimeout = cfg.ReconnectTimeout
	sc.TombstoneTimeout = cfg.TombstoneTimeout
	sc.ReapInterval = cfg.ReapInterval
	sc.RejoinAfterLeave = cfg.RejoinAfterLeave
	// Keyring operations are serf queries, which wait this long for every member's
	// answer: memberlist's default LAN timing gives 3.2s; keep at least
	// minQueryTimeout when gossip is tuned faster, as tests do.
	if mc.GossipInterval > 0 && mc.GossipInterval*time.Duration(sc.QueryTimeoutMult) < minQueryTimeout {
		sc.QueryTimeoutMult = int((minQueryTimeout + mc.GossipInterval - 1) / mc.GossipInterval)
	}
	if cfg.SnapshotPath != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.SnapshotPath), 0o700); err != nil {
			return nil, fmt.Errorf("create gossip snapshot dir: %w", err)
		}
		sc.SnapshotPath = cfg.SnapshotPath
	}
	if keyring != nil {
		sc.KeyringFile = cfg.KeyringFile
	}
	p := &Pool{config: cfg, members: cfg.Members, logger: cfg.Logger, keyring: keyring, events: make(chan serf.Event, eventBuffer)}
	sc.EventCh = p.events

	if p.serf, err = serf.Create(sc); err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	if keyring != nil {
		cfg.Logger.Info("gossip encryption on", "keys", len(keyring.GetKeys()), "keyring", cfg.KeyringFile)
	}
	// The local member's join event is on its way, but callers may look themselves
	// up as soon as Create returns.
	p.members.apply(serf.EventMemberJoin, p.serf.LocalMember())
	p.wg.Add(1)
	go p.handleEvents()
	return p, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// resyncInterval is how often the member table is checked against serf's own list
// of members, to repair it should serf have dropped events.
const resyncInterval = 30 * time.Second

// handleEvents applies serf's member events to the member table, in the order serf
// sent them, until serf shuts down.
func (p *Pool) handleEvents() {
	defer p.wg.Done()
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-resync.C:
			p.members.sync(p.serf.Members())
		case e := <-p.events:
			if me, ok := e.(serf.MemberEvent); ok {
				for _, m := range me.Members {
					p.members.apply(me.Type, m)
				}
			}
		case <-p.serf.ShutdownCh():
			return
		}
	}
}

// Members returns the table of every member this one has heard of.
func (p *Pool) Members() *Members { return p.members }

// KeyManager returns serf's manager of the gossip encryption keyring, which lists,
// installs, switches and removes keys across the whole pool; ListKeys, InstallKey,
// UseKey and RemoveKey (keyring.go) run through it.
func (p *Pool) KeyManager() *serf.KeyManager { return p.serf.KeyManager() }

// LocalAddr returns the address other members reach this one at, host:port.
func (p *Pool) LocalAddr() string {
	n := p.serf.Memberlist().LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// LocalIP returns the IP other members reach this one at: the bind address, or the
// one memberlist chose to advertise when bound to every interface.
func (p *Pool) LocalIP() net.IP { return p.serf.Memberlist().LocalNode().Addr }

// Join contacts the members at addrs (host or host:port; DefaultPort if none) and
// returns how many answered; the error is set only when none did, and says so when
// the gossip keys did not match.
func (p *Pool) Join(addrs ...string) (int, error) {
	n, err := p.serf.Join(joinAddrs(addrs), true)
	return n, explainJoinError(err)
}

// JoinLoop joins the configured addresses, retrying with a backoff (see
// retryWait) until one answers, ctx ends, or RetryMax attempts have failed; then
// it sends the error to fatal if that has room. It returns at once if there is
// nothing to join.
func (p *Pool) JoinLoop(ctx context.Context, fatal chan<- error) {
	if len(p.config.Join) == 0 {
		return
	}
	for attempt := 1; ; attempt++ {
		n, err := p.Join(p.config.Join...)
		if n > 0 {
			p.logger.Info("joined gossip pool", "contacted", n)
			return
		}
		if p.config.RetryMax > 0 && attempt >= p.config.RetryMax {
			p.logger.Error("giving up joining the gossip pool", "attempts", attempt, "error", err)
			select {
			case fatal <- fmt.Errorf("could not join %v after %d attempts: %w", p.config.Join, attempt, err):
			default:
			}
			return
		}
		wait := retryWait(attempt, p.config.RetryInterval)
		p.logger.Warn("join failed, will retry", "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// retryWait is the wait after the attempt-th failed join: firstRetryInterval,
// doubling after each failure, and never more than max.
func retryWait(attempt int, max time.Duration) time.Duration {
	wait := firstRetryInterval
	for i := 1; i < attempt && wait < max; i++ {
		wait *= 2
	}
	if wait > max {
		return max
	}
	return wait
}

// Leave broadcasts a leave intent, so that the others show this member as left
// rather than failed, and leaves the pool, giving up after timeout. The pool still
// needs a Shutdown.
func (p *Pool) Leave(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.serf.Leave() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return errors.New("gossip leave timed out after " + timeout.String())
	}
}

// Shutdown stops gossiping at once; without a Leave first, the others see this
// member fail.
func (p *Pool) Shutdown() error {
	err := p.serf.Shutdown()
	p.wg.Wait()
	return err
}

// joinAddrs adds DefaultPort to join addresses that have none.
func joinAddrs(join []string) []string {
	out := make([]string, 0, len(join))
	for _, a := range join {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(DefaultPort))
		}
		out = append(out, a)
	}
	return out
}
