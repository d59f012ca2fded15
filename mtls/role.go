package mtls

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// Role is what the holder of a certificate is to the grid.
type Role string

// The roles a Grid certificate can name.
const (
	// RoleServer is a grid server: it alone may call the servers' internal service,
	// join Raft, order agents and write to the event store.
	RoleServer Role = "server"
	// RoleAgent is a grid agent: it may call the servers' agent service (Register,
	// Heartbeat, ReportNode, Unregister) and check its storage nodes.
	RoleAgent Role = "agent"
	// RoleClient is an operator's CLI or a program using the HTTP API or a storage
	// node's gRPC API.
	RoleClient Role = "client"
	// RoleNode is a storage node: it serves, and may call nothing.
	RoleNode Role = "node"
)

// Roles lists every role.
var Roles = []Role{RoleServer, RoleAgent, RoleClient, RoleNode}

// DefaultRegion and DefaultDomain make the default role names ("server.global.grid").
const (
	DefaultRegion = "global"
	DefaultDomain = "grid"
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want server, agent, client or node", s)
}

// ParseRoles parses a comma-separated list of roles ("server,agent").
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		r, err := ParseRole(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no role in %q", s)
	}
	return out, nil
}

// Name is the DNS name a certificate of role r carries in region and domain:
// "server.global.grid".
func (r Role) Name(region, domain string) string {
	return string(r) + "." + region + "." + domain
}

// roleOfName splits a role name into its role and the region and domain that follow
// ("server.global.grid" is RoleServer and "global.grid"); ok is false for any other
// name.
func roleOfName(name string) (r Role, suffix string, ok bool) {
	first, rest, found := strings.Cut(name, ".")
	if !found || !strings.Contains(rest, ".") || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") {
		return "", "", false
	}
	if !slices.Contains(Roles, Role(first)) {
		return "", "", false
	}
	return Role(first), rest, true
}

// ownRole is the role and suffix a process's own certificate names: its common name,
// which `grid tls cert create` sets to the role name, or else the first role name
// among its DNS names.
func ownRole(cert *x509.Certificate) (Role, string, error) {
	if r, suffix, ok := roleOfName(cert.Subject.CommonName); ok && slices.Contains(cert.DNSNames, cert.Subject.CommonName) {
		return r, suffix, nil
	}
	for _, n := range cert.DNSNames {
		if r, suffix, ok := roleOfName(n); ok {
			return r, suffix, nil
		}
	}
	return "", "", fmt.Errorf("certificate %q names no Grid role: it needs a DNS name such as server.global.grid, agent.global.grid, client.global.grid or node.global.grid (make one with grid tls cert create)", cert.Subject.CommonName)
}

// rolesIn returns the roles cert names in the grid whose names end in suffix.
func rolesIn(cert *x509.Certificate, suffix string) []Role {
	var out []Role
	for _, n := range cert.DNSNames {
		if r, s, ok := roleOfName(n); ok && s == suffix && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Describe names a certificate for an error: its role names, or its common name.
func Describe(cert *x509.Certificate) string { return describe(cert) }

func describe(cert *x509.Certificate) string {
	var names []string
	for _, n := range cert.DNSNames {
		if _, _, ok := roleOfName(n); ok {
			names = append(names, n)
		}
	}
	for _, u := range cert.URIs {
		if u.Scheme == uriScheme {
			names = append(names, u.String())
		}
	}
	if len(names) == 0 {
		if cert.Subject.CommonName != "" {
			return fmt.Sprintf("%q (no Grid role)", cert.Subject.CommonName)
		}
		return "a certificate with no Grid role"
	}
	return strings.Join(names, ", ")
}

// AnyOf reports whether have holds any of want.
func AnyOf(have []Role, want ...Role) bool { return overlaps(have, want) }

// overlaps reports whether have holds any of want.
func overlaps(have, want []Role) bool {
	for _, r := range have {
		if slices.Contains(want, r) {
			return true
		}
	}
	return false
}

// anRoles writes roles with their article: "a server", "an agent or a server".
func anRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = an(string(r))
	}
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// an puts "a" or "an" before a role's name.
func an(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
