package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestNewClientAddress(t *testing.T) {
	tests := []struct {
		env, addr string
		want      string // "" when NewClient must fail
	}{
		{"", "", DefaultAddress},
		{"http://127.0.0.12:7000", "", "http://127.0.0.12:7000"},
		{"http://127.0.0.12:7000", "http://127.0.0.13:7000", "http://127.0.0.13:7000"},
		{"", "127.0.0.11:7000", "http://127.0.0.11:7000"},
		{"", "https://grid.example:7000", "https://grid.example:7000"},
		{"", "ftp://127.0.0.1:7000", ""},
		{"", "http://", ""},
	}
	for _, tt := range tests {
		t.Run(tt.env+"|"+tt.addr, func(t *testing.T) {
			t.Setenv(AddressEnv, tt.env)
			cfg := DefaultConfig()
			if tt.addr != "" {
				cfg.Address = tt.addr
			}
			c, err := NewClient(cfg)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("NewClient(%q) = %s, want an error", cfg.Address, c.Address())
			case tt.want != "" && err != nil:
				t.Errorf("NewClient(%q): %v", cfg.Address, err)
			case tt.want != "" && c.Address() != tt.want:
				t.Errorf("Address() = %q, want %q", c.Address(), tt.want)
			}
		})
	}
}

// recorder is a server that records the last request and answers with a fixed reply.
type recorder struct {
	method, uri, body string
}

func newServer(t *testing.T, rec *recorder, code int, reply string) *Client {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.method, rec.uri, rec.body = r.Method, r.URL.RequestURI(), string(b)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(s.Close)
	c, err := NewClient(&Config{Address: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCalls(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		reply  string
		call   func(c *Client) (any, error)
		method string
		uri    string
		sent   string
		want   string // the result, as JSON
	}{
		{
			name:   "leader",
			reply:  `"127.0.0.11:7002"`,
			call:   func(c *Client) (any, error) { return c.Leader(ctx) },
			method: "GET", uri: "/v1/status/leader", want: `"127.0.0.11:7002"`,
		},
		{
			name:   "peers",
			reply:  `["127.0.0.11:7002","127.0.0.12:7002"]`,
			call:   func(c *Client) (any, error) { return c.Peers(ctx) },
			method: "GET", uri: "/v1/status/peers", want: `["127.0.0.11:7002","127.0.0.12:7002"]`,
		},
		{
			name:   "raft configuration",
			reply:  `{"servers":[{"node":"s1","id":"i1","address":"127.0.0.11:7002","state":"leader","leader":true,"voter":true,"raft_protocol":"3"}],"index":7}`,
			call:   func(c *Client) (any, error) { return c.RaftConfiguration(ctx) },
			method: "GET", uri: "/v1/operator/raft/configuration",
			want: `{"servers":[{"node":"s1","id":"i1","address":"127.0.0.11:7002","state":"leader","leader":true,"voter":true,"raft_protocol":"3"}],"index":7}`,
		},
		{
			name:   "remove peer by id",
			call:   func(c *Client) (any, error) { return nil, c.RaftRemovePeerByID(ctx, "i3") },
			method: "DELETE", uri: "/v1/operator/raft/peer?id=i3", want: `null`,
		},
		{
			name:   "remove peer by address",
			call:   func(c *Client) (any, error) { return nil, c.RaftRemovePeerByAddress(ctx, "127.0.0.13:7002") },
			method: "DELETE", uri: "/v1/operator/raft/peer?address=127.0.0.13%3A7002", want: `null`,
		},
		{
			name:   "members",
			reply:  `[{"name":"s1","address":"127.0.0.11","port":7946,"status":"alive","role":"server","leader":true,"version":"0.1.0","tags":{"role":"server"}}]`,
			call:   func(c *Client) (any, error) { return c.Members(ctx) },
			method: "GET", uri: "/v1/members",
			want: `[{"name":"s1","address":"127.0.0.11","port":7946,"status":"alive","role":"server","leader":true,"version":"0.1.0","tags":{"role":"server"}}]`,
		},
		{
			name:  "snapshot save",
			reply: "archive bytes",
			call: func(c *Client) (any, error) {
				rc, err := c.SnapshotSave(ctx)
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				return string(b), err
			},
			method: "GET", uri: "/v1/operator/snapshot", want: `"archive bytes"`,
		},
		{
			name:   "snapshot restore",
			reply:  `{"restored":true}`,
			call:   func(c *Client) (any, error) { return nil, c.SnapshotRestore(ctx, strings.NewReader("archive bytes")) },
			method: "PUT", uri: "/v1/operator/snapshot", sent: "archive bytes", want: `null`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			c := newServer(t, &rec, http.StatusOK, tt.reply)
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if rec.method != tt.method || rec.uri != tt.uri || rec.body != tt.sent {
				t.Errorf("request = %s %s %q, want %s %s %q", rec.method, rec.uri, rec.body, tt.method, tt.uri, tt.sent)
			}
			if b, _ := json.Marshal(got); string(b) != tt.want {
				t.Errorf("result = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name  string
		code  int
		reply string
		want  string
	}{
		{"error body", http.StatusServiceUnavailable, `{"error":"no cluster leader"}`, "no cluster leader (HTTP 503)"},
		{"plain body", http.StatusBadGateway, "upstream down\n", "upstream down (HTTP 502)"},
		{"empty body", http.StatusNotFound, "", "Not Found (HTTP 404)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServer(t, &recorder{}, tt.code, tt.reply)
			_, err := c.Members(context.Background())
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Fatalf("err = %v, want a *StatusError with code %d", err, tt.code)
			}
			if err.Error() != tt.want {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
			if IsNotFound(err) != (tt.code == http.StatusNotFound) {
				t.Errorf("IsNotFound = %v for code %d", IsNotFound(err), tt.code)
			}
		})
	}
}

func TestPathSegmentsAreEscapedOnce(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agent(context.Background(), "a b/c"); err != nil {
		t.Fatal(err)
	}
	if got != "/v1/agent/a%20b%2Fc" {
		t.Fatalf("path %q, want /v1/agent/a%%20b%%2Fc", got)
	}
}

// A stale client asks every read with ?stale, keeping the read's own query, and
// never a write: ?stale means nothing to a write, which the leader alone can apply.
func TestWithStaleMarksReadsOnly(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method] = r.URL.RawQuery
		mu.Unlock()
		w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.WithStale().Nodes(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.WithStale().StopNode(ctx, "n1", 0)
	if got[http.MethodGet] != "agent=a1&stale=" || got[http.MethodDelete] != "" {
		t.Fatalf("queries %q; want the GET's to say stale and the DELETE's not", got)
	}
	if _, err := c.Nodes(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got[http.MethodGet] != "" {
		t.Fatalf("the original client sent %q; want no stale", got[http.MethodGet])
	}
}
