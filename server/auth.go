package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Access describes a request that is about to be served.
type Access struct {
	// Endpoint is the HTTP route ("GET /v1/members") or the gRPC full method name.
	Endpoint string
	// Write is true for requests that change state.
	Write bool
	// Token is the caller's ACL token ("" when it sent none).
	Token string
}

// Authorizer decides whether a request may be served. Every HTTP and gRPC handler
// goes through one, so ACLs later change configuration, not call sites.
type Authorizer interface {
	Authorize(ctx context.Context, a Access) error
}

// allowAll is the Authorizer while ACLs are not built: everything is allowed.
type allowAll struct{}

func (allowAll) Authorize(context.Context, Access) error { return nil }

// listen opens a TCP listener, wrapped in TLS when the server has a TLS config.
func listen(addr string, tlsConf *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		return tls.NewListener(ln, tlsConf), nil
	}
	return ln, nil
}

// tokenMetadata is the gRPC metadata key of the caller's ACL token, as the HTTP
// header X-Grid-Token is for HTTP.
const tokenMetadata = "x-grid-token"

// grpcAuthInterceptor runs the Authorizer before every unary gRPC call.
func grpcAuthInterceptor(auth Authorizer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var token string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(tokenMetadata); len(v) > 0 {
				token = v[0]
			}
		}
		if err := auth.Authorize(ctx, Access{Endpoint: info.FullMethod, Write: true, Token: token}); err != nil {
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
		return handler(ctx, req)
	}
}

// httpAuth runs the Authorizer before an HTTP handler.
func httpAuth(auth Authorizer, pattern string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := Access{Endpoint: pattern, Write: r.Method != http.MethodGet && r.Method != http.MethodHead, Token: r.Header.Get("X-Grid-Token")}
		if err := auth.Authorize(r.Context(), a); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		next(w, r)
	}
}
