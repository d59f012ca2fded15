// Package auth is the one place where a Grid process decides whether to serve a
// request: servers, agents and storage nodes put every gRPC call and HTTP request
// through an Authorizer, so that access control changes configuration, never call
// sites.
//
// The caller's token travels in the X-Grid-Token HTTP header, or in the
// x-grid-token gRPC metadata.
package auth

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Where the caller's token travels.
const (
	TokenHeader   = "X-Grid-Token"
	TokenMetadata = "x-grid-token"
)

// Access describes a request that is about to be served.
type Access struct {
	// Endpoint is the HTTP route ("GET /v1/members") or the gRPC full method name.
	Endpoint string
	// Write is true for requests that change state (every gRPC call counts as one).
	Write bool
	// Token is the caller's token ("" when it sent none).
	Token string
}

// Authorizer decides whether a request may be served: an error refuses it.
type Authorizer interface {
	Authorize(ctx context.Context, a Access) error
}

// AuthorizerFunc is a function that is an Authorizer.
type AuthorizerFunc func(ctx context.Context, a Access) error

func (f AuthorizerFunc) Authorize(ctx context.Context, a Access) error { return f(ctx, a) }

// AllowAll is the Authorizer of a process without access control: everything is
// allowed.
type AllowAll struct{}

func (AllowAll) Authorize(context.Context, Access) error { return nil }

// OrAllowAll returns a, or AllowAll when a is nil.
func OrAllowAll(a Authorizer) Authorizer {
	if a == nil {
		return AllowAll{}
	}
	return a
}

// TokenFromContext returns the token of an incoming gRPC call.
func TokenFromContext(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(TokenMetadata); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// check asks a about a gRPC call; a refusal that is not a gRPC status already is
// PermissionDenied.
func check(ctx context.Context, a Authorizer, method string) error {
	err := a.Authorize(ctx, Access{Endpoint: method, Write: true, Token: TokenFromContext(ctx)})
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.PermissionDenied, err.Error())
}

// UnaryInterceptor asks a before every unary gRPC call.
func UnaryInterceptor(a Authorizer) grpc.UnaryServerInterceptor {
	a = OrAllowAll(a)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := check(ctx, a, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor asks a before every streaming gRPC call.
func StreamInterceptor(a Authorizer) grpc.StreamServerInterceptor {
	a = OrAllowAll(a)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := check(ss.Context(), a, info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// HTTP asks a before next serves a request to the route pattern; a refusal is 403
// with a JSON error body.
func HTTP(a Authorizer, pattern string, refuse func(http.ResponseWriter, error), next http.HandlerFunc) http.HandlerFunc {
	a = OrAllowAll(a)
	return func(w http.ResponseWriter, r *http.Request) {
		acc := Access{Endpoint: pattern, Write: r.Method != http.MethodGet && r.Method != http.MethodHead, Token: r.Header.Get(TokenHeader)}
		if err := a.Authorize(r.Context(), acc); err != nil {
			refuse(w, err)
			return
		}
		next(w, r)
	}
}
