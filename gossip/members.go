package gossip

import (
	"net"
	"sort"
	"strconv"
	"sync"

	"github.com/hashicorp/serf/serf"
)

// Member roles carried in Tags.Role.
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

// Tags is the metadata every member gossips about itself, as serf tags. memberlist
// caps a member's metadata at 512 bytes, so the tag keys are short (see encode).
// They are the wire format: keep them.
type Tags struct {
	Role            string
	ID              string // a server's Raft ID
	Version         string
	HTTPPort        int
	RPCPort         int
	RaftPort        int
	BootstrapExpect int
}

// Serf tag keys of Tags' fields.
const (
	tagRole    = "role"
	tagID      = "id"
	tagVersion = "ver"
	tagHTTP    = "http"
	tagRPC     = "rpc"
	tagRaft    = "raft"
	tagExpect  = "expect"
)

// encode returns the tags as serf tags; fields that are not set are left out.
func (t Tags) encode() map[string]string {
	m := map[string]string{tagRole: t.Role}
	for k, v := range map[string]string{tagID: t.ID, tagVersion: t.Version} {
		if v != "" {
			m[k] = v
		}
	}
	for k, v := range map[string]int{tagHTTP: t.HTTPPort, tagRPC: t.RPCPort, tagRaft: t.RaftPort, tagExpect: t.BootstrapExpect} {
		if v != 0 {
			m[k] = strconv.Itoa(v)
		}
	}
	return m
}

// decodeTags reads serf tags back; a number that does not parse reads as 0, and
// unknown tags (from a newer version) are ignored.
func decodeTags(m map[string]string) Tags {
	num := func(k string) int {
		n, _ := strconv.Atoi(m[k])
		return n
	}
	return Tags{
		Role:            m[tagRole],
		ID:              m[tagID],
		Version:         m[tagVersion],
		HTTPPort:        num(tagHTTP),
		RPCPort:         num(tagRPC),
		RaftPort:        num(tagRaft),
		BootstrapExpect: num(tagExpect),
	}
}

// Map returns the tags that are set by their long names (role, id, version,
// http_port, rpc_port, raft_port, bootstrap_expect), as the HTTP API shows them.
func (t Tags) Map() map[string]string {
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

// Member is one gossip member as this one last heard of it.
type Member struct {
	Name   string
	Addr   net.IP
	Port   uint16 // the gossip port
	Status string // StatusAlive, StatusFailed or StatusLeft
	Tags   Tags
}

// HostPort returns the member's address with port, one of the ports in its tags.
func (m *Member) HostPort(port int) string {
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(port))
}

// isServer reports whether m is a server with a Raft ID, one that ServerByID finds.
func (m *Member) isServer() bool { return m.Tags.Role == RoleServer && m.Tags.ID != "" }

// Members is the table of every member this one knows, failed and left ones
// included until serf reaps them. A Pool keeps it up to date from serf's events, so
// reading it never waits on gossip. It is safe for concurrent use.
type Members struct {
	mu     sync.RWMutex
	byName map[string]*Member
	// servers maps a server's Raft ID to the names of the members that claim it
	// (one, unless a server's data dir moved to another name), with the table's
	// update count when each was last heard of, so that the lookup on every
	// forwarded write costs a map access or two.
	servers map[string]map[string]uint64
	updates uint64
	subs    []subscription
}

type subscription struct {
	ch    chan struct{}
	match func(Member) bool
}

// NewMembers returns an empty member table.
func NewMembers() *Members {
	return &Members{byName: map[string]*Member{}, servers: map[string]map[string]uint64{}}
}

// Subscribe returns a channel that receives a signal after every change to a member
// for which match is true before or after the change (nil matches every member);
// signals coalesce, so a slow reader sees one for many changes.
func (t *Members) Subscribe(match func(Member) bool) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{}, 1)
	t.subs = append(t.subs, subscription{ch: ch, match: match})
	return ch
}

// notify signals the subscribers interested in a change from old to m (either may
// be nil: a new member, a reaped one). The caller holds t.mu.
func (t *Members) notify(old, m *Member) {
	for _, s := range t.subs {
		if s.match != nil && !(old != nil && s.match(*old)) && !(m != nil && s.match(*m)) {
			continue
		}
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
}

// eventStatus is a member's status after a serf member event: a join or an update
// makes it alive, a leave left, a failure failed; "" for other events.
func eventStatus(event serf.EventType) string {
	switch event {
	case serf.EventMemberJoin, serf.EventMemberUpdate:
		return StatusAlive
	case serf.EventMemberLeave:
		return StatusLeft
	case serf.EventMemberFailed:
		return StatusFailed
	}
	return ""
}

// apply records what a serf member event says of one member: a join or an update
// makes it alive, a leave left, a failure failed; a reap forgets it.
func (t *Members) apply(event serf.EventType, sm serf.Member) {
	if event == serf.EventMemberReap {
		t.remove(sm.Name)
		return
	}
	status := eventStatus(event)
	if status == "" {
		return
	}
	m := &Member{Name: sm.Name, Addr: append(net.IP(nil), sm.Addr...), Port: sm.Port, Status: status, Tags: decodeTags(sm.Tags)}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.byName[m.Name]
	t.byName[m.Name] = m
	if old != nil {
		t.unindex(old)
	}
	if m.isServer() {
		t.updates++
		if t.servers[m.Tags.ID] == nil {
			t.servers[m.Tags.ID] = map[string]uint64{}
		}
		t.servers[m.Tags.ID][m.Name] = t.updates
	}
	t.notify(old, m)
}

// sync makes the table match serf's own list of members, which it only differs from
// if events were lost: serf drops events rather than block when the channel it
// sends them to is full.
func (t *Members) sync(current []serf.Member) {
	known := make(map[string]bool, len(current))
	for _, sm := range current {
		known[sm.Name] = true
		var event serf.EventType
		switch sm.Status {
		case serf.StatusAlive, serf.StatusLeaving:
			event = serf.EventMemberJoin
		case serf.StatusLeft:
			event = serf.EventMemberLeave
		case serf.StatusFailed:
			event = serf.EventMemberFailed
		default:
			continue
		}
		m, ok := t.Get(sm.Name)
		if ok && m.Status == eventStatus(event) && m.Addr.Equal(sm.Addr) && m.Port == sm.Port && m.Tags == decodeTags(sm.Tags) {
			continue
		}
		t.apply(event, sm)
	}
	for _, m := range t.List() {
		if !known[m.Name] {
			t.remove(m.Name)
		}
	}
}

// remove forgets a reaped member.
func (t *Members) remove(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.byName[name]
	if !ok {
		return
	}
	delete(t.byName, name)
	t.unindex(old)
	t.notify(old, nil)
}

// unindex drops m's claim to its Raft ID. The caller holds t.mu.
func (t *Members) unindex(m *Member) {
	if !m.isServer() {
		return
	}
	claims := t.servers[m.Tags.ID]
	delete(claims, m.Name)
	if len(claims) == 0 {
		delete(t.servers, m.Tags.ID)
	}
}

// Get returns the member named name.
func (t *Members) Get(name string) (Member, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if m, ok := t.byName[name]; ok {
		return *m, true
	}
	return Member{}, false
}

// List returns copies of all members sorted by name.
func (t *Members) List() []Member {
	return t.filter(nil)
}

// AliveServers returns the alive members whose role is server and that have an ID,
// sorted by name.
func (t *Members) AliveServers() []Member {
	return t.filter(func(m *Member) bool { return m.Status == StatusAlive && m.isServer() })
}

// filter returns copies of the members for which keep is true (nil keeps all),
// sorted by name.
func (t *Members) filter(keep func(*Member) bool) []Member {
	t.mu.RLock()
	out := make([]Member, 0, len(t.byName))
	for _, m := range t.byName {
		if keep == nil || keep(m) {
			out = append(out, *m)
		}
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ServerByID returns the member of the server with Raft ID id, whatever its status.
// Should two members claim the ID, it is an alive one, else the one heard of last.
func (t *Members) ServerByID(id string) (Member, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *Member
	var bestSeen uint64
	for name, seen := range t.servers[id] {
		m := t.byName[name]
		better := best == nil
		if !better {
			alive, bestAlive := m.Status == StatusAlive, best.Status == StatusAlive
			better = alive && !bestAlive || alive == bestAlive && seen > bestSeen
		}
		if better {
			best, bestSeen = m, seen
		}
	}
	if best == nil {
		return Member{}, false
	}
	return *best, true
}
