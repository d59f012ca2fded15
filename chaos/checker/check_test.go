package checker

import (
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is an operation by client on node name "a", called at call ms and returned at
// ret ms after t0.
func at(client int, kind Kind, call, ret int, outcome Outcome) Op {
	return Op{Client: client, Kind: kind, Name: "a", Outcome: outcome,
		Call: t0.Add(time.Duration(call) * time.Millisecond), Return: t0.Add(time.Duration(ret) * time.Millisecond)}
}

func spawnOK(client, call, ret int) Op { return at(client, Spawn, call, ret, OK) }
func stopOK(client, call, ret int) Op  { return at(client, Stop, call, ret, OK) }

// sees is a successful read that found the node in status ("" : found nothing).
func sees(client, call, ret int, status string) Op {
	op := at(client, Read, call, ret, OK)
	op.Found, op.Status = status != "", status
	return op
}

func failed(op Op, code int, msg string) Op {
	op.Outcome, op.HTTPStatus, op.Error = Failed, code, msg
	return op
}

func stale(op Op) Op {
	op.Stale = true
	return op
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"concurrent ops that linearize", []Op{
			spawnOK(0, 0, 10),
			sees(1, 5, 15, ""),        // before the spawn took effect
			sees(2, 6, 12, "pending"), // after it
			stopOK(1, 20, 30),
			sees(2, 25, 35, "running"), // before the stop took effect
			sees(0, 26, 36, "stopping"),
			sees(0, 40, 50, "stopped"),
		}, Linearizable},
		{"a read after a completed stop sees the node as before it", []Op{
			spawnOK(0, 0, 10), stopOK(0, 20, 30), sees(1, 40, 50, "pending"),
		}, NotLinearizable},
		{"a read after a completed spawn finds nothing", []Op{
			spawnOK(0, 0, 10), sees(1, 20, 30, ""),
		}, NotLinearizable},
		{"a stale read may lag", []Op{
			spawnOK(0, 0, 10), stopOK(0, 20, 30), stale(sees(1, 40, 50, "pending")), stale(sees(1, 60, 70, "")),
		}, Linearizable},
		{"a read sees the node before its spawn is called", []Op{
			sees(1, 0, 10, "pending"), spawnOK(0, 20, 30),
		}, NotLinearizable},
		{"a read sees stopping before any stop is called", []Op{
			spawnOK(0, 0, 10), sees(1, 20, 30, "stopping"), stopOK(0, 40, 50),
		}, NotLinearizable},
		{"a spawn of unknown outcome that took effect", []Op{
			at(0, Spawn, 0, 10, Unknown), sees(1, 20, 30, "running"),
		}, Linearizable},
		{"a spawn of unknown outcome that did not", []Op{
			at(0, Spawn, 0, 10, Unknown), sees(1, 20, 30, ""),
		}, Linearizable},
		{"a spawn of unknown outcome that took effect late", []Op{
			at(0, Spawn, 0, 10, Unknown), sees(1, 20, 30, ""), sees(1, 40, 50, "pending"),
		}, Linearizable},
		{"a spawn of unknown outcome cannot be undone", []Op{
			at(0, Spawn, 0, 10, Unknown), sees(1, 20, 30, "pending"), sees(1, 40, 50, ""),
		}, NotLinearizable},
		{"a stop of unknown outcome that took effect", []Op{
			spawnOK(0, 0, 10), at(0, Stop, 20, 30, Unknown), sees(1, 40, 50, "stopping"),
		}, Linearizable},
		{"a stop of unknown outcome that did not", []Op{
			spawnOK(0, 0, 10), at(0, Stop, 20, 30, Unknown), sees(1, 40, 50, "pending"),
		}, Linearizable},
		{"a failed spawn followed by a read finding nothing", []Op{
			failed(spawnOK(0, 0, 10), 400, "spawn node on agent-1: rejected: port 9000 is already taken"),
			sees(1, 20, 30, ""),
		}, Linearizable},
		{"a spawn refused for its name while nothing has the name", []Op{
			failed(spawnOK(0, 0, 10), 400, "spawn node on agent-1: rejected: name a is already used by node node-1"),
			sees(1, 20, 30, ""),
		}, NotLinearizable},
		{"a spawn refused for its name after another spawn of it", []Op{
			spawnOK(0, 0, 10),
			failed(spawnOK(1, 20, 30), 400, "spawn node on agent-1: rejected: name a is already used by node node-1"),
		}, Linearizable},
		{"two spawns of one name both succeed", []Op{
			spawnOK(0, 0, 10), spawnOK(1, 5, 15),
		}, NotLinearizable},
		{"a stop succeeds before any spawn is called", []Op{
			stopOK(0, 0, 10), spawnOK(1, 20, 30),
		}, NotLinearizable},
		{"a stop finds no node after a completed spawn", []Op{
			spawnOK(0, 0, 10), failed(stopOK(1, 20, 30), 404, "node a not found"),
		}, NotLinearizable},
		{"a read's 404 counts as finding nothing", []Op{
			spawnOK(0, 0, 10), failed(sees(1, 20, 30, ""), 404, "node \"a\" not found"),
		}, NotLinearizable},
		{"a stop of a stopped node is refused", []Op{
			spawnOK(0, 0, 10), stopOK(0, 20, 30), failed(stopOK(1, 40, 50), 409, "node a is already stopped"),
		}, Linearizable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.ops, 10*time.Second)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %q, want %q (%s)", res.Verdict, tc.want, res.String())
			}
			if tc.want == NotLinearizable && res.Failed != "a" {
				t.Errorf("failed node %q, want a", res.Failed)
			}
		})
	}
}

// TestCheckPartitions checks that a failure is pinned on its node name, and that
// every operation is counted.
func TestCheckPartitions(t *testing.T) {
	named := func(name string, op Op) Op {
		op.Name = name
		return op
	}
	ops := []Op{
		named("good", spawnOK(0, 0, 10)), named("good", sees(1, 20, 30, "running")),
		named("bad", spawnOK(0, 0, 10)), named("bad", sees(1, 20, 30, "")),
		named("good", stale(sees(2, 20, 30, ""))),
		named("good", failed(stopOK(2, 40, 50), 403, "permission denied")),
		named("good", at(2, Read, 40, 50, Unknown)),
	}
	res := Check(ops, 0)
	if res.Verdict != NotLinearizable || res.Failed != "bad" {
		t.Fatalf("got %s, want node bad not linearizable", res.String())
	}
	if res.Checked != 4 || res.Stale != 1 || res.Skipped != 2 {
		t.Errorf("checked %d, stale %d, skipped %d; want 4, 1, 2", res.Checked, res.Stale, res.Skipped)
	}
	if got := res.Counts[Count{Read, OK}]; got != 3 {
		t.Errorf("%d successful reads counted, want 3", got)
	}
	path, err := res.Visualize(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "read → not found") {
		t.Errorf("the visualization %s does not show the failing read", path)
	}
}

func TestVisualizeWithoutFailure(t *testing.T) {
	res := Check([]Op{spawnOK(0, 0, 10)}, time.Second)
	if res.Verdict != Linearizable {
		t.Fatalf("got %s", res.String())
	}
	if _, err := res.Visualize(t.TempDir()); err == nil {
		t.Error("Visualize of a linearizable history succeeded")
	}
}

// A rollback (a snapshot saved, then restored) may undo what happened since the
// save; within an epoch, the model still holds.
func TestCheckWithRollbacks(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	rb := []Rollback{{From: ms(100), To: ms(200)}}
	unknown := func(op Op) Op { op.Outcome = Unknown; return op }
	cases := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"a spawn after the save is undone by the restore", []Op{
			spawnOK(0, 120, 130), sees(1, 140, 150, "pending"), sees(1, 250, 260, ""),
		}, Linearizable},
		{"a stop before the save holds after the restore", []Op{
			spawnOK(0, 0, 10), stopOK(0, 20, 30), sees(1, 250, 260, "stopped"),
		}, Linearizable},
		{"within an epoch after a rollback the state does not go back", []Op{
			spawnOK(0, 0, 10), sees(1, 250, 260, "running"), sees(1, 270, 280, ""),
		}, NotLinearizable},
		{"within the first epoch the model holds", []Op{
			spawnOK(0, 0, 10), sees(1, 20, 30, ""),
		}, NotLinearizable},
		{"a spawn acknowledged across the restore may land after it", []Op{
			spawnOK(0, 190, 210), sees(1, 205, 206, ""), sees(1, 220, 230, "pending"),
		}, Linearizable},
		{"an unknown spawn may take effect in a later epoch", []Op{
			unknown(spawnOK(0, 0, 10)), sees(1, 50, 60, ""), sees(1, 250, 260, ""), sees(1, 270, 280, "pending"),
		}, Linearizable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckWithRollbacks(tc.ops, rb, time.Minute)
			if r.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s (%s)", r.Verdict, tc.want, r.String())
			}
		})
	}
	// Without the rollback, an undone spawn is a violation.
	ops := []Op{spawnOK(0, 120, 130), sees(1, 250, 260, "")}
	if r := Check(ops, time.Minute); r.Verdict != NotLinearizable {
		t.Fatalf("without the rollback: %s", r.String())
	}
}
