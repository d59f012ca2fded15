package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// Mutual TLS, when Config.TLS is set. Every listener and dialer of the server takes
// its tls.Config from that one source, so that a reload reaches all of them:
//
//   - Raft: a TLS stream layer under raft's network transport; both ends must hold a
//     server certificate.
//   - gRPC: callers need a certificate of the grid; the internal service takes
//     servers only, the agents' service agents (and servers forwarding their calls).
//     The check is per method, before anything else runs, so that a refusal says why
//     (PermissionDenied) rather than failing the handshake.
//   - HTTP: HTTPS; a client certificate is required with VerifyHTTPSClient, and one
//     that is presented must be a client's or a server's.
//   - Dialing: other servers must present a server certificate, agents an agent
//     certificate, the event store a server or node certificate.

// checkCertName refuses a server certificate made for another server, or for none:
// agents obey the leader's certificate alone, and know it by the server's name in it
// (mtls/identity.go).
func (c *Config) checkCertName() error {
	if c.TLS == nil {
		return nil
	}
	switch got, file := c.TLS.ServerName(), c.TLS.Files().CertFile; got {
	case c.NodeName:
		return nil
	case "":
		return fmt.Errorf("certificate %s names no server: each server needs a certificate of its own, naming it, since agents obey the leader's alone (grid tls cert create -server -name=%s)", file, c.NodeName)
	default:
		return fmt.Errorf("certificate %s is server %q's, and this server is %q (-name): each server needs a certificate of its own (grid tls cert create -server -name=%s)", file, got, c.NodeName, c.NodeName)
	}
}

// rpcAllowed says which roles may call each gRPC method of a server.
func rpcAllowed(method string) []mtls.Role {
	if strings.HasPrefix(method, "/"+gridpb.Servers_ServiceDesc.ServiceName+"/") {
		return []mtls.Role{mtls.RoleAgent, mtls.RoleServer}
	}
	return []mtls.Role{mtls.RoleServer}
}

// rpcTLSOptions are the gRPC server options for TLS, to come before any other.
func (s *Server) rpcTLSOptions() []grpc.ServerOption {
	return s.config.TLS.GRPCServerOptions(rpcAllowed)
}

// Roles the server expects of the peers it dials.
var (
	serverPeers = []mtls.Role{mtls.RoleServer}
	agentPeers  = []mtls.Role{mtls.RoleAgent}
	// The event store is a storage node run by an operator, with a server's or a
	// node's certificate.
	storePeers = []mtls.Role{mtls.RoleServer, mtls.RoleNode}
)

// httpTLS is the HTTP listener's TLS configuration; nil without TLS.
func (s *Server) httpTLS() *tls.Config {
	return s.config.TLS.ServerConfig(s.config.VerifyHTTPSClient)
}

// httpCallers are the roles whose certificates may use the HTTP API. An agent's or a
// storage node's certificate lives on hosts that run storage nodes, and must not
// open the API (which orders nodes anywhere) to whoever takes it.
var httpCallers = []mtls.Role{mtls.RoleClient, mtls.RoleServer}

// tlsGuard refuses an HTTP request whose client certificate is not a client's or a
// server's, with a 403 that says so. Requests forwarded from another server (which
// checked them) and a server's own in-process requests carry no TLS state.
func (s *Server) tlsGuard(next http.Handler) http.Handler {
	if s.config.TLS == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cert := r.TLS.PeerCertificates[0]
			if !mtls.AnyOf(s.config.TLS.PeerRoles(cert), httpCallers...) {
				writeError(w, http.StatusForbidden, fmt.Errorf("the HTTP API takes client and server certificates only, and this request's certificate is %s: use a client certificate (grid tls cert create -client)", mtls.Describe(cert)))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// newRaftTransport is raft's TCP transport, over TLS when the server has TLS.
func (s *Server) newRaftTransport(advertise net.Addr) (*raft.NetworkTransport, error) {
	const maxPool, timeout = 3, 10 * time.Second
	logger := s.logger.Named("raft.transport")
	if s.config.TLS == nil {
		return raft.NewTCPTransportWithLogger(s.hostPort(s.config.RaftPort), advertise, maxPool, timeout, logger)
	}
	ln, err := net.Listen("tcp", s.hostPort(s.config.RaftPort))
	if err != nil {
		return nil, err
	}
	layer := &tlsStreamLayer{
		Listener:  tls.NewListener(ln, s.config.TLS.ServerConfig(true, mtls.RoleServer)),
		advertise: advertise,
		dial:      s.config.TLS.ClientConfig(serverPeers...),
	}
	if a, ok := layer.Addr().(*net.TCPAddr); !ok || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %v is not advertisable", layer.Addr())
	}
	return raft.NewNetworkTransportWithLogger(layer, maxPool, timeout, logger), nil
}

// tlsStreamLayer is raft.StreamLayer over TLS: both ends hold server certificates.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	dial      *tls.Config
}

func (l *tlsStreamLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}

func (l *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), l.dial)
}

// ReloadTLS reads the server's CA, certificate and key again (on SIGHUP): the
// handshakes that follow, on every listener and dialer, use them; connections
// already open, and so the cluster, carry on.
func (s *Server) ReloadTLS() error {
	ch, err := s.config.TLS.Reload()
	if err != nil {
		s.logger.Error("TLS reload failed", "error", err)
		return err
	}
	s.logger.Info("TLS certificates reloaded", ch.LogArgs()...)
	return nil
}
