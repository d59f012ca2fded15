package acl

import (
	"fmt"

	gridpb "github.com/sutragrid/grid/proto"
)

// Need is what a request must hold to be served: a level of a resource, or one of
// the special needs below.
type Need struct {
	Resource Resource
	Level    Level
}

// The special needs.
var (
	// Public: anyone, without a token. The UI's files (the page must load to ask for
	// a token), the leader's address, the bootstrap (which the state allows once),
	// and the servers' own internal calls, whose inner requests are authorized
	// themselves.
	Public = Need{Resource: "public"}
	// AnyToken: any token that exists (GET /v1/acl/token/self).
	AnyToken = Need{Resource: "token"}
	// Management: a management token: ACLs, and snapshots (which hold the ACLs).
	Management = Need{Resource: "management"}
	// Nobody: what a server does for itself as the leader and never accepts from
	// another server.
	Nobody = Need{Resource: "nobody"}
)

func (n Need) String() string {
	switch n {
	case Public:
		return "no token"
	case AnyToken:
		return "a token"
	case Management:
		return "a management token"
	case Nobody:
		return "no caller at all (the leader does this itself)"
	}
	return fmt.Sprintf("%s %s", n.Resource, n.Level)
}

func read(r Resource) Need  { return Need{Resource: r, Level: Read} }
func write(r Resource) Need { return Need{Resource: r, Level: Write} }

// endpoints is the one table of what every request needs: each HTTP route pattern of
// server/http.go, each gRPC method of the servers, and each command that the
// internal Apply call may carry (ApplyEndpoint). A request to an endpoint that is not
// here is refused; a test of package server fails when a route or method is missing.
var endpoints = map[string]Need{
	// HTTP: the cluster.
	"GET /v1/status":                      read(Operator),
	"GET /v1/status/leader":               Public,
	"GET /v1/status/peers":                Public,
	"GET /v1/operator/raft/configuration": read(Operator),
	"DELETE /v1/operator/raft/peer":       write(Operator),
	"GET /v1/members":                     read(Operator),
	"GET /v1/operator/events/derived":     read(Operator),
	"GET /v1/metrics":                     read(Operator),
	// The gossip keyring: listing it shows the keys themselves, with which anyone
	// could join the pool, so it needs what changing it needs.
	"GET /v1/operator/keyring":    write(Operator),
	"POST /v1/operator/keyring":   write(Operator),
	"PUT /v1/operator/keyring":    write(Operator),
	"DELETE /v1/operator/keyring": write(Operator),
	// A snapshot holds the ACL tables: saving one reads them, restoring one
	// replaces them.
	"GET /v1/operator/snapshot": Management,
	"PUT /v1/operator/snapshot": Management,
	// Autopilot: reading its configuration or the servers' health, and changing it.
	"GET /v1/operator/autopilot/configuration": read(Operator),
	"PUT /v1/operator/autopilot/configuration": write(Operator),
	"GET /v1/operator/autopilot/health":        read(Operator),

	// HTTP: agents and nodes.
	"GET /v1/agents":         read(Agent),
	"GET /v1/agent/{name}":   read(Agent),
	"GET /v1/nodes":          read(Node),
	"GET /v1/node/{id}":      read(Node),
	"GET /v1/node/{id}/logs": read(Node),
	"POST /v1/nodes":         write(Node),
	"DELETE /v1/node/{id}":   write(Node),

	// HTTP: events. The list of event types is the API's schema, not the grid's data.
	"GET /v1/events":           read(Event),
	"GET /v1/events/aggregate": read(Event),
	"GET /v1/events/types":     Public,
	"GET /v1/event/stream":     read(Event),
	"GET /v1/event/{seq}":      read(Event),
	// A question only reads, though it is a POST; the queries its answer runs carry
	// the caller's token and are authorized again, each by its own route.
	"POST /v1/ask": read(Event),

	// HTTP: the UI's files, and "/" that leads to them.
	"GET /ui/": Public,
	"GET /{$}": Public,

	// HTTP: ACLs.
	"POST /v1/acl/bootstrap":          Public,
	"GET /v1/acl/policies":            Management,
	"GET /v1/acl/policy/{name}":       Management,
	"PUT /v1/acl/policy/{name}":       Management,
	"DELETE /v1/acl/policy/{name}":    Management,
	"GET /v1/acl/tokens":              Management,
	"POST /v1/acl/token":              Management,
	"GET /v1/acl/token/self":          AnyToken,
	"GET /v1/acl/token/{accessor}":    Management,
	"DELETE /v1/acl/token/{accessor}": Management,

	// gRPC: the agents' calls, with the agent's token.
	gridpb.Servers_Register_FullMethodName:   write(Agent),
	gridpb.Servers_Heartbeat_FullMethodName:  write(Agent),
	gridpb.Servers_ReportNode_FullMethodName: write(Agent),
	gridpb.Servers_Unregister_FullMethodName: write(Agent),

	// gRPC: between servers. RaftState is asked before any state exists (mutual TLS
	// guards it); a forwarded HTTP request passes the HTTP routes' rules above on the
	// leader, with the caller's token; a forwarded Apply is authorized command by
	// command, below, with the caller's token.
	gridpb.Internal_RaftState_FullMethodName:   Public,
	gridpb.Internal_ForwardHTTP_FullMethodName: Public,
	gridpb.Internal_Apply_FullMethodName:       Public,

	// The commands of a forwarded Apply (ApplyEndpoint), by fsm command name. The
	// servers apply them from HTTP handlers and agents' calls, which forward them
	// with their caller's token when the leader changed under them.
	ApplyEndpoint("register_agent"):   write(Agent),
	ApplyEndpoint("deregister_agent"): write(Agent),
	ApplyEndpoint("set_agent_status"): write(Agent),
	ApplyEndpoint("sample_heartbeat"): write(Agent),
	ApplyEndpoint("node_started"):     write(Agent),
	ApplyEndpoint("node_failed"):      write(Agent),
	ApplyEndpoint("node_crashed"):     write(Agent),
	ApplyEndpoint("node_restarted"):   write(Agent),
	ApplyEndpoint("node_stopped"):     write(Agent),
	ApplyEndpoint("node_stop_failed"): write(Agent),
	ApplyEndpoint("spawn_node"):       write(Node),
	ApplyEndpoint("stop_node"):        write(Node),
	ApplyEndpoint("events_shipped"):   Nobody,
	ApplyEndpoint("stray_stopped"):    Nobody,
	// The leader checks a bootstrap's reset index against its own reset file.
	ApplyEndpoint("acl_bootstrap"):     Public,
	ApplyEndpoint("acl_policy_upsert"): Management,
	ApplyEndpoint("acl_policy_delete"): Management,
	ApplyEndpoint("acl_token_create"):  Management,
	ApplyEndpoint("acl_token_delete"):  Management,
	// A PUT of /v1/operator/autopilot/configuration, and the leader's seeding of it
	// from its flags.
	ApplyEndpoint("autopilot_set_config"): write(Operator),
	// The leader's shipper alone keeps the event stores' cursors.
	ApplyEndpoint("event_store_add"):    Nobody,
	ApplyEndpoint("event_store_ack"):    Nobody,
	ApplyEndpoint("event_store_fault"):  Nobody,
	ApplyEndpoint("event_store_remove"): Nobody,
}

// ApplyEndpoint is the endpoint under which a command of the internal Apply call is
// authorized: the call's method, then the command's name.
func ApplyEndpoint(command string) string {
	return gridpb.Internal_Apply_FullMethodName + "/" + command
}

// NeedOf returns what a request to endpoint needs, and whether the table has it.
func NeedOf(endpoint string) (Need, bool) {
	n, ok := endpoints[endpoint]
	return n, ok
}
