package acl

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
)

// State is the part of the replicated state that resolves tokens. The fsm's State
// implements it.
type State interface {
	// ACLTokenBySecretHash returns the token whose secret hashes to hash, or nil.
	ACLTokenBySecretHash(hash string) (*Token, error)
	// ACLPolicy returns the policy called name, or nil.
	ACLPolicy(name string) (*Policy, error)
}

// Authorizer is the auth.Authorizer of a server with ACLs: it looks up what the
// endpoint needs (endpoints.go) and what the caller's token holds, in the state as
// it is now. It keeps nothing between requests, so a token that the log deletes is
// refused as soon as the server applies the deletion.
type Authorizer struct {
	state func() State
}

var _ auth.Authorizer = (*Authorizer)(nil)

// NewAuthorizer returns an Authorizer that reads the state from state at each request.
func NewAuthorizer(state func() State) *Authorizer {
	return &Authorizer{state: state}
}

// DeniedError is a refusal: HTTP 403, gRPC PermissionDenied.
type DeniedError struct {
	msg string
	// unknown says that the token is not in the state.
	unknown bool
}

// IsUnknownToken reports whether err refuses a token that the state does not hold:
// one that was deleted, or never existed, or that this server has not applied yet.
func IsUnknownToken(err error) bool {
	var d *DeniedError
	return errors.As(err, &d) && d.unknown
}

func (e *DeniedError) Error() string { return "permission denied: " + e.msg }

// GRPCStatus makes a refusal a PermissionDenied status, in gRPC answers and in the
// HTTP error messages that strip the status's wrapping.
func (e *DeniedError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, e.Error())
}

func denied(format string, args ...any) error {
	return &DeniedError{msg: fmt.Sprintf(format, args...)}
}

// Authorize implements auth.Authorizer.
func (a *Authorizer) Authorize(_ context.Context, acc auth.Access) error {
	need, ok := endpoints[acc.Endpoint]
	switch {
	case !ok:
		return denied("%s has no ACL rule, so it is refused", acc.Endpoint)
	case need == Public:
		return nil
	case need == Nobody:
		return denied("%s is done by the leader itself, never at another's request", acc.Endpoint)
	case acc.Token == "":
		return denied("%s needs %s: send a token in the %s header (or the %s gRPC metadata)",
			acc.Endpoint, need, auth.TokenHeader, auth.TokenMetadata)
	}
	st := a.state()
	tok, err := a.lookup(st, acc.Token)
	if err != nil {
		return err
	}
	if tok.Management || need == AnyToken {
		return nil
	}
	if need == Management {
		return denied("%s needs a management token; token %q is not one", acc.Endpoint, tok.DisplayName())
	}
	level, err := effectiveLevel(st, tok, need.Resource)
	if err != nil {
		return status.Errorf(codes.Internal, "read ACL policies: %v", err)
	}
	if !level.Allows(need.Level) {
		has := "no " + string(need.Resource) + " rule"
		if level != LevelNone {
			has = string(need.Resource) + " " + string(level)
		}
		return denied("%s needs %s; token %q has %s", acc.Endpoint, need, tok.DisplayName(), has)
	}
	return nil
}

// Resolve returns the token whose secret is secret, or a DeniedError when there is
// none.
func (a *Authorizer) Resolve(secret string) (*Token, error) {
	if secret == "" {
		return nil, denied("no token: send one in the %s header", auth.TokenHeader)
	}
	return a.lookup(a.state(), secret)
}

func (a *Authorizer) lookup(st State, secret string) (*Token, error) {
	tok, err := st.ACLTokenBySecretHash(HashSecret(secret))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read ACL tokens: %v", err)
	}
	if tok == nil {
		return nil, &DeniedError{msg: "token not found: it was deleted, or never existed", unknown: true}
	}
	return tok, nil
}

// effectiveLevel combines what the token's policies say of res: deny in any of them
// wins; otherwise the highest level. A policy that no longer exists grants nothing.
func effectiveLevel(st State, tok *Token, res Resource) (Level, error) {
	level := LevelNone
	for _, name := range tok.Policies {
		p, err := st.ACLPolicy(name)
		if err != nil {
			return LevelNone, err
		}
		if p == nil {
			continue
		}
		switch l := p.Rules.Level(res); {
		case l == Deny:
			return Deny, nil
		case l == Write, l == Read && level != Write:
			level = l
		}
	}
	return level, nil
}
