//go:build linux

package agent

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/internal/gridtest"
)

func gossipKey(t *testing.T) string {
	t.Helper()
	k, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAgentGossipEncryption: an agent started with the servers' key joins and
// registers; a rotation run from a server reaches its keyring, kept in its data dir,
// so that restarted with its first key it still joins.
func TestAgentGossipEncryption(t *testing.T) {
	t.Parallel()
	oldKey, newKey := gossipKey(t), gossipKey(t)
	srv := newTestServerWith(t, oldKey)
	dir := t.TempDir()
	cfg := testConfig(t, "agent-enc", dir, srv)
	cfg.EncryptKey = oldKey
	a := startAgent(t, cfg)
	if !a.GossipEncrypted() {
		t.Fatal("the agent does not encrypt gossip")
	}
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { regs, _, _, _, _ := srv.snapshot(); return len(regs) == 1 })

	for _, step := range []struct {
		name string
		op   func(string) (*gossip.KeyringResult, error)
		key  string
	}{
		{"install", srv.gossip.InstallKey, newKey},
		{"use", srv.gossip.UseKey, newKey},
		{"remove", srv.gossip.RemoveKey, oldKey},
	} {
		if r, err := step.op(step.key); err != nil || r.Responses != 2 {
			t.Fatalf("%s: %+v, %v", step.name, r, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "serf", "local.keyring"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil || !reflect.DeepEqual(keys, []string{newKey}) {
		t.Fatalf("the agent's keyring file holds %s (%v), want the new key alone", b, err)
	}

	// Restarted on its address with the same command line: the keyring in the data
	// dir wins over -encrypt, and the agent joins and registers again.
	_, port, _ := net.SplitHostPort(a.GossipAddr())
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg.GossipPort, _ = strconv.Atoi(port)
	startAgent(t, cfg)
	gridtest.WaitUntil(t, waitLong, "the restarted agent alive in gossip and registered", func() bool {
		m, ok := srv.gossip.Members().Get("agent-enc")
		regs, _, _, _, _ := srv.snapshot()
		return ok && m.Status == gossip.StatusAlive && len(regs) >= 2
	})
}

func TestAgentWithWrongGossipKeyCannotJoin(t *testing.T) {
	t.Parallel()
	srv := newTestServerWith(t, gossipKey(t))
	cfg := testConfig(t, "agent-wrong-key", t.TempDir(), srv)
	cfg.EncryptKey = gossipKey(t)
	cfg.RetryMax = 2
	a := startAgent(t, cfg)
	select {
	case err := <-a.Fatal():
		if !strings.Contains(err.Error(), "gossip encryption keys do not match") {
			t.Fatalf("fatal error %q does not say the keys do not match", err)
		}
	case <-time.After(waitLong):
		t.Fatal("the agent did not give up joining")
	}
	if regs, _, _, _, _ := srv.snapshot(); len(regs) != 0 {
		t.Fatalf("the agent registered: %v", regs)
	}
}

func TestAgentMalformedGossipKey(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "agent-bad-key", t.TempDir(), newTestServer(t))
	cfg.EncryptKey = "c2VjcmV0"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "-encrypt: invalid gossip encryption key") {
		t.Fatalf("New with a malformed key: %v", err)
	}
}
