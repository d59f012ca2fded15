package acl

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Token is a token as the replicated state keeps it: never its secret, only the
// secret's SHA-256. A secret is a random UUID (122 random bits), so its hash needs no
// salt or slow KDF to keep it from being guessed back.
type Token struct {
	// AccessorID names the token in listings and in deletions; it grants nothing.
	AccessorID string `json:"accessor_id"`
	// SecretHash is the hex SHA-256 of the secret (HashSecret).
	SecretHash  string `json:"secret_hash"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Policies name the policies whose rules the token holds.
	Policies []string `json:"policies,omitempty"`
	// Management tokens may do everything, ACLs included, whatever their policies.
	Management bool      `json:"management,omitempty"`
	CreateTime time.Time `json:"create_time"`
	// CreateIndex and ModifyIndex are the Raft indexes that inserted and last changed
	// the row.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// DisplayName is the token's name, or its accessor ID when it has none: who a request
// came from, in events and logs.
func (t *Token) DisplayName() string {
	if t.Name != "" {
		return t.Name
	}
	return t.AccessorID
}

// Policy is a policy as the replicated state keeps it: its HCL source, and the rules
// the state machine parsed from it.
type Policy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Source is the policy in HCL, as written.
	Source string `json:"rules"`
	// Rules are parsed from Source when the policy is applied.
	Rules       Rules  `json:"parsed"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// HashSecret returns the hex SHA-256 of a token's secret: the form in which the state
// stores and looks up the secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a token with a new accessor ID and a new secret, and the secret,
// which only the caller ever sees: the token keeps its hash.
func NewToken() (tok *Token, secret string) {
	secret = uuid.NewString()
	return &Token{AccessorID: uuid.NewString(), SecretHash: HashSecret(secret)}, secret
}

// Bounds of names and descriptions.
const (
	MaxNameLen        = 128
	MaxDescriptionLen = 1024
	MaxTokenPolicies  = 64
)

// ValidPolicyName accepts a policy name: 1 to 128 letters, digits, '-', '_' and '.',
// so that it is safe in a URL path.
func ValidPolicyName(name string) error {
	if name == "" {
		return errors.New("a policy name is required")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("policy name is longer than %d bytes", MaxNameLen)
	}
	for _, r := range name {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("policy name %q may hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// validText accepts a token's name or a description: valid UTF-8 of at most max bytes,
// without control characters, so it reads safely in events, tables and logs.
func validText(field, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%s must be valid UTF-8 of at most %d bytes", field, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s must not hold control characters", field)
		}
	}
	return nil
}

// ValidDescription accepts a description of a token or a policy.
func ValidDescription(s string) error { return validText("description", s, MaxDescriptionLen) }

// Validate checks a token before it is stored: an accessor ID and a secret hash of the
// right form, a printable name, and either management or at least one policy.
func (t *Token) Validate() error {
	if _, err := uuid.Parse(t.AccessorID); err != nil {
		return fmt.Errorf("accessor ID %q is not a UUID", t.AccessorID)
	}
	if b, err := hex.DecodeString(t.SecretHash); err != nil || len(b) != sha256.Size {
		return errors.New("the secret hash must be a hex SHA-256")
	}
	if err := validText("token name", t.Name, MaxNameLen); err != nil {
		return err
	}
	if err := ValidDescription(t.Description); err != nil {
		return err
	}
	switch {
	case t.Management && len(t.Policies) > 0:
		return errors.New("a management token takes no policies: it may do everything")
	case !t.Management && len(t.Policies) == 0:
		return errors.New("a token needs at least one policy, or to be a management token")
	case len(t.Policies) > MaxTokenPolicies:
		return fmt.Errorf("a token holds at most %d policies", MaxTokenPolicies)
	}
	seen := map[string]bool{}
	for _, p := range t.Policies {
		if err := ValidPolicyName(p); err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("policy %s is given twice", p)
		}
		seen[p] = true
	}
	return nil
}
