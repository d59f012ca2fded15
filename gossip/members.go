package gossip

import (
	"encoding/json"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
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

// Tags is the metadata every member gossips about itself. memberlist caps metadata
// at 512 bytes, so the JSON keys are short. They are the wire format: keep them.
type Tags struct {
	Role            string `json:"role"`
	ID              string `json:"id,omitempty"` // a server's Raft ID
	Version         string `json:"ver,omitempty"`
	HTTPPort        int    `json:"http,omitempty"`
	RPCPort         int    `json:"rpc,omitempty"`
	RaftPort        int    `json:"raft,omitempty"`
	BootstrapExpect int    `json:"expect,omitempty"`
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

// Members tracks every member seen, including failed and left ones, which
// memberlist itself forgets. It is safe for concurrent use.
type Members struct {
	mu      sync.Mutex
	members map[string]*Member
	// leaving holds members that announced a graceful leave: memberlist reports a
	// leave and a failure alike, so the announcement is what tells them apart.
	leaving map[string]time.Time
	subs    []subscription
}

type subscription struct {
	ch    chan struct{}
	match func(Member) bool
}

// NewMembers returns an empty member table.
func NewMembers() *Members {
	return &Members{members: map[string]*Member{}, leaving: map[string]time.Time{}}
}

// leaveIntentTTL is how long a leave announcement counts.
const leaveIntentTTL = time.Minute

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

// notify signals the subscribers interested in a change from old (nil if none) to
// m. The caller holds t.mu.
func (t *Members) notify(old, m *Member) {
	for _, s := range t.subs {
		if s.match != nil && !(old != nil && s.match(*old)) && !s.match(*m) {
			continue
		}
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
}

// markLeaving records that name announced its leave; if memberlist already reported
// it gone, it is now shown as left rather than failed.
func (t *Members) markLeaving(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leaving[name] = time.Now()
	if m, ok := t.members[name]; ok && m.Status == StatusFailed {
		old := *m
		m.Status = StatusLeft
		t.notify(&old, m)
	}
}

func (t *Members) set(n *memberlist.Node, status string) {
	m := &Member{Name: n.Name, Addr: append(net.IP(nil), n.Addr...), Port: n.Port, Status: status}
	_ = json.Unmarshal(n.Meta, &m.Tags) // a member with unreadable tags shows with none
	t.mu.Lock()
	defer t.mu.Unlock()
	switch at, ok := t.leaving[n.Name]; {
	case status == StatusAlive:
		delete(t.leaving, n.Name)
	case ok && time.Since(at) < leaveIntentTTL:
		m.Status = StatusLeft
	}
	old := t.members[n.Name]
	t.members[n.Name] = m
	t.notify(old, m)
}

// List returns copies of all members sorted by name.
func (t *Members) List() []Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AliveServers returns the alive members whose role is server and that have an ID.
func (t *Members) AliveServers() []Member {
	var out []Member
	for _, m := range t.List() {
		if m.Status == StatusAlive && m.Tags.Role == RoleServer && m.Tags.ID != "" {
			out = append(out, m)
		}
	}
	return out
}

// ServerByID returns the member of the server with Raft ID id, whatever its status.
func (t *Members) ServerByID(id string) (Member, bool) {
	for _, m := range t.List() {
		if m.Tags.Role == RoleServer && m.Tags.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
