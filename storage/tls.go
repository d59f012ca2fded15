package storage

import (
	"slices"
	"strings"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/mtls"
)

// DefaultCallers are the roles that may call a node with TLS when Config.Callers
// says none: servers, as the grid's event store wants (the leader ships to it, any
// server queries it).
var DefaultCallers = []mtls.Role{mtls.RoleServer}

// tlsOptions are the gRPC options for TLS, to come before any other: callers with a
// certificate of the grid, and for every method but the health check (which load
// balancers and the agent waiting for its node ask) one naming a role of Callers.
func (s *Server) tlsOptions() []grpc.ServerOption {
	callers := s.cfg.Callers
	if len(callers) == 0 {
		callers = DefaultCallers
	}
	callers = slices.Clone(callers)
	health := "/" + healthpb.Health_ServiceDesc.ServiceName + "/"
	return s.cfg.TLS.GRPCServerOptions(func(method string) []mtls.Role {
		if strings.HasPrefix(method, health) {
			return nil
		}
		return callers
	})
}
