package mtls

import (
	"context"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Allowed says which roles may call a gRPC method (its full name,
// "/grid.server.v1.Internal/Apply"); nil lets any peer that passed the handshake
// call it.
type Allowed func(method string) []Role

// GRPCServerOptions are the options of a gRPC server that serves over TLS, takes
// callers with a certificate of any Grid role of this region, and lets each call
// through only if its caller's certificate names a role that allowed gives the
// method. A refusal is PermissionDenied and says which roles the method wants: a
// role checked in the handshake would only tell the caller "bad certificate". Put
// these options first, so that the check runs before any other interceptor. A nil
// source returns none: plaintext.
func (s *Source) GRPCServerOptions(allowed Allowed) []grpc.ServerOption {
	if s == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(s.ServerConfig(true))),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.checkCall(ctx, info.FullMethod, allowed); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.checkCall(ss.Context(), info.FullMethod, allowed); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// GRPCServerCreds is GRPCServerOptions without the check by method: the
// credentials alone, for a server whose every method the handshake's roles may call.
func (s *Source) GRPCServerCreds(accept ...Role) grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(s.ServerConfig(true, accept...)))
}

func (s *Source) checkCall(ctx context.Context, method string, allowed Allowed) error {
	var roles []Role
	if allowed != nil {
		roles = allowed(method)
	}
	if roles == nil {
		return nil
	}
	cert := PeerCertificate(ctx)
	if cert == nil {
		return status.Errorf(codes.Unauthenticated, "%s needs the certificate of %s, and the caller presented none", method, anRoles(roles))
	}
	if !overlaps(s.PeerRoles(cert), roles) {
		return status.Errorf(codes.PermissionDenied, "%s may be called by %s only: the caller's certificate is %s", method, anRoles(roles), describe(cert))
	}
	return nil
}

// PeerCertificate returns the certificate the caller of a gRPC call presented, or
// nil (no TLS, or no certificate).
func PeerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}

// CallerRoles returns the roles the caller of a gRPC call has by its certificate;
// none without TLS.
func (s *Source) CallerRoles(ctx context.Context) []Role {
	if s == nil {
		return nil
	}
	if cert := PeerCertificate(ctx); cert != nil {
		return s.PeerRoles(cert)
	}
	return nil
}

// Only returns an Allowed that gives every method the same roles.
func Only(roles ...Role) Allowed {
	return func(string) []Role { return roles }
}

// String is for log lines: the process's role name and certificate expiry.
func (s *Source) String() string {
	if s == nil {
		return "off"
	}
	return fmt.Sprintf("%s (expires %s)", s.Name(), s.NotAfter().UTC().Format("2006-01-02"))
}
