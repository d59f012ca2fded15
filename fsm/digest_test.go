package fsm

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// The digest is what the events' JSON chains to, on every server that applies the
// same log, and it goes on through an operator's restore.
func TestEventDigest(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cmds := []Command{
		&RegisterAgent{Name: "a"}, &RegisterAgent{Name: "b"},
		&SetAgentStatus{Name: "b", Status: AgentOffline}, &SampleHeartbeat{Name: "a", LastSeen: at},
	}
	a, b := newFSM(t), newFSM(t)
	for i, c := range cmds {
		applyCmd(t, a, uint64(i+1), at, c)
		applyCmd(t, b, uint64(i+1), at, c)
	}
	recompute := func(f *FSM) string {
		evs, err := f.State().Outbox(0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		d := ""
		for _, e := range evs {
			content, _ := json.Marshal(e)
			d = ChainDigest(d, content)
		}
		return d
	}
	ma, _ := a.State().EventMeta()
	mb, _ := b.State().EventMeta()
	if ma.Digest == "" || ma.Digest != mb.Digest || ma.Digest != recompute(a) {
		t.Fatalf("digests %q and %q, recomputed %q", ma.Digest, mb.Digest, recompute(a))
	}
	snap := persisted(t, a)
	applyCmd(t, a, 10, at, &RegisterAgent{Name: "c"})
	var out bytes.Buffer
	if _, err := a.CarryForward(bytes.NewReader(snap), Restored{SnapshotIndex: 4, Time: at}, &out); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(io.NopCloser(&out)); err != nil {
		t.Fatal(err)
	}
	if m, _ := a.State().EventMeta(); m.Digest != recompute(a) {
		t.Fatalf("after the restore: digest %q, recomputed %q", m.Digest, recompute(a))
	}
}

// Event times never go back as seqs go up, though commands may be stamped out of
// their log order (servers stamp before Raft orders them; leaders' clocks differ).
func TestEventTimesFollowSeqs(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newFSM(t)
	applyCmd(t, f, 1, t0.Add(time.Second), &RegisterAgent{Name: "a"})   // 1, 2 at t0+1s
	applyCmd(t, f, 2, t0, &RegisterAgent{Name: "b"})                    // 3, stamped earlier
	applyCmd(t, f, 3, t0.Add(2*time.Second), &RegisterAgent{Name: "c"}) // 4 at t0+2s
	evs, err := f.State().Outbox(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{t0.Add(time.Second), t0.Add(time.Second), t0.Add(time.Second), t0.Add(2 * time.Second)}
	if len(evs) != len(want) {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if !e.Timestamp.Equal(want[i]) {
			t.Errorf("event %d (%s) at %s, want %s", e.Seq, e.Type, e.Timestamp, want[i])
		}
	}
}
