// Package mtls is the one source of TLS configuration for Grid's processes: mutual
// TLS in which every certificate says, by name, which role its holder plays.
//
// A Grid certificate carries its role as a DNS name: server.REGION.DOMAIN for a
// server, agent.REGION.DOMAIN for an agent, client.REGION.DOMAIN for an operator's
// CLI, node.REGION.DOMAIN for a storage node ("server.global.grid" by default).
// Beyond the usual check that the grid's CA signed a peer's certificate, every
// listener and dialer checks that the peer plays a role it expects, so that an
// agent's certificate cannot act as a server's.
//
// A server's certificate also names the one server that holds it (identity.go), so
// that an agent can tell the leader's certificate from another server's.
//
// Files: role.go names the roles and reads them off certificates; identity.go a
// server's name; source.go loads the
// CA, certificate and key from files and reloads them atomically (Reload, on SIGHUP),
// and hands out server- and client-side tls.Configs that always use the latest; grpc.go
// turns them into gRPC credentials and the interceptors that check, per method, the
// roles allowed to call it; client.go is the configuration of an HTTPS client of the
// API (the CLI) from a CA file and an optional client certificate; create.go makes a
// CA and the certificates of each role (ECDSA P-256), as `grid tls` does.
//
// A nil *Source means TLS is off: its methods then return nil configurations and
// options, which the callers read as plaintext.
package mtls
