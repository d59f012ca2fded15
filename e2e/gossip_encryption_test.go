//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keyringView is `grid operator gossip keyring -list -json`.
type keyringView struct {
	Members   int `json:"members"`
	Responses int `json:"responses"`
	Keys      []struct {
		Key            string `json:"key"`
		Members        int    `json:"members"`
		PrimaryMembers int    `json:"primary_members"`
	} `json:"keys"`
}

// keyring runs `grid operator gossip keyring` with args against the server of the
// -address flag addr and fails the test unless it succeeds; it returns stdout.
//
// A keyring operation is a gossip query that waits a few seconds for every member's
// answer over UDP; on a loaded machine one may answer too late ("4 of 5 members
// answered in time"), and an operator runs the command again, as this does: every
// operation is idempotent. A member that never answers still fails the test.
func keyring(t *testing.T, addr string, args ...string) string {
	t.Helper()
	var stdout string
	cliPoll.WaitFor(t, 30*time.Second, fmt.Sprintf("grid operator gossip keyring %v", args), func() error {
		out, stderr, code := grid(append([]string{"operator", "gossip", "keyring", addr}, args...)...)
		switch {
		case code != 0 && strings.Contains(stderr, "answered in time"):
			return fmt.Errorf("exit %d: %s", code, stderr)
		case code != 0:
			t.Fatalf("grid operator gossip keyring %v: exit %d: %s", args, code, stderr)
		}
		stdout = out
		return nil
	})
	return strings.TrimSpace(stdout)
}

// waitKeyring waits until every one of members members answers a listing through
// the server of the -address flag addr with keys, each held by all, the first
// primary on all.
func waitKeyring(t *testing.T, addr string, members int, keys ...string) {
	t.Helper()
	cliPoll.WaitFor(t, 20*time.Second, fmt.Sprintf("keys %v on %d members", keys, members), func() error {
		var v keyringView
		if err := gridJSON(&v, "operator", "gossip", "keyring", addr, "-list"); err != nil {
			return err
		}
		var got []string
		for _, k := range v.Keys {
			got = append(got, fmt.Sprintf("%s %d/%d", k.Key, k.PrimaryMembers, k.Members))
		}
		want := []string{}
		for i, k := range keys {
			primary := 0
			if i == 0 {
				primary = members
			}
			want = append(want, fmt.Sprintf("%s %d/%d", k, primary, members))
		}
		if v.Members != members || v.Responses != members || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%d of %d members answered: %v, want %v", v.Responses, v.Members, got, want)
		}
		return nil
	})
}

// keyringFileOf returns the keys in the keyring file of a data dir, and checks that
// only its owner can read it.
func keyringFileOf(t *testing.T, dataDir string) []string {
	t.Helper()
	path := filepath.Join(dataDir, "serf", "local.keyring")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}

// TestGossipEncryption: three servers and an agent started with -encrypt run a node;
// through a full key rotation with `grid operator gossip keyring` the node keeps
// running, the agent healthy, and nodes spawned during and after it run too, with
// every event recorded; a server restarted with its first command line keeps the
// rotated keyring from its data dir and rejoins; a server started with the removed
// key cannot join, and says why, as the pool does.
func TestGossipEncryption(t *testing.T) {
	oldKey := keyring(t, address("127.0.0.11"), "-generate")
	c := &serverCluster{t: t, dir: t.TempDir(), procs: map[string]*proc{}, extra: []string{
		"-encrypt=" + oldKey,
		"-heartbeat-interval=300ms", "-agent-degraded-after=2s", "-agent-offline-after=4s",
	}}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	c.stablePeers("127.0.0.11", "", 30*time.Second)
	t.Cleanup(func() { killProcessesMentioning(c.dir) })
	g := &gridFixture{serverCluster: c, agentDir: filepath.Join(c.dir, "agent-001"), via: "127.0.0.12", maxNodes: 4}
	g.agent = start(t, "agent-001", "agent", "-bind="+agentIP, "-name=agent-001", "-data-dir="+g.agentDir,
		"-join=127.0.0.11", "-retry-interval=200ms", "-max-nodes=4", "-log-level=debug", "-encrypt="+oldKey)
	before := g.waitAgent("healthy")
	waitKeyring(t, address("127.0.0.12"), 4, oldKey)

	first := g.spawn(50081)

	// Rotate, each step through another server: install the new key, make it
	// primary, remove the old one.
	newKey := keyring(t, address("127.0.0.11"), "-generate")
	if out := keyring(t, address("127.0.0.11"), "-install="+newKey); out != "Installed the key on all 4 members" {
		t.Fatalf("install: %q", out)
	}
	waitKeyring(t, address("127.0.0.12"), 4, oldKey, newKey)
	if out := keyring(t, address("127.0.0.12"), "-use="+newKey); out != "Made the key primary on all 4 members" {
		t.Fatalf("use: %q", out)
	}
	waitKeyring(t, address("127.0.0.13"), 4, newKey, oldKey)
	// Mid-rotation: every member encrypts with the new key and still reads the old.
	during := g.spawn(50082)
	if out := keyring(t, address("127.0.0.13"), "-remove="+oldKey); out != "Removed the key from all 4 members" {
		t.Fatalf("remove: %q", out)
	}
	waitKeyring(t, address("127.0.0.11"), 4, newKey)
	for _, dir := range []string{filepath.Join(c.dir, "127.0.0.11"), g.agentDir} {
		if keys := keyringFileOf(t, dir); !reflect.DeepEqual(keys, []string{newKey}) {
			t.Fatalf("keyring file in %s holds %q, want the new key alone", dir, keys)
		}
	}

	// The grid still takes orders and hears from its agent: a node spawned after the
	// rotation runs beside the others, which never stopped, the agent never left
	// healthy, and the history has every spawn and no agent trouble.
	after := g.spawn(50083)
	nodes := []nodeView{first, during, after}
	for _, n := range nodes {
		g.waitNode(n.ID, "running with its first pid", func(v nodeView) error {
			if v.Status != "running" || v.PID != n.PID {
				return fmt.Errorf("%+v, want running with pid %d", v, n.PID)
			}
			return nil
		})
	}
	if a := g.waitAgent("healthy"); !a.StatusChangedAt.Equal(before.StatusChangedAt) {
		t.Fatalf("the agent's status changed during the rotation: %+v, was %+v", a, before)
	}
	var history []struct {
		Type   string `json:"type"`
		NodeID string `json:"node_id"`
	}
	if err := gridJSON(&history, "event", "list", address("127.0.0.11"), "-asc", "-limit=1000"); err != nil {
		t.Fatal(err)
	}
	spawned := map[string]bool{}
	for _, e := range history {
		switch e.Type {
		case "spawn_succeeded":
			spawned[e.NodeID] = true
		case "agent_degraded", "agent_offline", "node_crashed":
			t.Errorf("event %s of %q during the rotation", e.Type, e.NodeID)
		}
	}
	for _, n := range nodes {
		if !spawned[n.ID] {
			t.Errorf("no spawn_succeeded event for node %s: %+v", n.ID, history)
		}
	}

	// A server restarted with the same command line (-encrypt with the old key) uses
	// the keyring in its data dir, says so, and rejoins.
	if code := c.procs["127.0.0.13"].stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("server 127.0.0.13 exited %d after SIGTERM", code)
	}
	c.start("127.0.0.13")
	waitKeyring(t, address("127.0.0.13"), 4, newKey)
	c.stablePeers("127.0.0.13", "", 30*time.Second)
	if out := c.procs["127.0.0.13"].out.String(); !strings.Contains(out, "ignoring the encrypt key (-encrypt), which is not in the keyring") {
		t.Errorf("the restarted server does not say it ignores -encrypt:\n%s", out)
	}

	// A server left out of the rotation, with the old key, cannot join: it gives up
	// and says why, and the server it tried says so too.
	stale := start(t, "stale server", "server", "-bind=127.0.0.14", "-name=server-127.0.0.14",
		"-data-dir="+filepath.Join(c.dir, "127.0.0.14"), "-join=127.0.0.11", "-retry-interval=200ms", "-retry-max=2",
		"-encrypt="+oldKey)
	select {
	case <-stale.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server with the old key still runs")
	}
	if code := stale.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("the server with the old key exited %d, want 1", code)
	}
	if out := stale.out.String(); !strings.Contains(out, "Error: could not join") || !strings.Contains(out, "gossip encryption keys do not match") {
		t.Fatalf("the server with the old key does not say why it stopped:\n%s", out)
	}
	if out := c.procs["127.0.0.11"].out.String(); !strings.Contains(out, "gossip refused: encryption keys do not match") {
		t.Fatalf("the pool does not log the refusal:\n%s", out)
	}
	var members []member
	if err := gridJSON(&members, "members", address("127.0.0.11")); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Name == "server-127.0.0.14" {
			t.Fatalf("the server with the old key is a member: %+v", members)
		}
	}
}
