// Package acl is Grid's access control: policies, tokens, and the Authorizer that a
// server with -acl-enabled puts every HTTP request and gRPC call through (it
// implements auth.Authorizer). The tables of policies and tokens live in the
// replicated state (fsm/), so every server decides alike, from its own state.
//
// Where things are:
//
//   - policy.go: the policy model (a level, deny, read or write, for each of the
//     resources agent, node, event and operator) and its HCL parser.
//   - token.go: the token and policy rows, secrets and their SHA-256 hashes (the
//     state never holds a secret), names and their validation.
//   - endpoints.go: the one table of what each HTTP route, gRPC method and
//     forwarded command needs.
//   - authorizer.go: the Authorizer, which resolves the caller's token in the
//     current state at every request and holds nothing between requests.
//
// The package knows nothing of Raft or HTTP: server/ wires it in, fsm/ stores its
// rows, and website/security.md describes it for operators.
package acl
