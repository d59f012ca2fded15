package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/internal/gridtest"
)

func newKey(t *testing.T) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logged is a logger whose output the test reads, shown if the test fails.
type logged struct {
	hclog.Logger
	buf *gridtest.SyncBuffer
}

func newLogged(t *testing.T, name string) logged {
	buf := &gridtest.SyncBuffer{}
	var out io.Writer = buf
	if os.Getenv("GRID_TEST_LOG") != "" {
		out = io.MultiWriter(buf, os.Stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	return logged{hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: out}), buf}
}

// encrypted is testConfig with key, a keyring file in a new temporary dir, and a
// logger whose output the test reads.
func encrypted(t *testing.T, name, key string, join ...string) (Config, logged) {
	cfg := testConfig(t, name, Tags{Role: RoleServer, ID: "id-" + name}, join...)
	cfg.EncryptKey = key
	cfg.KeyringFile = filepath.Join(t.TempDir(), "serf", "local.keyring")
	l := newLogged(t, name)
	cfg.Logger = l
	return cfg, l
}

func keyringFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("keyring file %s: %v\n%s", path, err, b)
	}
	return keys
}

func TestGenerateAndDecodeKey(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	if k1 == k2 {
		t.Fatal("two generated keys are equal")
	}
	raw, err := DecodeKey(k1)
	if err != nil || len(raw) != KeySize {
		t.Fatalf("DecodeKey(%q) = %d bytes, %v", k1, len(raw), err)
	}
	for _, bad := range []struct{ key, want string }{
		{"not base64!", "not base64"},
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), "16 bytes, want 32"},
		{"", "0 bytes, want 32"},
	} {
		err := ValidKey(bad.key)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "-generate") {
			t.Errorf("ValidKey(%q) = %v, want an error saying %q and how to make a key", bad.key, err, bad.want)
		}
	}
}

func TestEncryptedMembersJoin(t *testing.T) {
	key := newKey(t)
	cfg1, _ := encrypted(t, "s1", key)
	s1 := create(t, cfg1)
	cfg2, _ := encrypted(t, "s2", key, s1.LocalAddr())
	s2 := create(t, cfg2)
	if !s1.Encrypted() || !s2.Encrypted() {
		t.Fatal("members started with a key do not encrypt")
	}
	fatal := make(chan error, 1)
	s2.JoinLoop(t.Context(), fatal)
	waitFor(t, "both alive", func() bool { return statusOf(s1, "s2") == StatusAlive && statusOf(s2, "s1") == StatusAlive })

	// The key seeded the keyring file, readable by the owner only.
	if keys := keyringFile(t, cfg1.KeyringFile); !reflect.DeepEqual(keys, []string{key}) {
		t.Fatalf("keyring file holds %q, want the key", keys)
	}
	if fi, err := os.Stat(cfg1.KeyringFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file mode %v, %v; want 0600", fi.Mode(), err)
	}

	// Without a key, gossip is plaintext as before, and there is no keyring.
	plain := create(t, testConfig(t, "plain", Tags{Role: RoleAgent}))
	if plain.Encrypted() {
		t.Fatal("a member without a key encrypts")
	}
	if _, err := plain.ListKeys(); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("ListKeys without encryption: %v", err)
	}
}

// TestKeyMismatchRefused: a member with a wrong key, or none, cannot join an
// encrypted pool, nor one with a key a plaintext pool; the join fails with an error
// that says why, and both sides log it.
func TestKeyMismatchRefused(t *testing.T) {
	poolKey := newKey(t)
	for _, tc := range []struct {
		name             string
		poolKey, joinKey string
		reason           string // in the joiner's error
	}{
		{"wrong key", poolKey, newKey(t), "not in this member's keyring"},
		{"missing key", poolKey, "", "this member has no gossip encryption key"},
		{"key into a plaintext pool", "", poolKey, "the other member sends it in plaintext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg1, log1 := encrypted(t, "s1", tc.poolKey)
			s1 := create(t, cfg1)
			cfg2, log2 := encrypted(t, "s2", tc.joinKey, s1.LocalAddr())
			cfg2.RetryMax = 2
			s2 := create(t, cfg2)
			fatal := make(chan error, 1)
			s2.JoinLoop(t.Context(), fatal)
			var err error
			select {
			case err = <-fatal:
			default:
				t.Fatal("the join succeeded")
			}
			msg := err.Error()
			for _, want := range []string{"after 2 attempts", "gossip encryption keys do not match", tc.reason, "-encrypt"} {
				if !strings.Contains(msg, want) {
					t.Errorf("join error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("join error spans lines: %q", msg)
			}
			// Both sides log it in plain words.
			for name, l := range map[string]logged{"pool": log1, "joiner": log2} {
				waitFor(t, name+" logs the refusal", func() bool {
					return strings.Contains(l.buf.String(), "gossip refused: encryption keys do not match")
				})
			}
			if statusOf(s1, "s2") != "" || statusOf(s2, "s1") != "" {
				t.Fatalf("the members know each other: %v, %v", s1.Members().List(), s2.Members().List())
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	cfg1, _ := encrypted(t, "s1", oldKey)
	s1 := create(t, cfg1)
	pools, cfgs := []*Pool{s1}, []Config{cfg1}
	for _, name := range []string{"s2", "a1"} {
		cfg, _ := encrypted(t, name, oldKey, s1.LocalAddr())
		p := create(t, cfg)
		p.JoinLoop(t.Context(), nil)
		pools, cfgs = append(pools, p), append(cfgs, cfg)
	}
	together := func(what string) {
		t.Helper()
		waitFor(t, "three alive members "+what, func() bool {
			for _, p := range pools {
				for _, name := range []string{"s1", "s2", "a1"} {
					if statusOf(p, name) != StatusAlive {
						return false
					}
				}
			}
			return true
		})
	}
	together("before the rotation")
	list := func(via *Pool) *KeyringResult {
		t.Helper()
		r, err := via.ListKeys()
		if err != nil {
			t.Fatalf("list keys: %v", err)
		}
		if r.Members != 3 || r.Responses != 3 {
			t.Fatalf("list keys: %d of %d members answered", r.Responses, r.Members)
		}
		return r
	}
	checkList := func(via *Pool, keys, primary map[string]int) {
		t.Helper()
		r := list(via)
		if !reflect.DeepEqual(r.Keys, keys) || !reflect.DeepEqual(r.PrimaryKeys, primary) {
			t.Fatalf("keys %v, primary %v; want %v, %v", r.Keys, r.PrimaryKeys, keys, primary)
		}
	}
	checkList(s1, map[string]int{oldKey: 3}, map[string]int{oldKey: 3})

	// Mistakes are refused before they reach the pool.
	for _, tc := range []struct {
		name string
		op   func() (*KeyringResult, error)
		want string
	}{
		{"use a key not installed", func() (*KeyringResult, error) { return s1.UseKey(newKey) }, "not installed"},
		{"remove the primary key", func() (*KeyringResult, error) { return s1.RemoveKey(oldKey) }, "primary key"},
		{"install an invalid key", func() (*KeyringResult, error) { return s1.InstallKey("abc") }, "invalid gossip encryption key"},
	} {
		_, err := tc.op()
		var ke *KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a KeyError saying %q", tc.name, err, tc.want)
		}
	}

	// Install through one member, use through another, remove through a third: each
	// reaches every member, and the pool stays together throughout.
	if r, err := s1.InstallKey(newKey); err != nil || r.Responses != 3 {
		t.Fatalf("install: %+v, %v", r, err)
	}
	checkList(pools[1], map[string]int{oldKey: 3, newKey: 3}, map[string]int{oldKey: 3})
	if _, err := pools[1].UseKey(newKey); err != nil {
		t.Fatalf("use: %v", err)
	}
	checkList(pools[2], map[string]int{oldKey: 3, newKey: 3}, map[string]int{newKey: 3})
	together("after the primary key changed")
	if _, err := pools[2].RemoveKey(oldKey); err != nil {
		t.Fatalf("remove: %v", err)
	}
	checkList(s1, map[string]int{newKey: 3}, map[string]int{newKey: 3})
	together("after the old key was removed")
	for _, cfg := range cfgs {
		if keys := keyringFile(t, cfg.KeyringFile); !reflect.DeepEqual(keys, []string{newKey}) {
			t.Fatalf("%s keeps %q in its keyring file, want the new key alone", cfg.Name, keys)
		}
	}

	// A member with the old key is now refused; one with the new key joins.
	stale, _ := encrypted(t, "stale", oldKey, s1.LocalAddr())
	if _, err := create(t, stale).Join(s1.LocalAddr()); err == nil || !strings.Contains(err.Error(), "keys do not match") {
		t.Fatalf("a member with the removed key joined: %v", err)
	}
	fresh, _ := encrypted(t, "fresh", newKey, s1.LocalAddr())
	if _, err := create(t, fresh).Join(s1.LocalAddr()); err != nil {
		t.Fatalf("a member with the new key: %v", err)
	}

	// A member restarted with its old -encrypt key keeps the rotated keyring from its
	// file, and says it ignores the key.
	s2 := pools[1]
	if err := s2.Leave(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = s2.Shutdown()
	cfg2 := cfgs[1]
	l := newLogged(t, "s2 again")
	cfg2.Logger = l
	again := create(t, cfg2)
	if _, err := again.Join(s1.LocalAddr()); err != nil {
		t.Fatalf("restarted member: %v", err)
	}
	waitFor(t, "s2 back", func() bool { return statusOf(s1, "s2") == StatusAlive })
	if out := l.buf.String(); !strings.Contains(out, "ignoring the encrypt key") || !strings.Contains(out, "not in the keyring") {
		t.Errorf("the restarted member does not say it ignores -encrypt:\n%s", out)
	}
}

func TestKeyringAtStart(t *testing.T) {
	t.Run("malformed key", func(t *testing.T) {
		cfg, _ := encrypted(t, "s1", "c2VjcmV0")
		if _, err := Create(cfg); err == nil || !strings.Contains(err.Error(), "invalid gossip encryption key: 6 bytes") {
			t.Fatalf("Create with a short key: %v", err)
		}
		if _, err := os.Stat(cfg.KeyringFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a keyring file was written for a bad key: %v", err)
		}
	})
	for _, tc := range []struct{ name, content, want string }{
		{"damaged keyring file", "[\"abc", "want a JSON list"},
		{"empty keyring file", "[]", "holds no key"},
		{"bad key in the keyring file", `["abc"]`, "key 1: invalid gossip encryption key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := encrypted(t, "s1", newKey(t))
			if err := os.MkdirAll(filepath.Dir(cfg.KeyringFile), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.KeyringFile, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Create(cfg); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), cfg.KeyringFile) {
				t.Fatalf("Create: %v, want an error naming the file and saying %q", err, tc.want)
			}
		})
	}
	t.Run("keyring file without a key", func(t *testing.T) {
		// A keyring file alone turns encryption on: a member restarted without
		// -encrypt keeps encrypting.
		key := newKey(t)
		cfg, _ := encrypted(t, "s1", key)
		create(t, cfg).Shutdown()
		cfg.EncryptKey = ""
		p := create(t, cfg)
		if !p.Encrypted() {
			t.Fatal("not encrypted with a keyring file")
		}
	})
}

func TestKeyLog(t *testing.T) {
	var next strings.Builder
	l := newLogged(t, "keylog")
	w := newKeyLog(&next, l)
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }
	lines := []string{
		"[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=127.0.0.14:53422\n",
		"[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=127.0.0.14:53423\n", // same host: quiet
		"[DEBUG] memberlist: failed to join 127.0.0.11:7946: remote state is encrypted and encryption is not configured\n",
		"[INFO] serf: EventMemberJoin: s2 127.0.0.12\n",
		// Same host, another reason: explained.
		"[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.14:53424\n",
	}
	for _, line := range lines {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if next.String() != strings.Join(lines, "") {
		t.Fatalf("lines not passed on as they are:\n%s", next.String())
	}
	out := l.buf.String()
	if n := strings.Count(out, "gossip refused"); n != 3 {
		t.Fatalf("%d refusals explained, want 3:\n%s", n, out)
	}
	for _, want := range []string{"peer=127.0.0.14:53422", "peer=127.0.0.11:7946", "this member has no gossip encryption key", "peer=127.0.0.14:53424"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// After the interval, the same host is explained again.
	now = now.Add(keyLogInterval)
	_, _ = w.Write([]byte(lines[1]))
	if n := strings.Count(l.buf.String(), "gossip refused"); n != 4 {
		t.Fatalf("%d refusals explained after the interval, want 4", n)
	}
}

func TestExplainJoinError(t *testing.T) {
	if explainJoinError(nil) != nil {
		t.Fatal("nil error explained")
	}
	plain := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	if got := explainJoinError(plain); got != plain {
		t.Fatalf("an unrelated error changed: %v", got)
	}
}
