package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
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

// apiStatus returns the status of an API error, 0 for another error.
func apiStatus(err error) int {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// TestKeyringEndpoints rotates the gossip key of three servers through the HTTP API
// of different servers; the cluster keeps its leader, and the rotated keyring
// survives a restart.
func TestKeyringEndpoints(t *testing.T) {
	oldKey, newKey := gossipKey(t), gossipKey(t)
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.EncryptKey = oldKey })
	c.leader()
	for _, s := range c.servers {
		if !s.GossipEncrypted() {
			t.Fatalf("%s does not encrypt gossip", s.Name())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := []*api.Client{apiClient(t, c.servers[0]), apiClient(t, c.servers[1]), apiClient(t, c.servers[2])}
	waitMembers := func(cl *api.Client) {
		t.Helper()
		gridtest.WaitFor(t, 10*time.Second, "three members answer", func() error {
			r, err := cl.KeyringList(ctx)
			if err != nil {
				return err
			}
			if r.Members != 3 || r.Responses != 3 {
				return errors.New("not all members answered")
			}
			return nil
		})
	}
	waitMembers(clients[0])
	// A keyring query waits a few seconds for every member's answer over UDP; on a
	// loaded machine one may come too late, as an operator would see ("2 of 3
	// members answered in time") and run the command again. So does the test: every
	// operation is idempotent.
	again := func(what string, op func() (*api.KeyringResponse, error)) *api.KeyringResponse {
		t.Helper()
		var r *api.KeyringResponse
		gridtest.WaitFor(t, 20*time.Second, what, func() error {
			var err error
			r, err = op()
			if err != nil && strings.Contains(err.Error(), "answered in time") {
				return err
			}
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if r.Members != 3 || r.Responses != 3 {
				return fmt.Errorf("%s: %+v", what, r)
			}
			return nil
		})
		return r
	}
	list := func(cl *api.Client) []api.KeyringKey {
		t.Helper()
		return again("list", func() (*api.KeyringResponse, error) { return cl.KeyringList(ctx) }).Keys
	}
	keysAre := func(got []api.KeyringKey, want ...api.KeyringKey) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("keys %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("keys %+v, want %+v", got, want)
			}
		}
	}
	keysAre(list(clients[1]), api.KeyringKey{Key: oldKey, Members: 3, PrimaryMembers: 3})

	// Mistakes: 400, and the keyring stays as it was.
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"invalid key", func() error { _, err := clients[0].KeyringInstall(ctx, "abc"); return err }, "invalid gossip encryption key"},
		{"no key", func() error { _, err := clients[0].KeyringInstall(ctx, ""); return err }, "the key is required"},
		{"use a key not installed", func() error { _, err := clients[0].KeyringUse(ctx, newKey); return err }, "not installed"},
		{"remove the primary key", func() error { _, err := clients[0].KeyringRemove(ctx, oldKey); return err }, "primary key"},
	} {
		if err := tc.do(); apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 saying %q", tc.name, err, tc.want)
		}
	}
	keysAre(list(clients[0]), api.KeyringKey{Key: oldKey, Members: 3, PrimaryMembers: 3})

	leader := c.leader()
	if r := again("install", func() (*api.KeyringResponse, error) { return clients[0].KeyringInstall(ctx, newKey) }); r.Keys != nil {
		t.Fatalf("install: %+v", r)
	}
	keysAre(list(clients[2]),
		api.KeyringKey{Key: oldKey, Members: 3, PrimaryMembers: 3},
		api.KeyringKey{Key: newKey, Members: 3, PrimaryMembers: 0})
	again("use", func() (*api.KeyringResponse, error) { return clients[1].KeyringUse(ctx, newKey) })
	keysAre(list(clients[0]),
		api.KeyringKey{Key: newKey, Members: 3, PrimaryMembers: 3},
		api.KeyringKey{Key: oldKey, Members: 3, PrimaryMembers: 0})
	again("remove", func() (*api.KeyringResponse, error) { return clients[2].KeyringRemove(ctx, oldKey) })
	keysAre(list(clients[1]), api.KeyringKey{Key: newKey, Members: 3, PrimaryMembers: 3})
	if l := c.leader(); l != leader {
		t.Fatalf("the leader changed during the rotation: %s, then %s", leader.Name(), l.Name())
	}

	// A follower restarted with its first -encrypt key keeps the rotated keyring
	// from its data dir and rejoins.
	f := followers(leader, c.servers)[0]
	idx := 0
	for i, s := range c.servers {
		if s == f {
			idx = i
		}
	}
	addr := f.GossipAddr()
	if err := f.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, f.Name(), c.dirs[idx], 3)
	cfg.EncryptKey = oldKey
	cfg.GossipPort = portOf(addr)
	cfg.Join = []string{leader.GossipAddr()}
	restarted := startServer(t, cfg)
	c.servers[idx] = restarted
	gridtest.WaitFor(t, 15*time.Second, "the restarted server alive on the leader", func() error {
		if m, ok := leader.members.Get(f.Name()); !ok || m.Status != StatusAlive {
			return errors.New("not alive")
		}
		return nil
	})
	waitMembers(apiClient(t, restarted))
	keysAre(list(apiClient(t, restarted)), api.KeyringKey{Key: newKey, Members: 3, PrimaryMembers: 3})
}

func TestKeyringWithoutEncryption(t *testing.T) {
	c := newCluster(t, 1)
	c.leader()
	if c.servers[0].GossipEncrypted() {
		t.Fatal("a server without -encrypt encrypts gossip")
	}
	cl := apiClient(t, c.servers[0])
	ctx := context.Background()
	_, err := cl.KeyringList(ctx)
	if apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), "gossip encryption is not enabled") {
		t.Fatalf("list without encryption: %v, want 409", err)
	}
	if _, err := cl.KeyringInstall(ctx, gossipKey(t)); apiStatus(err) != http.StatusConflict {
		t.Fatalf("install without encryption: %v, want 409", err)
	}
}

func TestMalformedEncryptKeyRefused(t *testing.T) {
	cfg := testConfig(t, "s1", t.TempDir(), 1)
	cfg.EncryptKey = "not-a-key"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "-encrypt: invalid gossip encryption key") {
		t.Fatalf("New with a malformed key: %v", err)
	}
}
