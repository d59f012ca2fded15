package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// tokenLog is an Authorizer that allows everything and remembers the tokens it saw,
// by endpoint.
type tokenLog struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (l *tokenLog) Authorize(_ context.Context, a auth.Access) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string][]string{}
	}
	l.seen[a.Endpoint] = append(l.seen[a.Endpoint], a.Token)
	return nil
}

func (l *tokenLog) saw(endpoint, token string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.seen[endpoint] {
		if t == token {
			return true
		}
	}
	return false
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Every server gives the same answer: a follower forwards what the leader must
// answer over the internal gRPC service, with the caller's token.
func TestFollowersForwardToTheLeader(t *testing.T) {
	logs := map[string]*tokenLog{}
	var mu sync.Mutex
	c := newClusterWith(t, 3, func(cfg *Config) {
		l := &tokenLog{}
		mu.Lock()
		logs[cfg.NodeName] = l
		mu.Unlock()
		cfg.Authorizer = l
	})
	leader := c.leader()
	follower := followers(leader, c.servers)[0]
	if _, err := leader.Apply(context.Background(), &fsm.RegisterAgent{Name: "a1", Address: deadAgentAddr, StorageRoot: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	gridtest.WaitFor(t, 10*time.Second, "the agent on the follower", func() error {
		if a, _ := follower.State().Agent("a1"); a == nil {
			return io.EOF
		}
		return nil
	})
	base := "http://" + follower.HTTPAddr()

	t.Run("a write through a follower", func(t *testing.T) {
		resp, body := do(t, "POST", base+"/v1/nodes", strings.NewReader(`{"agent":"a1","port":5001}`), map[string]string{"X-Grid-Token": "secret-1"})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("spawn through a follower: %d %s", resp.StatusCode, body)
		}
		if !logs[leader.Name()].saw("POST /v1/nodes", "secret-1") {
			t.Fatal("the leader did not see the caller's token")
		}
	})

	t.Run("errors are the leader's, the same on every server", func(t *testing.T) {
		cases := []struct {
			name string
			body string
			want int
		}{
			{"trailing data", `{"agent":"a1","port":5002} {}`, http.StatusBadRequest},
			{"unknown field", `{"agent":"a1","port":5002,"colour":"red"}`, http.StatusBadRequest},
			{"rejected by the state", `{"agent":"nobody","port":5002}`, http.StatusBadRequest},
			{"too large", `{"agent":"a1","storage_path":"` + strings.Repeat("x", maxRequestBody) + `"}`, http.StatusRequestEntityTooLarge},
		}
		for _, tc := range cases {
			for _, s := range []*Server{leader, follower} {
				resp, body := do(t, "POST", "http://"+s.HTTPAddr()+"/v1/nodes", strings.NewReader(tc.body), nil)
				if resp.StatusCode != tc.want {
					t.Errorf("%s via %s: %d %s, want %d", tc.name, s.Name(), resp.StatusCode, body, tc.want)
				}
			}
		}
	})

	t.Run("reads say how fresh they are", func(t *testing.T) {
		for _, url := range []string{base + "/v1/nodes", base + "/v1/nodes?stale", "http://" + leader.HTTPAddr() + "/v1/nodes"} {
			resp, body := do(t, "GET", url, nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
			}
			if resp.Header.Get("X-Grid-Known-Leader") != "true" || resp.Header.Get("X-Grid-Last-Contact") == "" {
				t.Errorf("GET %s: headers %v", url, resp.Header)
			}
			var nodes []map[string]any
			if err := json.Unmarshal([]byte(body), &nodes); err != nil || len(nodes) != 1 {
				t.Errorf("GET %s: %s", url, body)
			}
		}
	})

	t.Run("an agent's call through a follower carries its metadata", func(t *testing.T) {
		conn, err := leader.conns.Get(follower.RPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, "agent-secret")
		if _, err := gridpb.NewServersClient(conn).Heartbeat(ctx, &gridpb.HeartbeatRequest{Name: "a1"}); err != nil {
			t.Fatal(err)
		}
		if !logs[leader.Name()].saw(gridpb.Servers_Heartbeat_FullMethodName, "agent-secret") {
			t.Fatal("the leader did not see the agent's token")
		}
	})

	t.Run("without a leader: 503 with Retry-After, and stale reads that say so", func(t *testing.T) {
		for _, s := range c.servers {
			if s != follower {
				_ = s.stop(false)
			}
		}
		gridtest.WaitFor(t, 10*time.Second, "the follower to lose its leader", func() error {
			if addr, _ := follower.raft.LeaderWithID(); addr != "" {
				return io.EOF
			}
			return nil
		})
		resp, body := do(t, "POST", base+"/v1/nodes", bytes.NewBufferString(`{"agent":"a1","port":5003}`), nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("write without a leader: %d %s, headers %v", resp.StatusCode, body, resp.Header)
		}
		resp, body = do(t, "GET", base+"/v1/nodes?stale", nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Grid-Known-Leader") != "false" {
			t.Errorf("stale read without a leader: %d %s, headers %v", resp.StatusCode, body, resp.Header)
		}
	})
}
