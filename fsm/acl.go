package fsm

import (
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"

	"github.com/sutragrid/grid/acl"
)

// ACLs in the replicated state: the policies and tokens tables, and the bootstrap's
// index. Tokens hold the SHA-256 of their secret, never the secret: the server that
// takes a request makes the secret, hands it to the caller, and proposes its hash.
// The commands derive no events.

// ACL commands.
const (
	// CmdACLBootstrap creates the first management token, once (see ACLBootstrap).
	CmdACLBootstrap CommandType = 15
	// CmdACLPolicyUpsert creates or replaces a policy.
	CmdACLPolicyUpsert CommandType = 16
	// CmdACLPolicyDelete deletes a policy.
	CmdACLPolicyDelete CommandType = 17
	// CmdACLTokenCreate creates a token.
	CmdACLTokenCreate CommandType = 18
	// CmdACLTokenDelete deletes a token: every server refuses it once it applies this.
	CmdACLTokenDelete CommandType = 19
)

const (
	tableACLPolicies = "acl_policies"
	tableACLTokens   = "acl_tokens"
	// tableACLMeta holds one row, the bootstrap's index.
	tableACLMeta = "acl_meta"
	metaACL      = "acl"
)

// ACLMeta is the ACL system's replicated counters.
type ACLMeta struct {
	ID string `json:"id"`
	// BootstrapIndex is the Raft index of the last bootstrap (0: never bootstrapped):
	// the reset index that a reset file must hold for a new bootstrap.
	BootstrapIndex uint64 `json:"bootstrap_index"`
}

// The ACL tables; snapshots taken before they existed restore with none.
var (
	aclPoliciesTable = table{
		schema: &memdb.TableSchema{
			Name: tableACLPolicies,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		decode: decodeRow[acl.Policy],
	}
	aclTokensTable = table{
		schema: &memdb.TableSchema{
			Name: tableACLTokens,
			Indexes: map[string]*memdb.IndexSchema{
				"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
				"secret": {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
			},
		},
		decode: decodeRow[acl.Token],
	}
	aclMetaTable = table{
		schema: &memdb.TableSchema{
			Name: tableACLMeta,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			},
		},
		decode: decodeRow[ACLMeta],
	}
)

// ACLBootstrap creates the first management token. It succeeds once: afterwards only
// with ResetIndex equal to the index of the last bootstrap, which the leader sets
// from the reset file an operator wrote into its data directory (the state machine
// reads no file; the leader checks it, for a forwarded command too).
type ACLBootstrap struct {
	Token      acl.Token `json:"token"`
	ResetIndex uint64    `json:"reset_index,omitempty"`
}

func (*ACLBootstrap) Type() CommandType { return CmdACLBootstrap }
func (c *ACLBootstrap) Validate() error {
	if !c.Token.Management {
		return fmt.Errorf("the bootstrap token must be a management token")
	}
	return c.Token.Validate()
}

// ACLPolicyUpsert creates or replaces the policy called Name.
type ACLPolicyUpsert struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Rules is the policy in HCL; the state machine parses it.
	Rules string `json:"rules"`
}

func (*ACLPolicyUpsert) Type() CommandType { return CmdACLPolicyUpsert }
func (c *ACLPolicyUpsert) Validate() error {
	if err := acl.ValidPolicyName(c.Name); err != nil {
		return err
	}
	if err := acl.ValidDescription(c.Description); err != nil {
		return err
	}
	if _, err := acl.ParsePolicy(c.Rules); err != nil {
		return fmt.Errorf("policy %s: %w", c.Name, err)
	}
	return nil
}

// ACLPolicyDelete deletes a policy. Tokens that name it keep the name, which then
// grants nothing.
type ACLPolicyDelete struct {
	Name string `json:"name"`
}

func (*ACLPolicyDelete) Type() CommandType { return CmdACLPolicyDelete }
func (c *ACLPolicyDelete) Validate() error { return acl.ValidPolicyName(c.Name) }

// ACLTokenCreate creates a token; its policies must exist.
type ACLTokenCreate struct {
	Token acl.Token `json:"token"`
}

func (*ACLTokenCreate) Type() CommandType { return CmdACLTokenCreate }
func (c *ACLTokenCreate) Validate() error { return c.Token.Validate() }

// ACLTokenDelete deletes a token.
type ACLTokenDelete struct {
	AccessorID string `json:"accessor_id"`
}

func (*ACLTokenDelete) Type() CommandType { return CmdACLTokenDelete }
func (c *ACLTokenDelete) Validate() error {
	if c.AccessorID == "" || len(c.AccessorID) > acl.MaxNameLen {
		return fmt.Errorf("an accessor ID is required")
	}
	return nil
}

// newACLCommand returns a pointer to a zero ACL command of type t, or nil.
func newACLCommand(t CommandType) Command {
	switch t {
	case CmdACLBootstrap:
		return &ACLBootstrap{}
	case CmdACLPolicyUpsert:
		return &ACLPolicyUpsert{}
	case CmdACLPolicyDelete:
		return &ACLPolicyDelete{}
	case CmdACLTokenCreate:
		return &ACLTokenCreate{}
	case CmdACLTokenDelete:
		return &ACLTokenDelete{}
	}
	return nil
}

// applyACL applies an ACL command; ok is false for a command of another kind.
func (x *applyCtx) applyACL(cmd Command) (ok bool, err error) {
	switch c := cmd.(type) {
	case *ACLBootstrap:
		return true, x.aclBootstrap(c)
	case *ACLPolicyUpsert:
		return true, x.aclPolicyUpsert(c)
	case *ACLPolicyDelete:
		raw, err := x.txn.First(tableACLPolicies, "id", c.Name)
		if err != nil {
			return true, err
		}
		if raw == nil {
			return true, fmt.Errorf("ACL policy %s: %w", c.Name, ErrNotFound)
		}
		return true, x.txn.Delete(tableACLPolicies, raw)
	case *ACLTokenCreate:
		return true, x.aclTokenInsert(c.Token)
	case *ACLTokenDelete:
		raw, err := x.txn.First(tableACLTokens, "id", c.AccessorID)
		if err != nil {
			return true, err
		}
		if raw == nil {
			return true, fmt.Errorf("ACL token %s: %w", c.AccessorID, ErrNotFound)
		}
		return true, x.txn.Delete(tableACLTokens, raw)
	}
	return false, nil
}

func (x *applyCtx) aclBootstrap(c *ACLBootstrap) error {
	meta, err := aclMeta(x.txn)
	if err != nil {
		return err
	}
	if meta.BootstrapIndex != 0 && c.ResetIndex != meta.BootstrapIndex {
		return rejected("ACL bootstrap already done (reset index: %d)", meta.BootstrapIndex)
	}
	if err := x.aclTokenInsert(c.Token); err != nil {
		return err
	}
	meta.BootstrapIndex = x.index
	return x.txn.Insert(tableACLMeta, &meta)
}

func (x *applyCtx) aclPolicyUpsert(c *ACLPolicyUpsert) error {
	rules, err := acl.ParsePolicy(c.Rules)
	if err != nil {
		return fmt.Errorf("%w: policy %s: %v", ErrInvalidCommand, c.Name, err)
	}
	p := &acl.Policy{Name: c.Name, Description: c.Description, Source: c.Rules, Rules: *rules,
		CreateIndex: x.index, ModifyIndex: x.index}
	raw, err := x.txn.First(tableACLPolicies, "id", c.Name)
	if err != nil {
		return err
	}
	if old, ok := raw.(*acl.Policy); ok {
		p.CreateIndex = old.CreateIndex
	}
	return x.txn.Insert(tableACLPolicies, p)
}

// aclTokenInsert stores a new token, stamped with the command's time and index.
func (x *applyCtx) aclTokenInsert(tok acl.Token) error {
	if raw, err := x.txn.First(tableACLTokens, "id", tok.AccessorID); err != nil {
		return err
	} else if raw != nil {
		return rejected("ACL token %s already exists", tok.AccessorID)
	}
	if raw, err := x.txn.First(tableACLTokens, "secret", tok.SecretHash); err != nil {
		return err
	} else if raw != nil {
		return rejected("an ACL token with this secret already exists")
	}
	for _, name := range tok.Policies {
		raw, err := x.txn.First(tableACLPolicies, "id", name)
		if err != nil {
			return err
		}
		if raw == nil {
			return rejected("ACL policy %q does not exist", name)
		}
	}
	tok.Policies = append([]string(nil), tok.Policies...)
	tok.CreateTime, tok.CreateIndex, tok.ModifyIndex = x.env.Time, x.index, x.index
	return x.txn.Insert(tableACLTokens, &tok)
}

func aclMeta(txn *memdb.Txn) (ACLMeta, error) {
	raw, err := txn.First(tableACLMeta, "id", metaACL)
	if err != nil {
		return ACLMeta{}, err
	}
	if m, ok := raw.(*ACLMeta); ok {
		return *m, nil
	}
	return ACLMeta{ID: metaACL}, nil
}

// ACLMeta returns the ACL system's counters.
func (s *State) ACLMeta() (ACLMeta, error) { return aclMeta(s.txn) }

// ACLTokenBySecretHash returns the token whose secret hashes to hash, or nil.
func (s *State) ACLTokenBySecretHash(hash string) (*acl.Token, error) {
	raw, err := s.txn.First(tableACLTokens, "secret", hash)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*acl.Token), nil
}

// ACLToken returns the token with accessor ID id, or nil.
func (s *State) ACLToken(id string) (*acl.Token, error) {
	raw, err := s.txn.First(tableACLTokens, "id", id)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*acl.Token), nil
}

// ACLTokens returns every token, ordered by accessor ID.
func (s *State) ACLTokens() ([]*acl.Token, error) {
	it, err := s.txn.Get(tableACLTokens, "id")
	if err != nil {
		return nil, fmt.Errorf("list ACL tokens: %w", err)
	}
	var out []*acl.Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*acl.Token))
	}
	return out, nil
}

// ACLPolicy returns the policy called name, or nil.
func (s *State) ACLPolicy(name string) (*acl.Policy, error) {
	raw, err := s.txn.First(tableACLPolicies, "id", name)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*acl.Policy), nil
}

// ACLPolicies returns every policy, ordered by name.
func (s *State) ACLPolicies() ([]*acl.Policy, error) {
	it, err := s.txn.Get(tableACLPolicies, "id")
	if err != nil {
		return nil, fmt.Errorf("list ACL policies: %w", err)
	}
	var out []*acl.Policy
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*acl.Policy))
	}
	return out, nil
}

var _ acl.State = (*State)(nil)

// validRequester accepts the RequestedBy of a command: a token's name or accessor ID.
func validRequester(s string) error {
	if len(s) > acl.MaxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("requested_by must be valid UTF-8 of at most %d bytes", acl.MaxNameLen)
	}
	return nil
}
