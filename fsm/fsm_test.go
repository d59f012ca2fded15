package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/sutragrid/grid/events"
)

// applyCmd encodes, stamps and applies cmd at index and returns the FSM's response.
func applyCmd(t *testing.T, f *FSM, index uint64, at time.Time, cmd Command) any {
	t.Helper()
	buf, err := Encode(cmd)
	if err != nil {
		t.Fatalf("encode %T: %v", cmd, err)
	}
	if err := Stamp(buf, at); err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: buf})
}

func newFSM(t *testing.T) *FSM {
	t.Helper()
	f, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 123, time.UTC)
	cmds := []Command{
		&RegisterAgent{Name: "agent-001", Address: "127.0.0.21:8001", Hostname: "h1", Platform: "linux/amd64", Version: "0.1.0", MaxNodes: 10},
		&DeregisterAgent{Name: "agent-001"},
		&SetAgentStatus{Name: "agent-001", Status: AgentDegraded},
	}
	for _, cmd := range cmds {
		t.Run(cmd.Type().String(), func(t *testing.T) {
			buf, err := Encode(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := Stamp(buf, at); err != nil {
				t.Fatal(err)
			}
			env, err := Decode(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !env.Time.Equal(at) {
				t.Errorf("time %v, want %v", env.Time, at)
			}
			if env.Command.Type() != cmd.Type() {
				t.Errorf("type %v, want %v", env.Command.Type(), cmd.Type())
			}
			again, _ := Encode(env.Command)
			orig, _ := Encode(cmd)
			if !bytes.Equal(again, orig) {
				t.Errorf("re-encoded %q, want %q", again, orig)
			}
		})
	}
}

func TestCleanIsolation(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"cgroup v2 under /grid.slice":    "cgroup v2 under /grid.slice",
		"none: a\nb\tc\x1b[2J  d \r\n":   "none: a b c [2J d",
		"bad \xff byte":                  "bad \uFFFD byte",
		strings.Repeat("é", maxFieldLen): strings.Repeat("é", maxFieldLen/2),
	} {
		got := CleanIsolation(in)
		if got != want {
			t.Errorf("CleanIsolation(%q) = %q, want %q", in, got, want)
		}
		if err := (&RegisterAgent{Name: "a", Isolation: got}).Validate(); err != nil {
			t.Errorf("cleaned %q: %v", got, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	hdr := func(typ, ver byte) []byte { return []byte{typ, ver, 0, 0, 0, 0, 0, 0, 0, 0} }
	cases := []struct {
		name string
		buf  []byte
		want string
	}{
		{"empty", nil, "shorter than"},
		{"short header", []byte{1, 1, 0}, "shorter than"},
		{"unknown type", append(hdr(250, 1), "{}"...), "unknown command type 250"},
		{"version zero", append(hdr(1, 0), "{}"...), "unsupported command version 0"},
		{"future version", append(hdr(1, 2), "{}"...), "unsupported command version 2"},
		{"bad json", append(hdr(1, 1), "{"...), "decode register_agent"},
		{"missing name", append(hdr(1, 1), "{}"...), "name is required"},
		{"bad name", append(hdr(1, 1), `{"name":"a/b"}`...), "may hold only"},
		{"negative max nodes", append(hdr(1, 1), `{"name":"a","max_nodes":-1}`...), "max_nodes"},
		{"isolation with a newline", append(hdr(1, 1), `{"name":"a","isolation":"cgroup v2\nfake line"}`...), "not printable"},
		{"isolation with an escape", append(hdr(1, 1), `{"name":"a","isolation":"\u001b[2J"}`...), "not printable"},
		{"isolation too long", append(hdr(1, 1), `{"name":"a","isolation":"`+strings.Repeat("x", maxFieldLen+1)+`"}`...), "isolation must be"},
		{"unknown status", append(hdr(3, 1), `{"name":"a","status":"sleepy"}`...), "status"},
		{"too large", make([]byte, MaxCommandBytes+1), "exceeds the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.buf)
			if err == nil || !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidCommand mentioning %q", err, tc.want)
			}
		})
	}
}

func TestApplyAgentLifecycle(t *testing.T) {
	f := newFSM(t)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		name    string
		cmd     Command
		wantErr error
		check   func(t *testing.T, a *Agent)
	}{
		{"register", &RegisterAgent{Name: "a1", Address: "x:1", MaxNodes: 3, Isolation: "cgroup v2 under /grid.slice"}, nil, func(t *testing.T, a *Agent) {
			if a.Status != AgentHealthy || !a.RegisteredAt.Equal(t0.Add(1*time.Minute)) || a.CreateIndex != 1 || a.MaxNodes != 3 ||
				a.Isolation != "cgroup v2 under /grid.slice" {
				t.Errorf("after register: %+v", a)
			}
		}},
		{"degrade", &SetAgentStatus{Name: "a1", Status: AgentDegraded}, nil, func(t *testing.T, a *Agent) {
			if a.Status != AgentDegraded || !a.StatusChangedAt.Equal(t0.Add(2*time.Minute)) || a.ModifyIndex != 2 {
				t.Errorf("after degrade: %+v", a)
			}
		}},
		{"same status is a no-op", &SetAgentStatus{Name: "a1", Status: AgentDegraded}, nil, func(t *testing.T, a *Agent) {
			if a.ModifyIndex != 2 {
				t.Errorf("no-op changed the row: %+v", a)
			}
		}},
		{"re-register keeps registration time", &RegisterAgent{Name: "a1", Address: "y:2", MaxNodes: 5, Isolation: "none: no cgroup delegated"}, nil, func(t *testing.T, a *Agent) {
			// The isolation is the agent's latest word: a restart may have lost its cgroup.
			if !a.RegisteredAt.Equal(t0.Add(1*time.Minute)) || a.Address != "y:2" || a.Status != AgentHealthy || a.CreateIndex != 1 || a.ModifyIndex != 4 ||
				a.Isolation != "none: no cgroup delegated" {
				t.Errorf("after re-register: %+v", a)
			}
		}},
		{"status of unknown agent", &SetAgentStatus{Name: "zz", Status: AgentOffline}, ErrNotFound, nil},
		{"deregister", &DeregisterAgent{Name: "a1"}, nil, func(t *testing.T, a *Agent) {
			if a != nil {
				t.Errorf("agent still there: %+v", a)
			}
		}},
		{"deregister again", &DeregisterAgent{Name: "a1"}, ErrNotFound, nil},
	}
	for i, st := range steps {
		resp := applyCmd(t, f, uint64(i+1), t0.Add(time.Duration(i+1)*time.Minute), st.cmd)
		err, _ := resp.(error)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Fatalf("%s: got %v, want %v", st.name, resp, st.wantErr)
		}
		if st.check != nil {
			a, err := f.State().Agent("a1")
			if err != nil {
				t.Fatal(err)
			}
			st.check(t, a)
		}
	}
}

// formerNames renders the former agents as "name@unregistered-minute", in order.
func formerNames(t *testing.T, s *State, t0 time.Time) string {
	t.Helper()
	former, err := s.FormerAgents()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, a := range former {
		parts = append(parts, fmt.Sprintf("%s@%d", a.Name, int(a.UnregisteredAt.Sub(t0).Minutes())))
	}
	return strings.Join(parts, " ")
}

// TestFormerAgents: an agent that unregisters becomes a former agent, and stops being
// one when its name registers again.
func TestFormerAgents(t *testing.T) {
	f := newFSM(t)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		cmd  Command
		want string // the former agents after the step
	}{
		{"register b", &RegisterAgent{Name: "b", Hostname: "host-b"}, ""},
		{"register a", &RegisterAgent{Name: "a"}, ""},
		{"register c", &RegisterAgent{Name: "c"}, ""},
		{"b leaves", &DeregisterAgent{Name: "b"}, "b@4"},
		{"a leaves", &DeregisterAgent{Name: "a"}, "a@5 b@4"},
		{"an unknown agent cannot leave", &DeregisterAgent{Name: "zz"}, "a@5 b@4"},
		{"b is back", &RegisterAgent{Name: "b", Hostname: "host-b2"}, "a@5"},
		{"b leaves again", &DeregisterAgent{Name: "b"}, "a@5 b@8"},
	}
	for i, st := range steps {
		applyCmd(t, f, uint64(i+1), t0.Add(time.Duration(i+1)*time.Minute), st.cmd)
		if got := formerNames(t, f.State(), t0); got != st.want {
			t.Fatalf("%s: former agents %q, want %q", st.name, got, st.want)
		}
	}
	former, _ := f.State().FormerAgents()
	b := former[1]
	if b.Hostname != "host-b2" || !b.RegisteredAt.Equal(t0.Add(7*time.Minute)) || b.ModifyIndex != 8 {
		t.Errorf("former agent b: %+v", b)
	}
	if agents, _ := f.State().Agents(); len(agents) != 1 || agents[0].Name != "c" {
		t.Errorf("agents %+v, want c alone", agents)
	}
}

func TestApplyIgnoresNonCommandEntries(t *testing.T) {
	f := newFSM(t)
	if resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogNoop, Data: []byte("junk")}); resp != nil {
		t.Fatalf("noop entry: %v", resp)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := newFSM(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, name := range []string{"b", "a", "c"} {
		applyCmd(t, f, uint64(i+1), at, &RegisterAgent{Name: name, Hostname: "host-" + name, MaxNodes: i})
	}
	applyCmd(t, f, 4, at, &SetAgentStatus{Name: "c", Status: AgentOffline})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot is taken are not in it.
	applyCmd(t, f, 5, at, &RegisterAgent{Name: "d"})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g := newFSM(t)
	applyCmd(t, g, 1, at, &RegisterAgent{Name: "stale"})
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, err := g.State().Agents()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("restored agents %v, want a,b,c", names)
	}
	c, _ := g.State().Agent("c")
	if c.Status != AgentOffline || c.Hostname != "host-c" || c.MaxNodes != 2 || !c.RegisteredAt.Equal(at) || c.ModifyIndex != 4 {
		t.Fatalf("restored c: %+v", c)
	}
}

func TestSnapshotRestoresFormerAgents(t *testing.T) {
	f := newFSM(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	applyCmd(t, f, 1, at, &RegisterAgent{Name: "a", Hostname: "host-a"})
	applyCmd(t, f, 2, at, &RegisterAgent{Name: "b"})
	applyCmd(t, f, 3, at.Add(time.Hour), &DeregisterAgent{Name: "a"})
	g := newFSM(t)
	if err := g.Restore(io.NopCloser(strings.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	former, err := g.State().FormerAgents()
	if err != nil {
		t.Fatal(err)
	}
	want := &FormerAgent{Name: "a", Hostname: "host-a", RegisteredAt: at, UnregisteredAt: at.Add(time.Hour), ModifyIndex: 3}
	if len(former) != 1 || !reflect.DeepEqual(former[0], want) {
		t.Fatalf("restored former agents %+v, want %+v", former, want)
	}
}

// TestRestoreSnapshotWithoutFormerAgents: a snapshot written before the former_agents
// table existed restores, with no former agents.
func TestRestoreSnapshotWithoutFormerAgents(t *testing.T) {
	const old = `{"version":1}
{"t":"agents","v":{"name":"a","address":"x:1","status":"healthy","registered_at":"2026-01-02T03:04:05Z"}}
{"t":"meta","v":{"id":"events","last_seq":2,"shipped_seq":2,"cluster_health":"cluster_healthy"}}
`
	f := newFSM(t)
	if err := f.Restore(io.NopCloser(strings.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.State().Agent("a"); a == nil || a.Address != "x:1" {
		t.Fatalf("agent a: %+v", a)
	}
	if former, err := f.State().FormerAgents(); err != nil || len(former) != 0 {
		t.Fatalf("former agents %+v, %v: want none", former, err)
	}
	// The restored state goes on: a's unregistration is remembered.
	applyCmd(t, f, 10, time.Now(), &DeregisterAgent{Name: "a"})
	if former, _ := f.State().FormerAgents(); len(former) != 1 || former[0].Name != "a" {
		t.Fatalf("former agents %+v, want a", former)
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"future version": `{"version":9}`,
		"unknown table":  `{"version":1}` + "\n" + `{"t":"nope","v":{}}`,
		"bad row":        `{"version":1}` + "\n" + `{"t":"agents","v":{"name":5}}`,
		"truncated":      `{"version":1}` + "\n" + `{"t":"agents","v":{"name":"a"`,
	}
	for name, snap := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFSM(t)
			applyCmd(t, f, 1, time.Now(), &RegisterAgent{Name: "keep"})
			if err := f.Restore(io.NopCloser(strings.NewReader(snap))); err == nil {
				t.Fatal("restore succeeded")
			}
			if a, _ := f.State().Agent("keep"); a == nil {
				t.Fatal("a failed restore changed the state")
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to the command decoder and the FSM: neither may
// panic, and whatever decodes must encode back to a command that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, cmd := range []Command{
		&RegisterAgent{Name: "agent-001", MaxNodes: 3},
		&DeregisterAgent{Name: "x"},
		&SetAgentStatus{Name: "x", Status: AgentOffline},
	} {
		buf, _ := Encode(cmd)
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, '{'})
	fsm, err := New(nil)
	if err != nil {
		f.Fatal(err)
	}
	var index uint64
	f.Fuzz(func(t *testing.T, buf []byte) {
		index++
		resp := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: buf})
		env, err := Decode(buf)
		if err != nil {
			if resp == nil {
				t.Fatalf("Decode rejects %q but Apply accepted it", buf)
			}
			return
		}
		again, err := Encode(env.Command)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
	})
}

// TestApplyBatchAsAlone checks that entries applied in batches (ApplyBatch, as Raft
// hands them over with BatchApplyCh) derive the state, responses and events that
// applying them one by one does, including a batch in which a command fails.
func TestApplyBatchAsAlone(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cmds := []Command{
		&RegisterAgent{Name: "a", Hostname: "host-a"},
		&RegisterAgent{Name: "b"},
		&SetAgentStatus{Name: "b", Status: AgentOffline},
		&DeregisterAgent{Name: "nobody"}, // fails: not found
		&RegisterAgent{Name: "c"},
		&SetAgentStatus{Name: "a", Status: AgentDegraded},
		&DeregisterAgent{Name: "b"},
	}
	var logs []*raft.Log
	for i, cmd := range cmds {
		buf, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := Stamp(buf, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: buf})
	}
	logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Type: raft.LogConfiguration})

	alone, batched := newFSM(t), newFSM(t)
	var aloneEvents, batchedEvents []string
	record := func(to *[]string) func([]*events.Event) {
		return func(evs []*events.Event) {
			for _, e := range evs {
				*to = append(*to, fmt.Sprintf("%d %s %s", e.Seq, e.Type, e.Description))
			}
		}
	}
	alone.SetEventHook(record(&aloneEvents))
	batched.SetEventHook(record(&batchedEvents))
	var want []any
	for _, l := range logs {
		want = append(want, alone.Apply(l))
	}
	// The first batch has no failing command, the second has one.
	got := append(batched.ApplyBatch(logs[:3]), batched.ApplyBatch(logs[3:])...)
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("entry %d: batched response %v, alone %v", i+1, got[i], want[i])
		}
	}
	if !errors.Is(got[3].(error), ErrNotFound) {
		t.Errorf("failed command answered %v, want not found", got[3])
	}
	if strings.Join(batchedEvents, "\n") != strings.Join(aloneEvents, "\n") {
		t.Errorf("batched events:\n%s\nalone:\n%s", strings.Join(batchedEvents, "\n"), strings.Join(aloneEvents, "\n"))
	}
	if a, b := persist(t, alone), persist(t, batched); a != b {
		t.Errorf("batched state differs from alone:\n%s\n%s", b, a)
	}
}

// persist returns f's snapshot stream.
func persist(t *testing.T, f *FSM) string {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.String()
}
