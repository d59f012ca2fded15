package fsm

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/restart"
)

// nodeFixture is an FSM with one healthy agent, "a1", max 2 nodes, root /data/a1, its
// own logs in /data/a1/logs and its own port 8001.
func nodeFixture(t *testing.T) (*FSM, *uint64) {
	t.Helper()
	f := newFSM(t)
	idx := uint64(1)
	if resp := applyCmd(t, f, idx, time.Now(), &RegisterAgent{Name: "a1", Address: "127.0.0.21:8001", MaxNodes: 2, StorageRoot: "/data/a1",
		ReservedPaths: []string{"/data/a1/logs", "/data/a1/agent-state.json"}, ReservedPorts: []int{8001}}); resp != nil {
		t.Fatal(resp)
	}
	return f, &idx
}

func applyStep(t *testing.T, f *FSM, idx *uint64, cmd Command) error {
	t.Helper()
	*idx++
	err, _ := applyCmd(t, f, *idx, time.Now(), cmd).(error)
	return err
}

func TestSpawnNodeChecks(t *testing.T) {
	cases := []struct {
		name  string
		setup []Command
		spawn SpawnNode
		want  string // "" for success
	}{
		{"ok with defaults", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, ""},
		{"cpu limit", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 50061, CPULimit: 1.5}, ""},
		{"unknown agent", nil, SpawnNode{ID: "n1", Agent: "zz", Port: 50061}, "unknown agent"},
		{"degraded agent", []Command{&SetAgentStatus{Name: "a1", Status: AgentDegraded}}, SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, "is degraded"},
		{"port taken", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 50061}}, SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, "port 50061 is already taken"},
		{"port freed by stop", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 50061}, &StopNode{ID: "n0"}, &NodeStopped{ID: "n0"}}, SpawnNode{ID: "n1", Agent: "a1", Port: 50061}, ""},
		{"agent full", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1}, &SpawnNode{ID: "n2", Agent: "a1", Port: 2}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3}, "maximum of 2"},
		{"path escape", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "../etc"}, "not inside"},
		{"absolute path outside", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "/etc/x"}, "not inside"},
		{"the root itself", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "/data/a1"}, "not inside"},
		{"path in use", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1, StoragePath: "x"}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "/data/a1/x"}, "overlaps node n0's /data/a1/x"},
		{"path inside another node's", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1, StoragePath: "x"}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "x/y"}, "overlaps node n0's"},
		{"path around another node's", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1, StoragePath: "x/y"}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "x"}, "overlaps node n0's"},
		{"path of a stopped node", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1, StoragePath: "x"}, &StopNode{ID: "n0"}, &NodeStopped{ID: "n0"}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "x"}, ""},
		{"agent's logs", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "logs"}, "overlaps the agent's own /data/a1/logs"},
		{"inside agent's logs", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "logs/n0"}, "overlaps the agent's own"},
		{"agent's state file", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "/data/a1/agent-state.json"}, "overlaps the agent's own"},
		{"agent's own port", nil, SpawnNode{ID: "n1", Agent: "a1", Port: 8001}, "port 8001 is the agent a1's own"},
		{"name taken", []Command{&SpawnNode{ID: "n0", Name: "orders", Agent: "a1", Port: 1}}, SpawnNode{ID: "n1", Name: "orders", Agent: "a1", Port: 3}, "name orders is already used by node n0"},
		{"name taken by a stopped node", []Command{&SpawnNode{ID: "n0", Name: "orders", Agent: "a1", Port: 1}, &StopNode{ID: "n0"}, &NodeStopped{ID: "n0"}}, SpawnNode{ID: "n1", Name: "orders", Agent: "a1", Port: 3}, "already used by node n0"},
		{"name is another node's ID", []Command{&SpawnNode{ID: "n0", Agent: "a1", Port: 1}}, SpawnNode{ID: "n1", Name: "n0", Agent: "a1", Port: 3}, "name n0 is already used by node n0"},
		{"duplicate id", []Command{&SpawnNode{ID: "n1", Agent: "a1", Port: 1}}, SpawnNode{ID: "n1", Agent: "a1", Port: 3}, "already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, idx := nodeFixture(t)
			for _, c := range tc.setup {
				if err := applyStep(t, f, idx, c); err != nil {
					t.Fatalf("setup %s: %v", c.Type(), err)
				}
			}
			err := applyStep(t, f, idx, &tc.spawn)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("spawn: %v", err)
				}
				n, _ := f.State().Node(tc.spawn.ID)
				if n == nil || n.Status != NodeStatusPending || n.MemoryLimitMB != DefaultMemoryLimitMB || n.CPULimit != tc.spawn.CPULimit ||
					n.Restart != (restart.Policy{}).WithDefaults() || n.Endpoint != "127.0.0.21:"+strconv.Itoa(tc.spawn.Port) || !strings.HasPrefix(n.StoragePath, "/data/a1/") {
					t.Fatalf("recorded node: %+v", n)
				}
				return
			}
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want rejection mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSpawnNodeCPULimitBounds(t *testing.T) {
	for _, ok := range []float64{0, 0.1, 1.5, MaxCPULimit} {
		if err := (&SpawnNode{ID: "n1", Agent: "a1", Port: 3, CPULimit: ok}).Validate(); err != nil {
			t.Errorf("cpu limit %v: %v", ok, err)
		}
	}
	for _, bad := range []float64{-0.5, MaxCPULimit + 0.5, math.NaN(), math.Inf(1), math.Inf(-1)} {
		_, err := Encode(&SpawnNode{ID: "n1", Agent: "a1", Port: 3, CPULimit: bad})
		if !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), "cpu_limit") {
			t.Errorf("cpu limit %v: got %v, want an invalid command naming cpu_limit", bad, err)
		}
	}
}

func TestSpawnNodeRejectsNULInPath(t *testing.T) {
	_, err := Encode(&SpawnNode{ID: "n1", Agent: "a1", Port: 3, StoragePath: "x\x00y"})
	if !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("got %v, want an invalid command naming the NUL byte", err)
	}
}

func TestNodeTransitions(t *testing.T) {
	type step struct {
		cmd        Command
		wantStatus NodeStatus
		wantErr    error
	}
	cases := []struct {
		name  string
		steps []step
		check func(t *testing.T, n *Node)
	}{
		{"spawn, start, crash, restart", []step{
			{&NodeStarted{ID: "n1", PID: 100, Endpoint: "h:1"}, NodeStatusRunning, nil},
			{&NodeCrashed{ID: "n1", PID: 100, ExitCode: -1, Signal: "SIGKILL", Restarting: true}, NodeStatusRestarting, nil},
			{&NodeRestarted{ID: "n1", PID: 101, Restarts: 1}, NodeStatusRunning, nil},
		}, func(t *testing.T, n *Node) {
			if n.PID != 101 || n.Restarts != 1 || n.Signal != "SIGKILL" || n.ExitCode == nil || *n.ExitCode != -1 {
				t.Errorf("node %+v", n)
			}
		}},
		{"restart policy exhausted", []step{
			{&NodeStarted{ID: "n1", PID: 100}, NodeStatusRunning, nil},
			{&NodeCrashed{ID: "n1", ExitCode: 2, Restarting: false}, NodeStatusFailed, nil},
			{&NodeFailed{ID: "n1", Error: "gave up"}, NodeStatusFailed, nil},
		}, nil},
		{"start fails", []step{
			{&NodeFailed{ID: "n1", Error: "port in use"}, NodeStatusFailed, nil},
			{&NodeStarted{ID: "n1", PID: 5}, NodeStatusFailed, nil}, // late start is ignored
		}, func(t *testing.T, n *Node) {
			if n.Error != "port in use" || n.PID != 0 {
				t.Errorf("node %+v", n)
			}
		}},
		{"stop", []step{
			{&NodeStarted{ID: "n1", PID: 100}, NodeStatusRunning, nil},
			{&StopNode{ID: "n1"}, NodeStatusStopping, nil},
			{&NodeCrashed{ID: "n1", ExitCode: 0, Restarting: true}, NodeStatusStopping, nil}, // the exit is the stop
			{&NodeStopped{ID: "n1", ExitCode: 0}, NodeStatusStopped, nil},
			{&NodeStopped{ID: "n1", ExitCode: 0}, NodeStatusStopped, nil},
			{&StopNode{ID: "n1"}, NodeStatusStopped, ErrRejected},
		}, nil},
		{"stop fails", []step{
			{&NodeStarted{ID: "n1", PID: 100}, NodeStatusRunning, nil},
			{&StopNode{ID: "n1"}, NodeStatusStopping, nil},
			{&NodeStopFailed{ID: "n1", Error: "agent unreachable"}, NodeStatusRunning, nil},
		}, func(t *testing.T, n *Node) {
			if !strings.Contains(n.Error, "agent unreachable") {
				t.Errorf("node %+v", n)
			}
		}},
		{"stop a failed node", []step{
			{&NodeFailed{ID: "n1", Error: "x"}, NodeStatusFailed, nil},
			{&StopNode{ID: "n1"}, NodeStatusStopped, nil},
		}, nil},
		{"start during stop keeps stopping", []step{
			{&StopNode{ID: "n1"}, NodeStatusStopping, nil},
			{&NodeStarted{ID: "n1", PID: 7}, NodeStatusStopping, nil},
		}, func(t *testing.T, n *Node) {
			if n.PID != 7 {
				t.Errorf("pid %d, want 7", n.PID)
			}
		}},
		{"unknown node", []step{
			{&NodeStarted{ID: "nope", PID: 1}, NodeStatusPending, ErrNotFound},
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, idx := nodeFixture(t)
			if err := applyStep(t, f, idx, &SpawnNode{ID: "n1", Agent: "a1", Port: 50061}); err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				err := applyStep(t, f, idx, st.cmd)
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("step %d %s: got %v, want %v", i, st.cmd.Type(), err, st.wantErr)
				}
				n, _ := f.State().Node("n1")
				if n.Status != st.wantStatus {
					t.Fatalf("step %d %s: status %s, want %s", i, st.cmd.Type(), n.Status, st.wantStatus)
				}
			}
			if tc.check != nil {
				n, _ := f.State().Node("n1")
				tc.check(t, n)
			}
		})
	}
}

func TestResolveStoragePath(t *testing.T) {
	cases := []struct{ root, id, path, want, err string }{
		{"/r", "n1", "", "/r/n1", ""},
		{"/r", "n1", "x/y", "/r/x/y", ""},
		{"/r/", "n1", "/r/x/../y", "/r/y", ""},
		{"/r", "n1", "../x", "", "not inside"},
		{"/r", "n1", "/rx", "", "not inside"},
		{"/r", "n1", "x/../../y", "", "not inside"},
		{"", "n1", "x", "", "no storage root"},
	}
	for _, tc := range cases {
		got, err := ResolveStoragePath(tc.root, tc.id, tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q in %q: got %q, %v; want error %q", tc.path, tc.root, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q in %q: got %q, %v; want %q", tc.path, tc.root, got, err, tc.want)
		}
	}
}

func TestNodeNames(t *testing.T) {
	f, idx := nodeFixture(t)
	if err := applyStep(t, f, idx, &SpawnNode{ID: "n1", Name: "orders-1", Agent: "a1", Port: 50061}); err != nil {
		t.Fatal(err)
	}
	if err := applyStep(t, f, idx, &SpawnNode{ID: "n2", Agent: "a1", Port: 50062}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"n1": "orders-1", "n2": "n2"} {
		if n, _ := f.State().Node(id); n == nil || n.Name != want || n.DisplayName() != want {
			t.Errorf("node %s: %+v, want name %s", id, n, want)
		}
	}
	for _, bad := range []string{strings.Repeat("x", MaxNodeNameLen+1), "two words", "a/b"} {
		if _, err := Encode(&SpawnNode{ID: "n3", Name: bad, Agent: "a1", Port: 1}); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("name %q: %v, want invalid", bad, err)
		}
	}
	if (&Node{ID: "old"}).DisplayName() != "old" {
		t.Error("a node recorded without a name is not named by its ID")
	}
}
