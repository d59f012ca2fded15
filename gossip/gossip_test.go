package gossip

import (
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/sutragrid/grid/internal/gridtest"
)

func TestTagsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags Tags
		wire string
	}{
		{"server", Tags{Role: RoleServer, ID: "abc", Version: "1.2.3", HTTPPort: 4646, RPCPort: 4647, RaftPort: 4648, BootstrapExpect: 3},
			`{"role":"server","id":"abc","ver":"1.2.3","http":4646,"rpc":4647,"raft":4648,"expect":3}`},
		{"agent", Tags{Role: RoleAgent, Version: "1.2.3", RPCPort: 4650},
			`{"role":"agent","ver":"1.2.3","rpc":4650}`},
		{"empty", Tags{}, `{"role":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.tags)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wire {
				t.Fatalf("wire format:\n got %s\nwant %s", b, tc.wire)
			}
			var back Tags
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back != tc.tags {
				t.Fatalf("round trip: got %+v, want %+v", back, tc.tags)
			}
		})
	}
}

func TestTagsMap(t *testing.T) {
	got := Tags{Role: RoleServer, ID: "abc", Version: "v", RPCPort: 4647, BootstrapExpect: 3}.Map()
	want := map[string]string{"role": "server", "id": "abc", "version": "v", "rpc_port": "4647", "bootstrap_expect": "3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestJoinAddrs(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"10.0.0.1"}, []string{"10.0.0.1:7946"}},
		{[]string{"10.0.0.1:8000"}, []string{"10.0.0.1:8000"}},
		{[]string{"host.example"}, []string{"host.example:7946"}},
		{[]string{"::1"}, []string{"[::1]:7946"}},
		{[]string{"[::1]:8000", "a"}, []string{"[::1]:8000", "a:7946"}},
	} {
		if got := joinAddrs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("joinAddrs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// event is one thing that happens to the member table.
type event struct {
	kind   string // "join", "update", "leave" (memberlist's), "intent" (a leave intent)
	name   string
	state  memberlist.NodeStateType // for "leave": StateDead or StateLeft
	tags   Tags
	status string // the member's status after the event
}

func node(name string, state memberlist.NodeStateType, tags Tags) *memberlist.Node {
	meta, _ := json.Marshal(tags)
	return &memberlist.Node{Name: name, Addr: net.ParseIP("10.0.0.1"), Port: 7946, Meta: meta, State: state}
}

func TestMemberStatuses(t *testing.T) {
	srv := Tags{Role: RoleServer, ID: "id-a", RPCPort: 4647}
	for _, tc := range []struct {
		name   string
		events []event
	}{
		{"failure", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateDead, status: StatusFailed},
		}},
		{"memberlist says left", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateLeft, status: StatusLeft},
		}},
		{"intent before leave", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "intent", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateDead, status: StatusLeft},
		}},
		{"intent after leave", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateDead, status: StatusFailed},
			{kind: "intent", name: "a", status: StatusLeft},
		}},
		{"rejoin clears the intent", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "intent", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateDead, status: StatusLeft},
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "leave", name: "a", state: memberlist.StateDead, status: StatusFailed},
		}},
		{"update keeps alive", []event{
			{kind: "join", name: "a", status: StatusAlive},
			{kind: "update", name: "a", tags: Tags{Role: RoleServer, ID: "id-b"}, status: StatusAlive},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &delegate{members: NewMembers()}
			for i, e := range tc.events {
				tags := srv
				if e.tags != (Tags{}) {
					tags = e.tags
				}
				switch e.kind {
				case "join":
					d.NotifyJoin(node(e.name, memberlist.StateAlive, tags))
				case "update":
					d.NotifyUpdate(node(e.name, memberlist.StateAlive, tags))
				case "leave":
					d.NotifyLeave(node(e.name, e.state, tags))
				case "intent":
					d.NotifyMsg(append([]byte{msgLeaveIntent}, e.name...))
				}
				list := d.members.List()
				if len(list) != 1 || list[0].Name != e.name || list[0].Status != e.status || list[0].Tags != tags {
					t.Fatalf("after event %d (%s): members %+v, want %s %s with %+v", i, e.kind, list, e.name, e.status, tags)
				}
			}
		})
	}
}

func TestMemberLookups(t *testing.T) {
	d := &delegate{members: NewMembers()}
	d.NotifyJoin(node("s2", memberlist.StateAlive, Tags{Role: RoleServer, ID: "id2", RaftPort: 4648}))
	d.NotifyJoin(node("s1", memberlist.StateAlive, Tags{Role: RoleServer, ID: "id1", RaftPort: 4648}))
	d.NotifyJoin(node("s3", memberlist.StateAlive, Tags{Role: RoleServer, ID: "id3"}))
	d.NotifyJoin(node("noid", memberlist.StateAlive, Tags{Role: RoleServer}))
	d.NotifyJoin(node("a1", memberlist.StateAlive, Tags{Role: RoleAgent, ID: "id1"}))
	d.NotifyJoin(&memberlist.Node{Name: "junk", Meta: []byte("not json")})
	d.NotifyLeave(node("s3", memberlist.StateDead, Tags{Role: RoleServer, ID: "id3"}))

	var names []string
	for _, m := range d.members.AliveServers() {
		names = append(names, m.Name)
	}
	if want := []string{"s1", "s2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("alive servers %v, want %v", names, want)
	}
	for _, tc := range []struct {
		id, name string
		ok       bool
	}{{"id1", "s1", true}, {"id3", "s3", true}, {"nope", "", false}} {
		m, ok := d.members.ServerByID(tc.id)
		if ok != tc.ok || m.Name != tc.name {
			t.Errorf("ServerByID(%s) = %s, %v; want %s, %v", tc.id, m.Name, ok, tc.name, tc.ok)
		}
	}
	m, _ := d.members.ServerByID("id1")
	if got := m.HostPort(m.Tags.RaftPort); got != "10.0.0.1:4648" {
		t.Errorf("HostPort = %s", got)
	}
	list := d.members.List()
	if len(list) != 6 || list[0].Name != "a1" || list[1].Name != "junk" || list[1].Tags != (Tags{}) {
		t.Errorf("list %+v", list)
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
	d := &delegate{members: members}
	all := members.Subscribe(nil)
	servers := members.Subscribe(func(m Member) bool { return m.Status == StatusAlive && m.Tags.Role == RoleServer })
	srv, agent := Tags{Role: RoleServer, ID: "x"}, Tags{Role: RoleAgent}
	for _, tc := range []struct {
		what        string
		do          func()
		all, server bool
	}{
		{"agent joins", func() { d.NotifyJoin(node("a", memberlist.StateAlive, agent)) }, true, false},
		{"server joins", func() { d.NotifyJoin(node("s", memberlist.StateAlive, srv)) }, true, true},
		{"server updates", func() { d.NotifyUpdate(node("s", memberlist.StateAlive, srv)) }, true, true},
		{"server fails", func() { d.NotifyLeave(node("s", memberlist.StateDead, srv)) }, true, true},
		{"failed server's late intent", func() { d.NotifyMsg(append([]byte{msgLeaveIntent}, 's')) }, true, false},
		{"intent of an alive member", func() { d.NotifyMsg(append([]byte{msgLeaveIntent}, 'a')) }, false, false},
		{"agent leaves", func() { d.NotifyLeave(node("a", memberlist.StateDead, agent)) }, true, false},
	} {
		tc.do()
		if got := signalled(all); got != tc.all {
			t.Errorf("%s: all subscriber signalled %v, want %v", tc.what, got, tc.all)
		}
		if got := signalled(servers); got != tc.server {
			t.Errorf("%s: server subscriber signalled %v, want %v", tc.what, got, tc.server)
		}
	}
}

func fastConfig() *memberlist.Config {
	mc := memberlist.DefaultLocalConfig()
	mc.GossipInterval = 20 * time.Millisecond
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 2
	mc.PushPullInterval = 0
	mc.TCPTimeout = 200 * time.Millisecond
	return mc
}

func create(t *testing.T, name string, tags Tags, join ...string) *Pool {
	t.Helper()
	p, err := Create(Config{Name: name, BindAddr: "127.0.0.1", Tags: tags, Base: fastConfig(), Join: join, RetryInterval: 20 * time.Millisecond, RetryMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// gossipPoll keeps up with fastConfig, which gossips every 20ms.
var gossipPoll = gridtest.Poller{Interval: 10 * time.Millisecond}

func statusOf(p *Pool, name string) string {
	for _, m := range p.Members().List() {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func TestPoolJoinLeaveAndFail(t *testing.T) {
	s1 := create(t, "s1", Tags{Role: RoleServer, ID: "id1", RPCPort: 1})
	if statusOf(s1, "s1") != StatusAlive {
		t.Fatalf("local member not in the table: %+v", s1.Members().List())
	}
	s2 := create(t, "s2", Tags{Role: RoleServer, ID: "id2"}, s1.LocalAddr())
	a1 := create(t, "a1", Tags{Role: RoleAgent}, s1.LocalAddr())
	fatal := make(chan error, 1)
	for _, p := range []*Pool{s2, a1} {
		p.JoinLoop(context.Background(), fatal)
	}
	gossipPoll.WaitUntil(t, 10*time.Second, "three alive members", func() bool {
		return statusOf(s1, "s2") == StatusAlive && statusOf(s1, "a1") == StatusAlive && statusOf(a1, "s2") == StatusAlive
	})
	if m, ok := a1.Members().ServerByID("id1"); !ok || m.Tags.RPCPort != 1 || m.HostPort(int(m.Port)) != s1.LocalAddr() {
		t.Fatalf("agent sees server s1 as %+v, %v", m, ok)
	}
	if ip := s1.LocalIP().String(); ip != "127.0.0.1" || !strings.HasPrefix(s1.LocalAddr(), ip+":") {
		t.Fatalf("local IP %s, address %s", ip, s1.LocalAddr())
	}

	// A graceful leave shows as left, a crash as failed.
	if err := s2.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = s2.Shutdown()
	_ = a1.Shutdown()
	gossipPoll.WaitUntil(t, 10*time.Second, "s2 left and a1 failed", func() bool {
		return statusOf(s1, "s2") == StatusLeft && statusOf(s1, "a1") == StatusFailed
	})
	select {
	case err := <-fatal:
		t.Fatalf("fatal after a join: %v", err)
	default:
	}
}

func TestJoinLoopGivesUp(t *testing.T) {
	// An address nobody listens on: a port the kernel gave out, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name  string
		max   int
		fatal bool
	}{
		{"gives up after RetryMax", 2, true},
		{"retries until ctx ends", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Create(Config{Name: "lonely", BindAddr: "127.0.0.1", Base: fastConfig(), Join: []string{addr}, RetryInterval: 10 * time.Millisecond, RetryMax: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			fatal := make(chan error, 1)
			p.JoinLoop(ctx, fatal) // returns when it gives up or ctx ends
			select {
			case err := <-fatal:
				if !tc.fatal {
					t.Fatalf("unexpected fatal error: %v", err)
				}
				if want := "after " + strconv.Itoa(tc.max) + " attempts"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), addr) {
					t.Fatalf("error %q does not say %q and %s", err, want, addr)
				}
			default:
				if tc.fatal {
					t.Fatal("no fatal error after RetryMax attempts")
				}
				if ctx.Err() == nil {
					t.Fatal("JoinLoop returned before ctx ended")
				}
			}
		})
	}
}

func TestCreateDefaults(t *testing.T) {
	if _, err := Create(Config{}); err == nil {
		t.Fatal("Create without a name succeeded")
	}
	members := NewMembers()
	p, err := Create(Config{Name: "d", BindAddr: "127.0.0.1", Base: fastConfig(), Members: members})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	if p.Members() != members || p.config.RetryInterval != DefaultRetryInterval || p.logger == nil {
		t.Fatalf("defaults not applied: %+v", p.config)
	}
	// Nothing to join: JoinLoop returns at once.
	p.JoinLoop(context.Background(), nil)
}
