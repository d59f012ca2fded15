// Package gossip is the membership layer the servers and the agents share: it wraps
// hashicorp/memberlist with the metadata every member gossips about itself (Tags), a
// table of every member seen, including failed and left ones (Members), and a Pool
// that creates the memberlist, joins the configured addresses and leaves gracefully.
//
// memberlist reports a graceful leave and a failure alike, so a member that leaves
// first broadcasts a leave intent (msgLeaveIntent, then its name); the members that
// hear it show it as left rather than failed.
package gossip

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Defaults of Config.
const (
	// DefaultPort is the gossip port, TCP and UDP, and the port join addresses
	// without one get.
	DefaultPort = 7946
	// DefaultRetryInterval is the wait between join attempts.
	DefaultRetryInterval = 30 * time.Second
)

// Config configures a Pool.
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
	// Base, if set, is the memberlist configuration to start from; it is copied, and
	// Name, BindAddr, BindPort, AdvertisePort, Delegate, Events and Logger are set on
	// the copy. Default: memberlist.DefaultLANConfig().
	Base *memberlist.Config
	// Members is the table that membership changes are reported to. Default: a new
	// one, which Pool.Members returns either way.
	Members *Members
	// Logger receives memberlist's log and the join loop's. Default: no logging.
	Logger hclog.Logger
	// Join lists addresses (host or host:port; DefaultPort if none) that JoinLoop
	// joins.
	Join []string
	// RetryInterval is the wait between join attempts. Default: DefaultRetryInterval.
	RetryInterval time.Duration
	// RetryMax bounds join attempts; 0 retries forever. Default: 0.
	RetryMax int
}

// Pool is this member's membership of a gossip pool. Create starts it; Leave and
// Shutdown stop it.
type Pool struct {
	config  Config
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	members *Members
	logger  hclog.Logger
}

// Create starts memberlist with cfg's tags; the pool has only this member until it
// joins another.
func Create(cfg Config) (*Pool, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("gossip: a member name is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Members == nil {
		cfg.Members = NewMembers()
	}
	meta, err := json.Marshal(cfg.Tags)
	if err != nil {
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	if cfg.Base != nil {
		copied := *cfg.Base
		mc = &copied
	}
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.Port
	mc.AdvertisePort = cfg.Port
	p := &Pool{config: cfg, members: cfg.Members, logger: cfg.Logger}
	p.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return p.ml.NumMembers() }, RetransmitMult: mc.RetransmitMult}
	d := &delegate{meta: meta, members: p.members, queue: p.queue}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = cfg.Logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	mc.LogOutput = nil
	if p.ml, err = memberlist.Create(mc); err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	p.members.set(p.ml.LocalNode(), StatusAlive)
	return p, nil
}

// Members returns the table of every member this one has heard of.
func (p *Pool) Members() *Members { return p.members }

// LocalAddr returns the address other members reach this one at, host:port.
func (p *Pool) LocalAddr() string {
	n := p.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// LocalIP returns the IP other members reach this one at: the bind address, or the
// one memberlist chose to advertise when bound to every interface.
func (p *Pool) LocalIP() net.IP { return p.ml.LocalNode().Addr }

// JoinLoop joins the configured addresses, retrying every RetryInterval until one
// answers, ctx ends, or RetryMax attempts have failed; then it sends the error to
// fatal if that has room. It returns at once if there is nothing to join.
func (p *Pool) JoinLoop(ctx context.Context, fatal chan<- error) {
	if len(p.config.Join) == 0 {
		return
	}
	addrs := joinAddrs(p.config.Join)
	for attempt := 1; ; attempt++ {
		n, err := p.ml.Join(addrs)
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
		p.logger.Warn("join failed, will retry", "attempt", attempt, "retry_in", p.config.RetryInterval, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.config.RetryInterval):
		}
	}
}

// Leave announces a graceful leave, gives the announcement up to timeout to spread,
// then leaves the pool within what is left of timeout. The pool still needs a
// Shutdown.
func (p *Pool) Leave(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if p.ml.NumMembers() > 1 {
		p.queue.QueueBroadcast(broadcast(append([]byte{msgLeaveIntent}, p.config.Name...)))
		for p.queue.NumQueued() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return p.ml.Leave(time.Until(deadline))
}

// Shutdown stops gossiping at once; without a Leave first, the others see this
// member fail.
func (p *Pool) Shutdown() error { return p.ml.Shutdown() }

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

// msgLeaveIntent opens the gossip message a member broadcasts before it leaves
// gracefully; the member's name follows.
const msgLeaveIntent byte = 1

// broadcast is one message in the gossip broadcast queue.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// delegate gives memberlist this member's metadata and broadcasts, and reports
// membership changes and leave intents to the member table.
type delegate struct {
	meta    []byte
	members *Members
	queue   *memberlist.TransmitLimitedQueue
}

func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}

func (d *delegate) NotifyMsg(msg []byte) {
	if len(msg) > 1 && msg[0] == msgLeaveIntent {
		d.members.markLeaving(string(msg[1:]))
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *delegate) LocalState(join bool) []byte            { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.members.set(n, StatusAlive) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.members.set(n, StatusAlive) }
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	status := StatusFailed
	if n.State == memberlist.StateLeft {
		status = StatusLeft
	}
	d.members.set(n, status)
}
