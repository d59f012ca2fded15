package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
)

// ACLs (website/security.md). With Config.ACLEnabled, the server's Authorizer is
// acl's, over this server's own replicated state: a token deleted through the log is
// refused here as soon as this server applies the deletion. A request that the leader
// must answer is authorized twice, here and again on the leader with the same token;
// a command that a follower forwards to the leader (the internal Apply) is authorized
// by the leader command by command, with the caller's token, as if it had come in
// over HTTP: where it came from grants nothing.

// aclResetFile is the file in the leader's data directory that allows a new ACL
// bootstrap: it holds the reset index, as the refused bootstrap reported it.
const aclResetFile = "acl-bootstrap-reset"

// setupACL makes the ACL Authorizer the server's when ACLs are on. An Authorizer the
// config already has (other than AllowAll) must allow a request too. Without ACLs the
// ACL endpoints work all the same, unenforced: an operator can bootstrap, write
// policies and give agents their tokens before turning ACLs on, server by server,
// without refusing anyone meanwhile.
func (s *Server) setupACL() {
	s.acl = acl.NewAuthorizer(func() acl.State { return s.fsm.State() })
	if !s.config.ACLEnabled {
		return
	}
	guard := &aclGuard{s: s, wait: unknownTokenWait}
	switch s.config.Authorizer.(type) {
	case nil, auth.AllowAll:
		s.config.Authorizer = guard
	default:
		s.config.Authorizer = bothAuthorizers{s.config.Authorizer, guard}
	}
}

// unknownTokenWait bounds how long a follower waits for a token it does not know:
// below the 1 s in which a deleted token must be refused everywhere.
const unknownTokenWait = 250 * time.Millisecond

// aclGuard is the ACL Authorizer of a server. On a follower, a token that the state
// does not hold may be one the leader has just created and this server not applied
// yet: it looks again for a moment before it refuses, so that a token works on every
// server as soon as its creation returns. (A forged or deleted token is refused after
// that moment on a follower, at once on the leader.)
type aclGuard struct {
	s    *Server
	wait time.Duration
}

func (g *aclGuard) Authorize(ctx context.Context, a auth.Access) error {
	err := g.s.acl.Authorize(ctx, a)
	if !acl.IsUnknownToken(err) || g.s.IsLeader() {
		return err
	}
	deadline := time.Now().Add(g.wait)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return err
		case <-g.s.ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
		if err = g.s.acl.Authorize(ctx, a); !acl.IsUnknownToken(err) {
			return err
		}
	}
	return err
}

// bothAuthorizers allows what both of its Authorizers allow.
type bothAuthorizers [2]auth.Authorizer

func (b bothAuthorizers) Authorize(ctx context.Context, a auth.Access) error {
	if err := b[0].Authorize(ctx, a); err != nil {
		return err
	}
	return b[1].Authorize(ctx, a)
}

// requester names the token of an HTTP request, for requested_by: "" without ACLs.
func (s *Server) requester(r *http.Request) string {
	return s.tokenName(r.Header.Get(auth.TokenHeader))
}

func (s *Server) tokenName(secret string) string {
	if !s.config.ACLEnabled || secret == "" {
		return ""
	}
	tok, err := s.acl.Resolve(secret)
	if err != nil {
		return ""
	}
	return tok.DisplayName()
}

// callerTokenKey keeps an HTTP caller's token in its request's context, so that a
// command its handler forwards to the leader carries it (outgoing, forward.go).
type callerTokenKey struct{}

func withCallerToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return context.WithValue(ctx, callerTokenKey{}, token)
}

func callerToken(ctx context.Context) string {
	t, _ := ctx.Value(callerTokenKey{}).(string)
	return t
}

// authorizeApply checks, on the leader, a command that another server forwarded
// through the internal Apply call: the caller's token must allow the command
// (acl.ApplyEndpoint), and a bootstrap's reset index
// must be the one in this server's reset file. The command's requested_by is the
// forwarded token's (with ACLs on), whatever the sender wrote. It returns the command
// to propose.
func (s *Server) authorizeApply(ctx context.Context, buf []byte) ([]byte, error) {
	env, err := fsm.Decode(buf)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cmd := env.Command
	token := auth.TokenFromContext(ctx)
	acc := auth.Access{Endpoint: acl.ApplyEndpoint(cmd.Type().String()), Write: true, Token: token}
	if err := s.config.Authorizer.Authorize(ctx, acc); err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	switch c := cmd.(type) {
	case *fsm.ACLBootstrap:
		if c.ResetIndex != 0 {
			if err := s.checkResetIndex(c.ResetIndex); err != nil {
				return nil, status.Error(codes.PermissionDenied, "permission denied: "+err.Error())
			}
		}
		return buf, nil
	case *fsm.SpawnNode:
		if s.config.ACLEnabled {
			c.RequestedBy = s.tokenName(token)
		}
	case *fsm.StopNode:
		if s.config.ACLEnabled {
			c.RequestedBy = s.tokenName(token)
		}
	default:
		return buf, nil
	}
	return fsm.Encode(cmd)
}

// resetIndex reads the reset file; ok is false when there is none.
func (s *Server) resetIndex() (idx uint64, ok bool, err error) {
	path := filepath.Join(s.config.DataDir, aclResetFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	idx, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s must hold the reset index, a number: %w", path, err)
	}
	return idx, true, nil
}

// checkResetIndex accepts a bootstrap's reset index only when this server's reset
// file holds it.
func (s *Server) checkResetIndex(want uint64) error {
	idx, ok, err := s.resetIndex()
	switch {
	case err != nil:
		return err
	case !ok || idx != want:
		return fmt.Errorf("ACL bootstrap reset index %d is not the one in the leader's %s", want, aclResetFile)
	}
	return nil
}
