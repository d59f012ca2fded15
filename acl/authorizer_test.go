package acl

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	gridpb "github.com/sutragrid/grid/proto"
)

// memState is a State in memory.
type memState struct {
	mu       sync.Mutex
	tokens   map[string]*Token
	policies map[string]*Policy
}

func newMemState() *memState {
	return &memState{tokens: map[string]*Token{}, policies: map[string]*Policy{}}
}

func (m *memState) ACLTokenBySecretHash(hash string) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[hash], nil
}

func (m *memState) ACLPolicy(name string) (*Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policies[name], nil
}

func (m *memState) policy(t testing.TB, name, src string) {
	t.Helper()
	rules, err := ParsePolicy(src)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policies[name] = &Policy{Name: name, Source: src, Rules: *rules}
}

// token adds a token and returns its secret.
func (m *memState) token(name string, management bool, policies ...string) string {
	tok, secret := NewToken()
	tok.Name, tok.Management, tok.Policies = name, management, policies
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[tok.SecretHash] = tok
	return secret
}

func (m *memState) revoke(secret string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, HashSecret(secret))
}

func TestAuthorizer(t *testing.T) {
	st := newMemState()
	st.policy(t, "reader", `agent { policy = "read" }
node { policy = "read" }
event { policy = "read" }
operator { policy = "read" }`)
	st.policy(t, "nodes", `node { policy = "write" }`)
	st.policy(t, "no-nodes", `node { policy = "deny" }`)
	st.policy(t, "agent", `agent { policy = "write" }`)
	a := NewAuthorizer(func() State { return st })

	root := st.token("root", true)
	reader := st.token("ci-reader", false, "reader")
	writer := st.token("deployer", false, "reader", "nodes")
	denied := st.token("locked", false, "nodes", "no-nodes")
	agent := st.token("agent-001", false, "agent")
	dangling := st.token("dangling", false, "gone")

	for _, tc := range []struct {
		endpoint, token string
		ok              bool
		errHas          []string
	}{
		{"GET /v1/nodes", "", false, []string{"GET /v1/nodes needs node read", "X-Grid-Token"}},
		{"GET /v1/nodes", "forged", false, []string{"token not found"}},
		{"GET /v1/nodes", reader, true, nil},
		{"POST /v1/nodes", reader, false, []string{"POST /v1/nodes needs node write", `"ci-reader" has node read`}},
		{"POST /v1/nodes", writer, true, nil},
		{"DELETE /v1/node/{id}", writer, true, nil},
		{"POST /v1/nodes", denied, false, []string{"node deny"}},
		{"GET /v1/nodes", dangling, false, []string{"no node rule"}},
		{"POST /v1/ask", reader, true, nil},
		{"GET /v1/status", writer, true, nil},
		{"DELETE /v1/operator/raft/peer", reader, false, []string{"operator write"}},
		{"GET /v1/operator/snapshot", reader, false, []string{"management token"}},
		{"GET /v1/operator/snapshot", root, true, nil},
		{"PUT /v1/acl/policy/{name}", writer, false, []string{"management token"}},
		{"PUT /v1/acl/policy/{name}", root, true, nil},
		{"GET /v1/acl/token/self", agent, true, nil},
		{"GET /v1/acl/token/self", "", false, nil},
		{"GET /ui/", "", true, nil},
		{"POST /v1/acl/bootstrap", "", true, nil},
		{gridpb.Servers_Heartbeat_FullMethodName, agent, true, nil},
		{gridpb.Servers_Heartbeat_FullMethodName, reader, false, []string{"agent write", "agent read"}},
		{gridpb.Servers_Register_FullMethodName, "", false, nil},
		{ApplyEndpoint("spawn_node"), writer, true, nil},
		{ApplyEndpoint("spawn_node"), agent, false, []string{"node write"}},
		{ApplyEndpoint("events_shipped"), root, false, []string{"leader itself"}},
		{ApplyEndpoint("acl_token_create"), writer, false, []string{"management"}},
		{"GET /v1/unknown", root, false, []string{"no ACL rule"}},
	} {
		err := a.Authorize(context.Background(), auth.Access{Endpoint: tc.endpoint, Token: tc.token})
		if (err == nil) != tc.ok {
			t.Errorf("%s with %q: %v, want allowed=%v", tc.endpoint, tc.token, err, tc.ok)
			continue
		}
		if err == nil {
			continue
		}
		var de *DeniedError
		if !errors.As(err, &de) || status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v is not a PermissionDenied refusal", tc.endpoint, err)
		}
		for _, w := range tc.errHas {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s with %q: error %q lacks %q", tc.endpoint, tc.token, err, w)
			}
		}
	}

	// A deleted token is refused at once: nothing is cached.
	if err := a.Authorize(context.Background(), auth.Access{Endpoint: "GET /v1/nodes", Token: reader}); err != nil {
		t.Fatal(err)
	}
	st.revoke(reader)
	if err := a.Authorize(context.Background(), auth.Access{Endpoint: "GET /v1/nodes", Token: reader}); err == nil {
		t.Fatal("a revoked token is still allowed")
	}
	if tok, err := a.Resolve(writer); err != nil || tok.Name != "deployer" {
		t.Fatalf("Resolve: %v %v", tok, err)
	}
}

// BenchmarkAuthorize is the ACL check of one request: hashing the secret, looking up
// the token and its policies.
func BenchmarkAuthorize(b *testing.B) {
	st := newMemState()
	st.policy(b, "reader", `node { policy = "read" }`)
	st.policy(b, "writer", `node { policy = "write" }`)
	secret := st.token("bench", false, "reader", "writer")
	a := NewAuthorizer(func() State { return st })
	acc := auth.Access{Endpoint: "POST /v1/nodes", Token: secret}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authorize(ctx, acc); err != nil {
			b.Fatal(err)
		}
	}
}
