package fsm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/events"
)

func mgmtToken(t *testing.T, name string) (acl.Token, string) {
	t.Helper()
	tok, secret := acl.NewToken()
	tok.Name, tok.Management = name, true
	return *tok, secret
}

// The bootstrap succeeds once; again only with the reset index, which is the index of
// the last bootstrap.
func TestACLBootstrapOnce(t *testing.T) {
	f := newFSM(t)
	idx := uint64(0)
	first, secret := mgmtToken(t, "bootstrap")
	if err := applyStep(t, f, &idx, &ACLBootstrap{Token: first}); err != nil {
		t.Fatal(err)
	}
	meta, _ := f.State().ACLMeta()
	if meta.BootstrapIndex != 1 {
		t.Fatalf("bootstrap index %d, want 1", meta.BootstrapIndex)
	}
	tok, _ := f.State().ACLTokenBySecretHash(acl.HashSecret(secret))
	if tok == nil || !tok.Management || tok.CreateIndex != 1 || tok.CreateTime.IsZero() {
		t.Fatalf("bootstrap token %+v", tok)
	}

	second, _ := mgmtToken(t, "again")
	err := applyStep(t, f, &idx, &ACLBootstrap{Token: second})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "ACL bootstrap already done (reset index: 1)") {
		t.Fatalf("second bootstrap: %v", err)
	}
	if err := applyStep(t, f, &idx, &ACLBootstrap{Token: second, ResetIndex: 7}); !errors.Is(err, ErrRejected) {
		t.Fatalf("bootstrap with a wrong reset index: %v", err)
	}
	if tok, _ := f.State().ACLToken(second.AccessorID); tok != nil {
		t.Fatal("a refused bootstrap left its token behind")
	}
	if err := applyStep(t, f, &idx, &ACLBootstrap{Token: second, ResetIndex: 1}); err != nil {
		t.Fatalf("bootstrap with the reset index: %v", err)
	}
	meta, _ = f.State().ACLMeta()
	if meta.BootstrapIndex != idx {
		t.Fatalf("bootstrap index %d, want %d", meta.BootstrapIndex, idx)
	}
	// The old reset index is spent.
	third, _ := mgmtToken(t, "third")
	if err := applyStep(t, f, &idx, &ACLBootstrap{Token: third, ResetIndex: 1}); !errors.Is(err, ErrRejected) {
		t.Fatalf("a spent reset index: %v", err)
	}
}

func TestACLPoliciesAndTokens(t *testing.T) {
	f := newFSM(t)
	idx := uint64(0)
	if _, err := Encode(&ACLPolicyUpsert{Name: "bad", Rules: `node { policy = "root" }`}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a bad policy encodes: %v", err)
	}
	tok, secret := acl.NewToken()
	tok.Name, tok.Policies = "ci", []string{"readers"}
	if err := applyStep(t, f, &idx, &ACLTokenCreate{Token: *tok}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `"readers" does not exist`) {
		t.Fatalf("a token of a missing policy: %v", err)
	}
	if err := applyStep(t, f, &idx, &ACLPolicyUpsert{Name: "readers", Description: "read all", Rules: `node { policy = "read" }`}); err != nil {
		t.Fatal(err)
	}
	if err := applyStep(t, f, &idx, &ACLTokenCreate{Token: *tok}); err != nil {
		t.Fatal(err)
	}
	if err := applyStep(t, f, &idx, &ACLTokenCreate{Token: *tok}); !errors.Is(err, ErrRejected) {
		t.Fatalf("the same token twice: %v", err)
	}
	// Replacing a policy keeps its creation index and parses the new rules.
	if err := applyStep(t, f, &idx, &ACLPolicyUpsert{Name: "readers", Rules: `node { policy = "write" }`}); err != nil {
		t.Fatal(err)
	}
	p, _ := f.State().ACLPolicy("readers")
	if p.CreateIndex != 2 || p.ModifyIndex != idx || p.Rules.Node != acl.Write || p.Description != "" {
		t.Fatalf("policy after an update: %+v", p)
	}
	got, _ := f.State().ACLTokenBySecretHash(acl.HashSecret(secret))
	if got == nil || got.Name != "ci" {
		t.Fatalf("token by secret: %+v", got)
	}
	if err := applyStep(t, f, &idx, &ACLTokenDelete{AccessorID: tok.AccessorID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.State().ACLTokenBySecretHash(acl.HashSecret(secret)); got != nil {
		t.Fatal("a deleted token resolves")
	}
	if err := applyStep(t, f, &idx, &ACLTokenDelete{AccessorID: tok.AccessorID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted token: %v", err)
	}
	if err := applyStep(t, f, &idx, &ACLPolicyDelete{Name: "readers"}); err != nil {
		t.Fatal(err)
	}
	if err := applyStep(t, f, &idx, &ACLPolicyDelete{Name: "readers"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted policy: %v", err)
	}
	// No ACL command derives an event.
	if m, _ := f.State().EventMeta(); m.LastSeq != 0 {
		t.Fatalf("ACL commands derived %d events", m.LastSeq)
	}
}

// Snapshots carry the ACL tables, with the secrets' hashes and never the secrets.
func TestACLSnapshotRoundTrip(t *testing.T) {
	f := newFSM(t)
	idx := uint64(0)
	boot, bootSecret := mgmtToken(t, "bootstrap")
	tok, secret := acl.NewToken()
	tok.Name, tok.Policies = "ci", []string{"readers"}
	for _, cmd := range []Command{
		&ACLBootstrap{Token: boot},
		&ACLPolicyUpsert{Name: "readers", Rules: `event { policy = "read" }`},
		&ACLTokenCreate{Token: *tok},
	} {
		if err := applyStep(t, f, &idx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	snap, _ := f.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{bootSecret, secret} {
		if bytes.Contains(sink.Bytes(), []byte(s)) {
			t.Fatal("the snapshot holds a secret")
		}
	}
	g := newFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	st := g.State()
	if got, _ := st.ACLTokenBySecretHash(acl.HashSecret(secret)); got == nil || got.Name != "ci" || got.Policies[0] != "readers" {
		t.Fatalf("restored token: %+v", got)
	}
	if p, _ := st.ACLPolicy("readers"); p == nil || p.Rules.Event != acl.Read {
		t.Fatalf("restored policy: %+v", p)
	}
	if m, _ := st.ACLMeta(); m.BootstrapIndex != 1 {
		t.Fatalf("restored bootstrap index %d", m.BootstrapIndex)
	}
}

// The Raft log carries a secret's hash only: a command is all a follower sees.
func TestACLCommandsCarryNoSecret(t *testing.T) {
	tok, secret := acl.NewToken()
	tok.Management = true
	buf, err := Encode(&ACLBootstrap{Token: *tok})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf, []byte(secret)) || !bytes.Contains(buf, []byte(acl.HashSecret(secret))) {
		t.Fatalf("the command %s", buf)
	}
}

// Spawns and stops record who asked, in their events and on the node.
func TestRequestedBy(t *testing.T) {
	f, idx := nodeFixture(t)
	if err := applyStep(t, f, idx, &SpawnNode{ID: "n1", Agent: "a1", Port: 50061, RequestedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := applyStep(t, f, idx, &StopNode{ID: "n1", RequestedBy: "bob"}); err != nil {
		t.Fatal(err)
	}
	n, _ := f.State().Node("n1")
	if n.RequestedBy != "bob" {
		t.Fatalf("node requested_by %q, want bob", n.RequestedBy)
	}
	evs, _ := f.State().Outbox(0, 100)
	found := map[events.Type]string{}
	for _, e := range evs {
		found[e.Type] = e.RequestedBy
		if e.Type == events.StopRequested && !strings.HasSuffix(e.Description, " by bob") {
			t.Errorf("description %q", e.Description)
		}
	}
	if found[events.SpawnRequested] != "alice" || found[events.StopRequested] != "bob" {
		t.Fatalf("requested_by in events: %v", found)
	}
}

// BenchmarkACLCheck is the ACL check of one request as a server runs it: a read view of
// the state, the secret's hash, the token and its two policies looked up in memdb.
func BenchmarkACLCheck(b *testing.B) {
	f, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, secret := acl.NewToken()
	tok.Name, tok.Policies = "bench", []string{"events", "nodes"}
	for i, cmd := range []Command{
		&ACLPolicyUpsert{Name: "nodes", Rules: `node { policy = "write" }`},
		&ACLPolicyUpsert{Name: "events", Rules: `event { policy = "read" }`},
		&ACLTokenCreate{Token: *tok},
	} {
		buf, _ := Encode(cmd)
		if resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: buf}); resp != nil {
			b.Fatal(resp)
		}
	}
	a := acl.NewAuthorizer(func() acl.State { return f.State() })
	acc := auth.Access{Endpoint: "POST /v1/nodes", Write: true, Token: secret}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authorize(ctx, acc); err != nil {
			b.Fatal(err)
		}
	}
}
