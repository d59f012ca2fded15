package server

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/version"
)

// Member roles carried in gossip metadata.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// Member statuses as the CLI shows them.
const (
	StatusAlive  = "alive"
	StatusFailed = "failed"
	StatusLeft   = "left"
)

// tags is the metadata every member gossips about itself. memberlist caps metadata at
// 512 bytes, so keys are short and values are strings.
type tags struct {
	Role            string `json:"role"`
	ID              string `json:"id,omitempty"`
	Version         string `json:"ver,omitempty"`
	HTTPPort        int    `json:"http,omitempty"`
	RPCPort         int    `json:"rpc,omitempty"`
	RaftPort        int    `json:"raft,omitempty"`
	BootstrapExpect int    `json:"expect,omitempty"`
}

func (t tags) asMap() map[string]string {
	m := map[string]string{"role": t.Role}
	if t.ID != "" {
		m["id"] = t.ID
	}
	if t.Version != "" {
		m["version"] = t.Version
	}
	for k, v := range map[string]int{"http_port": t.HTTPPort, "rpc_port": t.RPCPort, "raft_port": t.RaftPort, "bootstrap_expect": t.BootstrapExpect} {
		if v != 0 {
			m[k] = strconv.Itoa(v)
		}
	}
	return m
}

// member is one gossip member as this server last heard of it.
type member struct {
	Name   string
	Addr   net.IP
	Port   uint16
	Status string
	Tags   tags
}

func (m *member) hostPort(port int) string {
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(port))
}

// memberTable tracks every member seen, including failed and left ones, which
// memberlist itself forgets.
type memberTable struct {
	mu      sync.Mutex
	members map[string]*member
	// leaving holds members that announced a graceful leave: memberlist reports a
	// leave and a failure alike, so the announcement is what tells them apart.
	leaving map[string]time.Time
	subs    []chan struct{}
}

func newMemberTable() *memberTable {
	return &memberTable{members: map[string]*member{}, leaving: map[string]time.Time{}}
}

// leaveIntentTTL is how long a leave announcement counts.
const leaveIntentTTL = time.Minute

// markLeaving records that name announced its leave; if memberlist already reported
// it gone, it is now shown as left rather than failed.
func (t *memberTable) markLeaving(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leaving[name] = time.Now()
	if m, ok := t.members[name]; ok && m.Status == StatusFailed {
		m.Status = StatusLeft
		t.notify()
	}
}

func (t *memberTable) notify() {
	for _, ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel that receives a signal after every change; signals
// coalesce, so a slow reader sees one for many changes.
func (t *memberTable) subscribe() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{}, 1)
	t.subs = append(t.subs, ch)
	return ch
}

func (t *memberTable) set(n *memberlist.Node, status string) {
	m := &member{Name: n.Name, Addr: append(net.IP(nil), n.Addr...), Port: n.Port, Status: status}
	_ = json.Unmarshal(n.Meta, &m.Tags) // a member with unreadable tags shows with none
	t.mu.Lock()
	defer t.mu.Unlock()
	switch at, ok := t.leaving[n.Name]; {
	case status == StatusAlive:
		delete(t.leaving, n.Name)
	case ok && time.Since(at) < leaveIntentTTL:
		m.Status = StatusLeft
	}
	t.members[n.Name] = m
	t.notify()
}

// list returns copies of all members sorted by name.
func (t *memberTable) list() []member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// aliveServers returns the alive members whose role is server.
func (t *memberTable) aliveServers() []member {
	var out []member
	for _, m := range t.list() {
		if m.Status == StatusAlive && m.Tags.Role == RoleServer && m.Tags.ID != "" {
			out = append(out, m)
		}
	}
	return out
}

// serverByID returns the member of the server with Raft ID id.
func (t *memberTable) serverByID(id string) (member, bool) {
	for _, m := range t.list() {
		if m.Tags.Role == RoleServer && m.Tags.ID == id {
			return m, true
		}
	}
	return member{}, false
}

// gossipDelegate gives memberlist this server's metadata and reports membership
// changes to the member table.
type gossipDelegate struct {
	meta    []byte
	members *memberTable
	queue   *memberlist.TransmitLimitedQueue
}

// msgLeaveIntent opens the gossip message a member broadcasts before it leaves
// gracefully; the member's name follows.
const msgLeaveIntent byte = 1

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
func (d *gossipDelegate) NotifyMsg(msg []byte) {
	if len(msg) > 1 && msg[0] == msgLeaveIntent {
		d.members.markLeaving(string(msg[1:]))
	}
}

func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *gossipDelegate) LocalState(join bool) []byte            { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool) {}

func (d *gossipDelegate) NotifyJoin(n *memberlist.Node)   { d.members.set(n, StatusAlive) }
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node) { d.members.set(n, StatusAlive) }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node) {
	status := StatusFailed
	if n.State == memberlist.StateLeft {
		status = StatusLeft
	}
	d.members.set(n, status)
}

// setupGossip starts memberlist with this server's tags.
func (s *Server) setupGossip() error {
	t := tags{
		Role:            RoleServer,
		ID:              s.id,
		Version:         version.String(),
		HTTPPort:        s.httpLn.Addr().(*net.TCPAddr).Port,
		RPCPort:         s.rpcLn.Addr().(*net.TCPAddr).Port,
		RaftPort:        portOf(string(s.transport.LocalAddr())),
		BootstrapExpect: s.config.BootstrapExpect,
	}
	meta, err := json.Marshal(t)
	if err != nil {
		return err
	}
	mc := memberlist.DefaultLANConfig()
	if s.config.GossipConfig != nil {
		copied := *s.config.GossipConfig
		mc = &copied
	}
	mc.Name = s.config.NodeName
	mc.BindAddr = s.config.BindAddr
	mc.BindPort = s.config.GossipPort
	mc.AdvertisePort = s.config.GossipPort
	d := &gossipDelegate{meta: meta, members: s.members}
	d.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return s.gossip.NumMembers() }, RetransmitMult: mc.RetransmitMult}
	s.gossipQueue = d.queue
	mc.Delegate = d
	mc.Events = d
	mc.Logger = s.logger.Named("gossip").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	mc.LogOutput = nil
	if s.gossip, err = memberlist.Create(mc); err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	s.members.set(s.gossip.LocalNode(), StatusAlive)
	return nil
}

// leaveGossip announces a graceful leave, gives the announcement a moment to spread,
// then leaves the pool.
func (s *Server) leaveGossip(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if s.gossip.NumMembers() > 1 {
		s.gossipQueue.QueueBroadcast(broadcast(append([]byte{msgLeaveIntent}, s.config.NodeName...)))
		for s.gossipQueue.NumQueued() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return s.gossip.Leave(time.Until(deadline))
}

// joinLoop joins the configured addresses, retrying every RetryInterval until one
// answers or RetryMax attempts have failed.
func (s *Server) joinLoop() {
	log := s.logger.Named("gossip")
	for attempt := 1; ; attempt++ {
		n, err := s.gossip.Join(s.joinAddrs())
		if n > 0 {
			log.Info("joined gossip pool", "contacted", n)
			return
		}
		if s.config.RetryMax > 0 && attempt >= s.config.RetryMax {
			log.Error("giving up joining the gossip pool", "attempts", attempt, "error", err)
			s.fatal <- fmt.Errorf("could not join %v after %d attempts: %w", s.config.Join, attempt, err)
			return
		}
		log.Warn("join failed, will retry", "attempt", attempt, "retry_in", s.config.RetryInterval, "error", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.config.RetryInterval):
		}
	}
}

// joinAddrs adds the default gossip port to join addresses that have none.
func (s *Server) joinAddrs() []string {
	out := make([]string, 0, len(s.config.Join))
	for _, a := range s.config.Join {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(DefaultGossipPort))
		}
		out = append(out, a)
	}
	return out
}

func portOf(hostPort string) int {
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// advertiseIP picks the address to advertise when bound to every interface.
func advertiseIP() (net.IP, error) {
	s, err := sockaddr.GetPrivateIP()
	if err != nil || s == "" {
		return nil, fmt.Errorf("bound to all interfaces but found no private IP to advertise; use -bind")
	}
	return net.ParseIP(s), nil
}
