//go:build linux

package agent

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/internal/gridtest"
)

// An agent sends its token with every call to the servers, which refuse a call
// without the right one.
func TestAgentSendsItsToken(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen = map[string]string{}
	)
	check := auth.AuthorizerFunc(func(_ context.Context, a auth.Access) error {
		mu.Lock()
		seen[a.Endpoint] = a.Token
		mu.Unlock()
		if a.Token != "agent-secret" {
			return status.Error(codes.PermissionDenied, "wrong token")
		}
		return nil
	})
	srv := newTestServer(t, grpc.UnaryInterceptor(auth.UnaryInterceptor(check)))
	cfg := testConfig(t, "agent-token", t.TempDir(), srv)
	cfg.Token = "agent-secret"
	startAgent(t, cfg)
	gridtest.WaitUntil(t, waitLong, "registration and heartbeats with the token", func() bool {
		regs, hb, _, _, _ := srv.snapshot()
		return len(regs) == 1 && hb >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	for endpoint, token := range seen {
		if token != "agent-secret" {
			t.Errorf("%s got token %q", endpoint, token)
		}
	}
}
