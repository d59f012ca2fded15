package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/version"
)

// Member roles carried in gossip metadata; the servers use the same.
const (
	roleServer = "server"
	roleAgent  = "agent"
)

// tags is the metadata a member gossips about itself, in the servers' format: an
// agent sends its role, version and gRPC port, and reads servers' Raft ID and gRPC
// port. memberlist caps metadata at 512 bytes, so keys are short.
type tags struct {
	Role    string `json:"role"`
	ID      string `json:"id,omitempty"`
	Version string `json:"ver,omitempty"`
	RPCPort int    `json:"rpc,omitempty"`
}

// msgLeaveIntent opens the gossip message a member broadcasts before it leaves for
// good, followed by its name: memberlist reports a leave and a failure alike, and
// this tells the servers which it was.
const msgLeaveIntent byte = 1

// serverTable tracks the alive servers' gRPC addresses as gossip reports them.
type serverTable struct {
	mu      sync.Mutex
	servers map[string]string // member name -> gRPC host:port
	changed chan struct{}     // receives a signal after a change; signals coalesce
}

func newServerTable() *serverTable {
	return &serverTable{servers: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (t *serverTable) update(n *memberlist.Node, alive bool) {
	var tg tags
	if err := json.Unmarshal(n.Meta, &tg); err != nil || tg.Role != roleServer || tg.ID == "" || tg.RPCPort == 0 {
		return
	}
	t.mu.Lock()
	if alive {
		t.servers[n.Name] = net.JoinHostPort(n.Addr.String(), strconv.Itoa(tg.RPCPort))
	} else {
		delete(t.servers, n.Name)
	}
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// list returns the alive servers' gRPC addresses, sorted.
func (t *serverTable) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.servers))
	for _, a := range t.servers {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// gossipDelegate gives memberlist the agent's metadata and broadcasts, and tells the
// server table about membership changes.
type gossipDelegate struct {
	meta    []byte
	servers *serverTable
	queue   *memberlist.TransmitLimitedQueue
}

// broadcast is one message in the gossip broadcast queue.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (d *gossipDelegate) NotifyMsg([]byte) {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *gossipDelegate) LocalState(bool) []byte          { return nil }
func (d *gossipDelegate) MergeRemoteState([]byte, bool)   {}
func (d *gossipDelegate) NotifyJoin(n *memberlist.Node)   { d.servers.update(n, true) }
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node) { d.servers.update(n, true) }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node)  { d.servers.update(n, false) }

// setupGossip starts memberlist with the agent's tags.
func (a *Agent) setupGossip() error {
	meta, err := json.Marshal(tags{Role: roleAgent, Version: version.String(), RPCPort: a.rpcLn.Addr().(*net.TCPAddr).Port})
	if err != nil {
		return err
	}
	mc := memberlist.DefaultLANConfig()
	if a.config.GossipConfig != nil {
		copied := *a.config.GossipConfig
		mc = &copied
	}
	mc.Name = a.config.Name
	mc.BindAddr = a.config.BindAddr
	mc.BindPort = a.config.GossipPort
	mc.AdvertisePort = a.config.GossipPort
	d := &gossipDelegate{meta: meta, servers: a.servers}
	d.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return a.gossip.NumMembers() }, RetransmitMult: mc.RetransmitMult}
	a.gossipQueue = d.queue
	mc.Delegate = d
	mc.Events = d
	mc.Logger = a.logger.Named("gossip").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	mc.LogOutput = nil
	if a.gossip, err = memberlist.Create(mc); err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	return nil
}

// joinLoop joins the configured addresses, retrying every RetryInterval until one
// answers or RetryMax attempts have failed, which is fatal.
func (a *Agent) joinLoop() {
	log := a.logger.Named("gossip")
	for attempt := 1; ; attempt++ {
		n, err := a.gossip.Join(joinAddrs(a.config.Join))
		if n > 0 {
			log.Info("joined gossip pool", "contacted", n)
			return
		}
		if a.config.RetryMax > 0 && attempt >= a.config.RetryMax {
			log.Error("giving up joining the gossip pool", "attempts", attempt, "error", err)
			a.fail(fmt.Errorf("could not join %v after %d attempts: %w", a.config.Join, attempt, err))
			return
		}
		log.Warn("join failed, will retry", "attempt", attempt, "retry_in", a.config.RetryInterval, "error", err)
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(a.config.RetryInterval):
		}
	}
}

// leaveGossip announces a graceful leave, gives the announcement a moment to spread,
// then leaves the pool.
func (a *Agent) leaveGossip(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if a.gossip.NumMembers() > 1 {
		a.gossipQueue.QueueBroadcast(broadcast(append([]byte{msgLeaveIntent}, a.config.Name...)))
		for a.gossipQueue.NumQueued() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return a.gossip.Leave(time.Until(deadline))
}

// joinAddrs adds the default gossip port to join addresses that have none.
func joinAddrs(join []string) []string {
	out := make([]string, 0, len(join))
	for _, a := range join {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(DefaultGossipPort))
		}
		out = append(out, a)
	}
	return out
}
