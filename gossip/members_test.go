package gossip

import (
	"fmt"
	"net"
	"reflect"
	"testing"

	"github.com/hashicorp/serf/serf"
)

func TestTagsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags Tags
		wire map[string]string
	}{
		{"server", Tags{Role: RoleServer, ID: "abc", Version: "1.2.3", HTTPPort: 4646, RPCPort: 4647, RaftPort: 4648, BootstrapExpect: 3},
			map[string]string{"role": "server", "id": "abc", "ver": "1.2.3", "http": "4646", "rpc": "4647", "raft": "4648", "expect": "3"}},
		{"agent", Tags{Role: RoleAgent, Version: "1.2.3", RPCPort: 4650},
			map[string]string{"role": "agent", "ver": "1.2.3", "rpc": "4650"}},
		{"empty", Tags{}, map[string]string{"role": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := tc.tags.encode()
			if !reflect.DeepEqual(wire, tc.wire) {
				t.Fatalf("wire format:\n got %v\nwant %v", wire, tc.wire)
			}
			if back := decodeTags(wire); back != tc.tags {
				t.Fatalf("round trip: got %+v, want %+v", back, tc.tags)
			}
		})
	}
}

func TestDecodeTagsTolerates(t *testing.T) {
	got := decodeTags(map[string]string{"role": "server", "rpc": "not a number", "future": "x"})
	if want := (Tags{Role: RoleServer}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := decodeTags(nil); got != (Tags{}) {
		t.Fatalf("nil tags decode to %+v", got)
	}
}

func TestTagsMap(t *testing.T) {
	got := Tags{Role: RoleServer, ID: "abc", Version: "v", RPCPort: 4647, BootstrapExpect: 3}.Map()
	want := map[string]string{"role": "server", "id": "abc", "version": "v", "rpc_port": "4647", "bootstrap_expect": "3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// serfMember is a member as serf reports it in its events.
func serfMember(name string, tags Tags) serf.Member {
	return serf.Member{Name: name, Addr: net.ParseIP("10.0.0.1"), Port: 7946, Tags: tags.encode()}
}

// step is one serf event about one member, and the member's status after it ("" if
// the table no longer has it).
type step struct {
	event  serf.EventType
	tags   Tags // default: a server's
	status string
}

func TestMemberStatuses(t *testing.T) {
	srv := Tags{Role: RoleServer, ID: "id-a", RPCPort: 4647}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"failure", []step{{event: serf.EventMemberJoin, status: StatusAlive}, {event: serf.EventMemberFailed, status: StatusFailed}}},
		{"graceful leave", []step{{event: serf.EventMemberJoin, status: StatusAlive}, {event: serf.EventMemberLeave, status: StatusLeft}}},
		// serf reports a leave intent that arrives after the failure as a leave.
		{"late leave intent", []step{
			{event: serf.EventMemberJoin, status: StatusAlive},
			{event: serf.EventMemberFailed, status: StatusFailed},
			{event: serf.EventMemberLeave, status: StatusLeft},
		}},
		{"reconnect after failure", []step{
			{event: serf.EventMemberJoin, status: StatusAlive},
			{event: serf.EventMemberFailed, status: StatusFailed},
			{event: serf.EventMemberJoin, status: StatusAlive},
		}},
		{"update keeps alive", []step{
			{event: serf.EventMemberJoin, status: StatusAlive},
			{event: serf.EventMemberUpdate, tags: Tags{Role: RoleServer, ID: "id-b"}, status: StatusAlive},
		}},
		{"reap forgets", []step{
			{event: serf.EventMemberJoin, status: StatusAlive},
			{event: serf.EventMemberFailed, status: StatusFailed},
			{event: serf.EventMemberReap, status: ""},
			{event: serf.EventMemberReap, status: ""},
		}},
		{"user events are ignored", []step{{event: serf.EventUser, status: ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := NewMembers()
			for i, s := range tc.steps {
				tags := srv
				if s.tags != (Tags{}) {
					tags = s.tags
				}
				members.apply(s.event, serfMember("a", tags))
				list := members.List()
				if s.status == "" {
					if len(list) != 0 {
						t.Fatalf("after step %d (%s): members %+v, want none", i, s.event, list)
					}
					continue
				}
				if len(list) != 1 || list[0].Name != "a" || list[0].Status != s.status || list[0].Tags != tags {
					t.Fatalf("after step %d (%s): members %+v, want a %s with %+v", i, s.event, list, s.status, tags)
				}
			}
		})
	}
}

func TestMemberLookups(t *testing.T) {
	members := NewMembers()
	join := func(name string, tags Tags) { members.apply(serf.EventMemberJoin, serfMember(name, tags)) }
	join("s2", Tags{Role: RoleServer, ID: "id2", RaftPort: 4648})
	join("s1", Tags{Role: RoleServer, ID: "id1", RaftPort: 4648})
	join("s3", Tags{Role: RoleServer, ID: "id3"})
	join("noid", Tags{Role: RoleServer})
	join("a1", Tags{Role: RoleAgent, ID: "id1"})
	members.apply(serf.EventMemberJoin, serf.Member{Name: "junk"})
	members.apply(serf.EventMemberFailed, serfMember("s3", Tags{Role: RoleServer, ID: "id3"}))

	var names []string
	for _, m := range members.AliveServers() {
		names = append(names, m.Name)
	}
	if want := []string{"s1", "s2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("alive servers %v, want %v", names, want)
	}
	for _, tc := range []struct {
		id, name string
		ok       bool
	}{{"id1", "s1", true}, {"id3", "s3", true}, {"nope", "", false}, {"", "", false}} {
		m, ok := members.ServerByID(tc.id)
		if ok != tc.ok || m.Name != tc.name {
			t.Errorf("ServerByID(%q) = %s, %v; want %s, %v", tc.id, m.Name, ok, tc.name, tc.ok)
		}
	}
	m, _ := members.ServerByID("id1")
	if got := m.HostPort(m.Tags.RaftPort); got != "10.0.0.1:4648" {
		t.Errorf("HostPort = %s", got)
	}
	if m, ok := members.Get("a1"); !ok || m.Tags.Role != RoleAgent {
		t.Errorf("Get(a1) = %+v, %v", m, ok)
	}
	list := members.List()
	if len(list) != 6 || list[0].Name != "a1" || list[1].Name != "junk" || list[1].Tags != (Tags{}) {
		t.Errorf("list %+v", list)
	}
}

// TestServerIndex follows the Raft ID index through the changes that move it.
func TestServerIndex(t *testing.T) {
	type op struct {
		event serf.EventType
		name  string
		tags  Tags
	}
	srv := func(id string) Tags { return Tags{Role: RoleServer, ID: id} }
	for _, tc := range []struct {
		name string
		ops  []op
		id   string
		want string // the member ServerByID(id) finds, "" for none
	}{
		{"a server's ID changes", []op{
			{serf.EventMemberJoin, "s", srv("old")},
			{serf.EventMemberUpdate, "s", srv("new")},
		}, "old", ""},
		{"the new ID is indexed", []op{
			{serf.EventMemberJoin, "s", srv("old")},
			{serf.EventMemberUpdate, "s", srv("new")},
		}, "new", "s"},
		{"a server becomes an agent", []op{
			{serf.EventMemberJoin, "s", srv("x")},
			{serf.EventMemberUpdate, "s", Tags{Role: RoleAgent, ID: "x"}},
		}, "x", ""},
		{"an alive claimant wins over a failed one", []op{
			{serf.EventMemberJoin, "old-name", srv("x")},
			{serf.EventMemberFailed, "old-name", srv("x")},
			{serf.EventMemberJoin, "new-name", srv("x")},
			{serf.EventMemberFailed, "old-name", srv("x")},
		}, "x", "new-name"},
		{"a failed claimant does not displace an alive one", []op{
			{serf.EventMemberJoin, "new-name", srv("x")},
			{serf.EventMemberJoin, "old-name", srv("x")},
			{serf.EventMemberFailed, "old-name", srv("x")},
		}, "x", "new-name"},
		{"reaping the indexed claimant finds the other", []op{
			{serf.EventMemberJoin, "a", srv("x")},
			{serf.EventMemberFailed, "a", srv("x")},
			{serf.EventMemberJoin, "b", srv("x")},
			{serf.EventMemberFailed, "b", srv("x")},
			{serf.EventMemberReap, "b", srv("x")},
		}, "x", "a"},
		{"reaping the last claimant", []op{
			{serf.EventMemberJoin, "a", srv("x")},
			{serf.EventMemberLeave, "a", srv("x")},
			{serf.EventMemberReap, "a", srv("x")},
		}, "x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := NewMembers()
			for _, o := range tc.ops {
				members.apply(o.event, serfMember(o.name, o.tags))
			}
			m, ok := members.ServerByID(tc.id)
			if ok != (tc.want != "") || m.Name != tc.want {
				t.Fatalf("ServerByID(%s) = %q, %v; want %q", tc.id, m.Name, ok, tc.want)
			}
		})
	}
}

// TestSync: the table repairs itself from serf's list of members, should events
// have been lost.
func TestSync(t *testing.T) {
	members := NewMembers()
	srv := Tags{Role: RoleServer, ID: "id-s"}
	members.apply(serf.EventMemberJoin, serfMember("stale-alive", srv))  // serf: failed
	members.apply(serf.EventMemberJoin, serfMember("reaped", Tags{}))    // serf: gone
	members.apply(serf.EventMemberJoin, serfMember("unchanged", Tags{})) // serf: alive
	changed := members.Subscribe(nil)

	failed := serfMember("stale-alive", srv)
	failed.Status = serf.StatusFailed
	unchanged := serfMember("unchanged", Tags{})
	unchanged.Status = serf.StatusAlive
	leaving := serfMember("leaving", Tags{Role: RoleAgent})
	leaving.Status = serf.StatusLeaving
	left := serfMember("left", Tags{Role: RoleAgent})
	left.Status = serf.StatusLeft
	none := serfMember("none", Tags{})
	members.sync([]serf.Member{failed, unchanged, leaving, left, none})

	got := map[string]string{}
	for _, m := range members.List() {
		got[m.Name] = m.Status
	}
	want := map[string]string{"stale-alive": StatusFailed, "unchanged": StatusAlive, "leaving": StatusAlive, "left": StatusLeft}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after sync %v, want %v", got, want)
	}
	if m, ok := members.ServerByID("id-s"); !ok || m.Status != StatusFailed {
		t.Fatalf("ServerByID after sync: %+v, %v", m, ok)
	}
	if !signalled(changed) {
		t.Fatal("sync changed members without a signal")
	}
	// A second sync with the same list changes nothing.
	members.sync([]serf.Member{failed, unchanged, leaving, left, none})
	if signalled(changed) {
		t.Fatal("a sync that changed nothing signalled")
	}
}

func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSubscribe(t *testing.T) {
	members := NewMembers()
	all := members.Subscribe(nil)
	servers := members.Subscribe(func(m Member) bool { return m.Status == StatusAlive && m.Tags.Role == RoleServer })
	srv, agent := Tags{Role: RoleServer, ID: "x"}, Tags{Role: RoleAgent}
	for _, tc := range []struct {
		what        string
		event       serf.EventType
		name        string
		tags        Tags
		all, server bool
	}{
		{"agent joins", serf.EventMemberJoin, "a", agent, true, false},
		{"server joins", serf.EventMemberJoin, "s", srv, true, true},
		{"server updates", serf.EventMemberUpdate, "s", srv, true, true},
		{"server fails", serf.EventMemberFailed, "s", srv, true, true},
		{"failed server's late leave", serf.EventMemberLeave, "s", srv, true, false},
		{"left server is reaped", serf.EventMemberReap, "s", srv, true, false},
		{"unknown member is reaped", serf.EventMemberReap, "nobody", srv, false, false},
		{"agent fails", serf.EventMemberFailed, "a", agent, true, false},
	} {
		members.apply(tc.event, serfMember(tc.name, tc.tags))
		if got := signalled(all); got != tc.all {
			t.Errorf("%s: all subscriber signalled %v, want %v", tc.what, got, tc.all)
		}
		if got := signalled(servers); got != tc.server {
			t.Errorf("%s: server subscriber signalled %v, want %v", tc.what, got, tc.server)
		}
	}
}

// BenchmarkServerByID is the lookup every forwarded write makes: it must not grow
// with the pool.
func BenchmarkServerByID(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			members := NewMembers()
			for i := range n {
				tags := Tags{Role: RoleAgent}
				if i < 5 {
					tags = Tags{Role: RoleServer, ID: fmt.Sprint("id", i)}
				}
				members.apply(serf.EventMemberJoin, serfMember(fmt.Sprint("m", i), tags))
			}
			b.ResetTimer()
			for b.Loop() {
				if _, ok := members.ServerByID("id3"); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
