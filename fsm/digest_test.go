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
