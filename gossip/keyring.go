package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/sutragrid/grid/durable"
)

// KeySize is the length in bytes of a gossip encryption key: memberlist encrypts and
// authenticates every message with AES-256-GCM.
const KeySize = 32

// GenerateKey returns a new random gossip encryption key, base64-encoded as -encrypt
// and the keyring take it.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// DecodeKey decodes a base64 gossip encryption key and checks its length. Its error
// says what is wrong and what a key looks like.
func DecodeKey(key string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("invalid gossip encryption key: not base64 (%v); want %d random bytes in base64, as 'grid operator gossip keyring -generate' prints", err, KeySize)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("invalid gossip encryption key: %d bytes, want %d random bytes in base64, as 'grid operator gossip keyring -generate' prints", len(raw), KeySize)
	}
	return raw, nil
}

// ValidKey reports, as DecodeKey, whether key is a valid gossip encryption key.
func ValidKey(key string) error {
	_, err := DecodeKey(key)
	return err
}

// setupKeyring returns the keyring that cfg asks for: the one kept in
// cfg.KeyringFile if that exists, which holds the keys rotated since the member first
// started, else a new one holding cfg.EncryptKey, which it then keeps in
// cfg.KeyringFile; nil, for plaintext gossip, when there is neither.
func setupKeyring(cfg Config, logger hclog.Logger) (*memberlist.Keyring, error) {
	if cfg.KeyringFile != "" {
		keys, err := readKeyringFile(cfg.KeyringFile)
		switch {
		case err == nil:
			ring, err := memberlist.NewKeyring(keys, keys[0])
			if err != nil {
				return nil, fmt.Errorf("gossip keyring %s: %w", cfg.KeyringFile, err)
			}
			if cfg.EncryptKey != "" {
				// As Consul does: the file has the keys an operator rotated in since
				// the first start, which the command line does not know of.
				msg := "the gossip keyring file exists: using it and ignoring the encrypt key (-encrypt)"
				if raw, derr := DecodeKey(cfg.EncryptKey); derr == nil && !hasKey(keys, raw) {
					logger.Warn(msg+", which is not in the keyring", "keyring", cfg.KeyringFile, "keys", len(keys))
				} else {
					logger.Info(msg, "keyring", cfg.KeyringFile, "keys", len(keys))
				}
			}
			return ring, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if cfg.EncryptKey == "" {
		return nil, nil
	}
	key, err := DecodeKey(cfg.EncryptKey)
	if err != nil {
		return nil, err
	}
	ring, err := memberlist.NewKeyring(nil, key)
	if err != nil {
		return nil, err
	}
	if cfg.KeyringFile != "" {
		if err := writeKeyringFile(cfg.KeyringFile, ring.GetKeys()); err != nil {
			return nil, err
		}
	}
	return ring, nil
}

// readKeyringFile reads a keyring in serf's format: a JSON list of base64 keys, the
// primary key first.
func readKeyringFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read gossip keyring: %w", err)
	}
	var encoded []string
	if err := json.Unmarshal(b, &encoded); err != nil {
		return nil, fmt.Errorf("gossip keyring %s: want a JSON list of base64 keys: %w", path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("gossip keyring %s holds no key; remove the file to start again from -encrypt", path)
	}
	keys := make([][]byte, 0, len(encoded))
	for i, k := range encoded {
		raw, err := DecodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("gossip keyring %s, key %d: %w", path, i+1, err)
		}
		keys = append(keys, raw)
	}
	return keys, nil
}

// writeKeyringFile keeps keys, the primary first, in path in serf's format, readable
// by the owner only. serf rewrites the file after each change through KeyManager.
func writeKeyringFile(path string, keys [][]byte) error {
	encoded := make([]string, len(keys))
	for i, k := range keys {
		encoded[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.MarshalIndent(encoded, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create gossip keyring dir: %w", err)
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write gossip keyring: %w", err)
	}
	return nil
}

func hasKey(keys [][]byte, key []byte) bool {
	for _, k := range keys {
		if string(k) == string(key) {
			return true
		}
	}
	return false
}

// Encrypted reports whether this member encrypts its gossip: it was started with an
// encryption key or a keyring file.
func (p *Pool) Encrypted() bool { return p.serf.EncryptionEnabled() }

// ErrNotEncrypted is the error of a keyring operation on a member whose gossip is not
// encrypted: there is no keyring to change.
var ErrNotEncrypted = errors.New("gossip encryption is not enabled: start every member with -encrypt to have a keyring")

// KeyError is the error of a keyring operation refused before it was sent to the
// pool: an invalid key, or a change the local keyring shows to be a mistake.
type KeyError struct{ msg string }

func (e *KeyError) Error() string { return e.msg }

// KeyringResult is the pool's answer to a keyring operation.
type KeyringResult struct {
	// Members is how many alive members the operation was sent to; Responses is how
	// many answered.
	Members, Responses int
	// Keys maps each installed key (base64) to the number of members holding it,
	// and PrimaryKeys each primary key to the number of members using it; both are
	// filled by ListKeys only.
	Keys, PrimaryKeys map[string]int
	// Messages holds what members said besides success, by member name: their
	// errors, or warnings such as a truncated key list.
	Messages map[string]string
}

// ListKeys asks every member for its keys: how many members hold each key, and
// how many use it as their primary key.
func (p *Pool) ListKeys() (*KeyringResult, error) {
	if !p.Encrypted() {
		return nil, ErrNotEncrypted
	}
	return p.keyringResult(p.serf.KeyManager().ListKeysWithOptions(keyOptions))
}

// InstallKey adds key (base64) to every member's keyring, which then decrypts what
// is encrypted with it; each keeps encrypting with its primary key.
func (p *Pool) InstallKey(key string) (*KeyringResult, error) {
	if err := p.checkKeyOp(key); err != nil {
		return nil, err
	}
	return p.keyringResult(p.serf.KeyManager().InstallKeyWithOptions(key, keyOptions))
}

// UseKey makes key, which must be installed, every member's primary key: the one
// they encrypt with.
func (p *Pool) UseKey(key string) (*KeyringResult, error) {
	if err := p.checkKeyOp(key); err != nil {
		return nil, err
	}
	raw, _ := DecodeKey(key)
	if !hasKey(p.keyring.GetKeys(), raw) {
		return nil, &KeyError{"the key is not installed: install it on every member first (-install)"}
	}
	return p.keyringResult(p.serf.KeyManager().UseKeyWithOptions(key, keyOptions))
}

// RemoveKey removes key from every member's keyring. The primary key cannot be
// removed: make another key primary first.
func (p *Pool) RemoveKey(key string) (*KeyringResult, error) {
	if err := p.checkKeyOp(key); err != nil {
		return nil, err
	}
	raw, _ := DecodeKey(key)
	if string(p.keyring.GetPrimaryKey()) == string(raw) {
		return nil, &KeyError{"the key is the primary key, which every member encrypts with: make another key primary first (-use)"}
	}
	return p.keyringResult(p.serf.KeyManager().RemoveKeyWithOptions(key, keyOptions))
}

// keyOptions has each member's answer to a keyring query relayed through another
// member too, so that one lost UDP packet does not make the query fail.
var keyOptions = &serf.KeyRequestOptions{RelayFactor: 1}

func (p *Pool) checkKeyOp(key string) error {
	if !p.Encrypted() {
		return ErrNotEncrypted
	}
	if err := ValidKey(key); err != nil {
		return &KeyError{err.Error()}
	}
	return nil
}

// keyringResult turns serf's answer into a KeyringResult, and its error into one
// that names the members that failed and why.
func (p *Pool) keyringResult(resp *serf.KeyResponse, err error) (*KeyringResult, error) {
	if resp == nil {
		return nil, err
	}
	out := &KeyringResult{Members: resp.NumNodes, Responses: resp.NumResp,
		Keys: resp.Keys, PrimaryKeys: resp.PrimaryKeys, Messages: resp.Messages}
	if err == nil {
		return out, nil
	}
	var parts []string
	switch {
	case resp.NumErr > 0:
		parts = append(parts, fmt.Sprintf("%d of %d members failed", resp.NumErr, resp.NumNodes))
	case resp.NumResp < resp.NumNodes:
		parts = append(parts, fmt.Sprintf("%d of %d members answered in time", resp.NumResp, resp.NumNodes))
	default:
		parts = append(parts, err.Error())
	}
	names := make([]string, 0, len(resp.Messages))
	for name := range resp.Messages {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		parts = append(parts, name+": "+resp.Messages[name])
	}
	return out, errors.New(strings.Join(parts, "; "))
}
