package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// Every HTTP route and gRPC method of a server, and every command the internal
// Apply can carry, has its rule in acl's one table: a new route without one would be
// refused to everyone once ACLs are on.
func TestEveryEndpointHasAnACLRule(t *testing.T) {
	s := startServer(t, testConfig(t, "s1", t.TempDir(), 1))
	if len(s.routes) < 30 {
		t.Fatalf("only %d routes recorded", len(s.routes))
	}
	for _, pattern := range s.routes {
		if _, ok := acl.NeedOf(pattern); !ok {
			t.Errorf("HTTP route %q has no ACL rule in acl/endpoints.go", pattern)
		}
	}
	methods := 0
	for svc, info := range s.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			methods++
			if name := "/" + svc + "/" + m.Name; !hasRule(name) {
				t.Errorf("gRPC method %s has no ACL rule in acl/endpoints.go", name)
			}
		}
	}
	if methods < 7 {
		t.Fatalf("only %d gRPC methods found", methods)
	}
	for typ := 1; typ < 256; typ++ {
		name := fsm.CommandType(typ).String()
		if strings.HasPrefix(name, "command(") {
			continue
		}
		if !hasRule(acl.ApplyEndpoint(name)) {
			t.Errorf("command %s has no ACL rule for the internal Apply in acl/endpoints.go", name)
		}
	}
}

func hasRule(endpoint string) bool {
	_, ok := acl.NeedOf(endpoint)
	return ok
}

// aclCall sends a request with token (none when "") and returns the status and body.
func aclCall(t *testing.T, s *Server, method, path, token, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	header := map[string]string{}
	if token != "" {
		header[auth.TokenHeader] = token
	}
	resp, out := do(t, method, "http://"+s.HTTPAddr()+path, r, header)
	return resp.StatusCode, out
}

// mustCall is aclCall that fails the test unless the status is want, and decodes the
// answer into out (when not nil).
func mustCall(t *testing.T, s *Server, method, path, token, body string, want int, out any) {
	t.Helper()
	code, resp := aclCall(t, s, method, path, token, body)
	if code != want {
		t.Fatalf("%s %s via %s: %d %s, want %d", method, path, s.Name(), code, resp, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(resp), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, resp)
		}
	}
}

// forbidden checks that a request is refused with 403 and an error that says why.
func forbidden(t *testing.T, s *Server, method, path, token, body string, why ...string) {
	t.Helper()
	code, resp := aclCall(t, s, method, path, token, body)
	var e struct{ Error string }
	if code != http.StatusForbidden || json.Unmarshal([]byte(resp), &e) != nil {
		t.Fatalf("%s %s with %q via %s: %d %s, want 403", method, path, token, s.Name(), code, resp)
	}
	for _, w := range append(why, "permission denied") {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s %s with %q: error %q lacks %q", method, path, token, e.Error, w)
		}
	}
}

// aclCluster is three servers with ACLs on, bootstrapped through a follower, with an
// agent registered and these tokens: the management token, a reader (agent, node,
// event and operator read), a deployer (the reader's rules and node write), an agent
// token (agent write).
type aclCluster struct {
	*testCluster
	leader, follower                *Server
	root, reader, deployer, agentTk string
}

func newACLCluster(t *testing.T) *aclCluster {
	t.Helper()
	c := &aclCluster{testCluster: newClusterWith(t, 3, func(cfg *Config) {
		cfg.ACLEnabled = true
		// The registered agent never heartbeats: keep it healthy, so that the history
		// changes only by the tests' requests.
		cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Hour, time.Hour
	})}
	c.leader = c.testCluster.leader()
	c.follower = followers(c.leader, c.servers)[0]
	var boot api.ACLToken
	mustCall(t, c.follower, "POST", "/v1/acl/bootstrap", "", "", http.StatusOK, &boot)
	if !boot.Management || boot.SecretID == "" || boot.Name != "bootstrap" {
		t.Fatalf("bootstrap token %+v", boot)
	}
	c.root = boot.SecretID
	for name, rules := range map[string]string{
		"reader":  "agent { policy = \"read\" }\nnode { policy = \"read\" }\nevent { policy = \"read\" }\noperator { policy = \"read\" }",
		"deploy":  `node { policy = "write" }`,
		"agents":  `agent { policy = "write" }`,
		"no-logs": `event { policy = "deny" }`,
	} {
		body, _ := json.Marshal(api.ACLPolicyRequest{Rules: rules})
		mustCall(t, c.follower, "PUT", "/v1/acl/policy/"+name, c.root, string(body), http.StatusOK, nil)
	}
	token := func(name string, policies ...string) string {
		body, _ := json.Marshal(api.ACLTokenRequest{Name: name, Policies: policies})
		var tok api.ACLToken
		mustCall(t, c.follower, "POST", "/v1/acl/token", c.root, string(body), http.StatusCreated, &tok)
		if tok.SecretID == "" || tok.AccessorID == "" {
			t.Fatalf("token %+v", tok)
		}
		return tok.SecretID
	}
	c.reader = token("ci-reader", "reader")
	c.deployer = token("deployer", "reader", "deploy")
	c.agentTk = token("agent-a1", "agents")
	if _, err := c.leader.Apply(context.Background(), &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, c.servers, "a1", true)
	return c
}

// history is what a refused request must leave alone: the nodes, the tokens and the
// events.
func history(t *testing.T, s *Server) string {
	t.Helper()
	st := s.State()
	nodes, _ := st.Nodes("")
	tokens, _ := st.ACLTokens()
	meta, _ := st.EventMeta()
	acm, _ := st.ACLMeta()
	return fmt.Sprintf("%d nodes, %d tokens, last seq %d, bootstrap %d", len(nodes), len(tokens), meta.LastSeq, acm.BootstrapIndex)
}

func TestACLs(t *testing.T) {
	c := newACLCluster(t)
	leader, follower := c.leader, c.follower
	spawn := `{"agent":"a1","port":5001}`

	t.Run("refused: no token, a forged one, a read token writing", func(t *testing.T) {
		before := history(t, leader)
		for _, s := range []*Server{leader, follower} {
			forbidden(t, s, "GET", "/v1/nodes", "", "", "needs node read", auth.TokenHeader)
			forbidden(t, s, "POST", "/v1/nodes", "", spawn, "needs node write")
			forbidden(t, s, "POST", "/v1/nodes", "8a1d2c5e-0000-4000-8000-000000000000", spawn, "token not found")
			forbidden(t, s, "POST", "/v1/nodes", c.reader, spawn, "needs node write", `"ci-reader" has node read`)
			forbidden(t, s, "GET", "/v1/acl/tokens", c.deployer, "", "management token")
			forbidden(t, s, "GET", "/v1/operator/snapshot", c.deployer, "", "management token")
			forbidden(t, s, "DELETE", "/v1/operator/raft/peer?id=x", c.reader, "", "operator write")
			forbidden(t, s, "PUT", "/v1/operator/autopilot/configuration", c.reader, `{"last_contact_threshold":"1s"}`, "operator write")
			forbidden(t, s, "GET", "/v1/operator/autopilot/health", "", "", "operator read")
			mustCall(t, s, "GET", "/v1/nodes", c.reader, "", http.StatusOK, nil)
		}
		if after := history(t, leader); after != before {
			t.Fatalf("refused requests changed the state: %s, then %s", before, after)
		}
	})

	t.Run("public: the UI, the leader, the event types", func(t *testing.T) {
		for _, p := range []string{"/ui/", "/v1/status/leader", "/v1/events/types"} {
			mustCall(t, follower, "GET", p, "", "", http.StatusOK, nil)
		}
	})

	t.Run("agents call with an agent token", func(t *testing.T) {
		conn, err := leader.conns.Get(follower.RPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		for token, want := range map[string]codes.Code{
			c.agentTk: codes.OK, c.reader: codes.PermissionDenied, "": codes.PermissionDenied, "forged": codes.PermissionDenied,
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, token)
			}
			_, err := gridpb.NewServersClient(conn).Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "a1"})
			cancel()
			if status.Code(err) != want {
				t.Errorf("heartbeat with %q: %v, want %v", token, err, want)
			}
		}
	})

	t.Run("a forged internal Apply is refused and changes nothing", func(t *testing.T) {
		before := history(t, leader)
		boot, _ := leader.State().ACLMeta()
		newTok, _ := acl.NewToken()
		newTok.Management = true
		cmds := []fsm.Command{
			&fsm.SpawnNode{ID: "forged-1", Agent: "a1", Port: 5009},
			&fsm.ACLTokenCreate{Token: *newTok},
			&fsm.ACLBootstrap{Token: *newTok, ResetIndex: boot.BootstrapIndex},
			&fsm.EventsShipped{UpTo: 1},
		}
		for _, s := range []*Server{leader, follower} {
			conn, err := follower.conns.Get(s.RPCAddr())
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range cmds {
				buf, err := fsm.Encode(cmd)
				if err != nil {
					t.Fatal(err)
				}
				for _, token := range []string{"", "forged", c.reader} {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if token != "" {
						ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, token)
					}
					_, err := gridpb.NewInternalClient(conn).Apply(ctx, &gridpb.ApplyRequest{Command: buf})
					cancel()
					if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "permission denied") {
						t.Errorf("forged %s via %s with %q: %v, want PermissionDenied", cmd.Type(), s.Name(), token, err)
					}
				}
			}
		}
		// A forwarded HTTP request is authorized again by the leader: the follower's
		// word that it checked the token is not taken.
		conn, err := follower.conns.Get(leader.RPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		code, body := forwardRaw(t, conn, "POST", "/v1/nodes", spawn)
		if code != http.StatusForbidden || !strings.Contains(body, "needs node write") {
			t.Errorf("a forged forwarded HTTP request: %d %s", code, body)
		}
		if after := history(t, leader); after != before {
			t.Fatalf("forged commands changed the state: %s, then %s", before, after)
		}
	})

	var nodeID string
	t.Run("requested_by: who spawned and who stopped", func(t *testing.T) {
		var n api.Node
		mustCall(t, follower, "POST", "/v1/nodes", c.deployer, spawn, http.StatusCreated, &n)
		if n.RequestedBy != "deployer" {
			t.Fatalf("spawned node: requested_by %q", n.RequestedBy)
		}
		nodeID = n.ID
		mustCall(t, follower, "DELETE", "/v1/node/"+nodeID, c.root, "", http.StatusOK, &n)
		if n.RequestedBy != "bootstrap" {
			t.Fatalf("stopped node: requested_by %q", n.RequestedBy)
		}
		var list api.EventList
		mustCall(t, follower, "GET", "/v1/events?node="+nodeID, c.reader, "", http.StatusOK, &list)
		by := map[events.Type]string{}
		for _, e := range list.Events {
			by[e.Type] = e.RequestedBy
		}
		if by[events.SpawnRequested] != "deployer" || by[events.StopRequested] != "bootstrap" {
			t.Fatalf("requested_by in the events: %v", by)
		}
	})

	t.Run("questions need event read, and their queries are checked again", func(t *testing.T) {
		body, _ := json.Marshal(api.AskRequest{Question: "what happened in the last hour?"})
		mustCall(t, follower, "POST", "/v1/ask", c.reader, string(body), http.StatusOK, nil)
		forbidden(t, follower, "POST", "/v1/ask", c.agentTk, string(body), "event read")
	})

	t.Run("token self", func(t *testing.T) {
		var tok api.ACLToken
		mustCall(t, follower, "GET", "/v1/acl/token/self", c.reader, "", http.StatusOK, &tok)
		if tok.Name != "ci-reader" || tok.SecretID != "" || len(tok.Policies) != 1 {
			t.Fatalf("self: %+v", tok)
		}
		forbidden(t, follower, "GET", "/v1/acl/token/self", "", "", "needs a token")
	})

	t.Run("a forwarded Apply with a token that allows it is applied, as its token's", func(t *testing.T) {
		conn, err := follower.conns.Get(leader.RPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		buf, _ := fsm.Encode(&fsm.SpawnNode{ID: "fwd-1", Agent: "a1", Port: 5010, RequestedBy: "somebody else"})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, c.deployer)
		if _, err := gridpb.NewInternalClient(conn).Apply(ctx, &gridpb.ApplyRequest{Command: buf}); err != nil {
			t.Fatal(err)
		}
		if n, _ := leader.State().Node("fwd-1"); n == nil || n.RequestedBy != "deployer" {
			t.Fatalf("forwarded spawn: %+v", n)
		}
	})

	t.Run("a deleted token is refused on a follower within 1 s", func(t *testing.T) {
		body, _ := json.Marshal(api.ACLTokenRequest{Name: "short-lived", Policies: []string{"reader"}})
		var tok api.ACLToken
		mustCall(t, leader, "POST", "/v1/acl/token", c.root, string(body), http.StatusCreated, &tok)
		gridtest.WaitFor(t, 5*time.Second, "the new token on the follower", func() error {
			if code, resp := aclCall(t, follower, "GET", "/v1/nodes?stale", tok.SecretID, ""); code != http.StatusOK {
				return fmt.Errorf("%d %s", code, resp)
			}
			return nil
		})
		mustCall(t, leader, "DELETE", "/v1/acl/token/"+tok.AccessorID, c.root, "", http.StatusOK, nil)
		deleted := time.Now()
		gridtest.WaitFor(t, time.Second, "the deleted token refused on the follower", func() error {
			if code, _ := aclCall(t, follower, "GET", "/v1/nodes?stale", tok.SecretID, ""); code != http.StatusForbidden {
				return fmt.Errorf("still %d", code)
			}
			return nil
		})
		t.Logf("refused on the follower %s after the deletion returned", time.Since(deleted))
		forbidden(t, follower, "GET", "/v1/nodes", tok.SecretID, "", "token not found")
		mustCall(t, follower, "GET", "/v1/acl/token/"+tok.AccessorID, c.root, "", http.StatusNotFound, nil)
	})

	t.Run("listings never show a secret", func(t *testing.T) {
		code, body := aclCall(t, follower, "GET", "/v1/acl/tokens", c.root, "")
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		for _, secret := range []string{c.root, c.reader, c.deployer, acl.HashSecret(c.root)} {
			if strings.Contains(body, secret) {
				t.Fatalf("the token list shows a secret or its hash: %s", body)
			}
		}
		var policies []api.ACLPolicy
		mustCall(t, follower, "GET", "/v1/acl/policies", c.root, "", http.StatusOK, &policies)
		if len(policies) != 4 {
			t.Fatalf("policies %+v", policies)
		}
	})
}

// forwardRaw sends an HTTP request through the internal ForwardHTTP call, as a
// follower would, without any token, and returns the answer's status and body.
func forwardRaw(t *testing.T, conn grpc.ClientConnInterface, method, target, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
	stream, err := gridpb.NewInternalClient(conn).ForwardHTTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := &gridpb.HTTPRequestFrame{Method: method, Target: target,
		Headers: []*gridpb.HTTPHeader{{Name: "Content-Type", Values: []string{"application/json"}}}}
	// A send fails with io.EOF when the leader has answered already (a refusal does
	// not wait for the body): the answer is read below, as the forwarder reads it.
	for _, frame := range []*gridpb.HTTPRequestFrame{head, {Body: []byte(body)}} {
		if err := stream.Send(frame); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	_ = stream.CloseSend()
	var (
		code int
		out  strings.Builder
	)
	for {
		frame, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return code, out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		if frame.GetStatus() != 0 {
			code = int(frame.GetStatus())
		}
		out.Write(frame.GetBody())
	}
}

// The bootstrap works once; again only when the leader's reset file holds the reset
// index that the refusal reported.
func TestACLBootstrapReset(t *testing.T) {
	cfg := testConfig(t, "s1", t.TempDir(), 1)
	cfg.ACLEnabled = true
	s := startServer(t, cfg)
	newCluster := &testCluster{t: t, servers: []*Server{s}}
	newCluster.leader()
	var first api.ACLToken
	mustCall(t, s, "POST", "/v1/acl/bootstrap", "", "", http.StatusOK, &first)
	code, body := aclCall(t, s, "POST", "/v1/acl/bootstrap", "", "")
	if code != http.StatusBadRequest || !strings.Contains(body, "ACL bootstrap already done (reset index: ") {
		t.Fatalf("second bootstrap: %d %s", code, body)
	}
	meta, _ := s.State().ACLMeta()
	reset := filepath.Join(cfg.DataDir, aclResetFile)
	// A wrong index does not do.
	if err := os.WriteFile(reset, []byte("12345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := aclCall(t, s, "POST", "/v1/acl/bootstrap", "", ""); code != http.StatusBadRequest {
		t.Fatalf("bootstrap with a wrong reset index: %d %s", code, body)
	}
	if err := os.WriteFile(reset, []byte(fmt.Sprintf("%d\n", meta.BootstrapIndex)), 0o600); err != nil {
		t.Fatal(err)
	}
	var second api.ACLToken
	mustCall(t, s, "POST", "/v1/acl/bootstrap", "", "", http.StatusOK, &second)
	if second.SecretID == first.SecretID || !second.Management {
		t.Fatalf("second bootstrap token %+v", second)
	}
	// The file's index is spent: the next bootstrap needs the new one.
	if code, body := aclCall(t, s, "POST", "/v1/acl/bootstrap", "", ""); code != http.StatusBadRequest {
		t.Fatalf("bootstrap with a spent reset index: %d %s", code, body)
	}
	// Both management tokens work.
	for _, tok := range []string{first.SecretID, second.SecretID} {
		mustCall(t, s, "GET", "/v1/acl/tokens", tok, "", http.StatusOK, nil)
	}
}

// Without -acl-enabled everything is allowed, as before, and spawns record nobody;
// the ACL endpoints work all the same, so that the tokens exist before ACLs are
// turned on.
func TestACLsDisabled(t *testing.T) {
	s := startServer(t, testConfig(t, "s1", t.TempDir(), 1))
	(&testCluster{t: t, servers: []*Server{s}}).leader()
	var boot api.ACLToken
	mustCall(t, s, "POST", "/v1/acl/bootstrap", "", "", http.StatusOK, &boot)
	mustCall(t, s, "PUT", "/v1/acl/policy/agents", "", `{"rules":"agent { policy = \"write\" }"}`, http.StatusOK, nil)
	mustCall(t, s, "POST", "/v1/acl/token", "", `{"name":"agent-001","policies":["agents"]}`, http.StatusCreated, nil)
	mustCall(t, s, "GET", "/v1/acl/token/self", boot.SecretID, "", http.StatusOK, nil)
	if _, err := s.Apply(context.Background(), &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr, MaxNodes: 4, StorageRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	var n api.Node
	mustCall(t, s, "POST", "/v1/nodes", boot.SecretID, `{"agent":"a1","port":5001}`, http.StatusCreated, &n)
	if n.RequestedBy != "" {
		t.Fatalf("requested_by %q without ACLs", n.RequestedBy)
	}
	mustCall(t, s, "GET", "/v1/nodes", "", "", http.StatusOK, nil)
}
