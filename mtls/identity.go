package mtls

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// A role name says what a certificate's holder is, not which one it is: every
// server's certificate names server.global.grid. An agent must obey the leader
// alone, so a server's certificate also names the one server that holds it, as a URI
// in its subject alternative names:
//
//	grid://server.global.grid/NAME
//
// where NAME is the server's name (grid server -name), path-escaped. A URI, not a DNS
// name, since a server's name need not be a host name ("host-127.0.0.11").

// uriScheme is the scheme of a server's identity URI.
const uriScheme = "grid"

// serverURI is the identity URI of server name in the grid whose names end in suffix
// ("global.grid").
func serverURI(name, suffix string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: string(RoleServer) + "." + suffix, Path: "/" + name, RawPath: "/" + url.PathEscape(name)}
}

// serverNameOf returns the name of the server cert belongs to in the grid whose names
// end in suffix; "" if it names none, or more than one.
func serverNameOf(cert *x509.Certificate, suffix string) string {
	host := string(RoleServer) + "." + suffix
	var found string
	for _, u := range cert.URIs {
		if u.Scheme != uriScheme || u.Host != host || !strings.HasPrefix(u.Path, "/") || len(u.Path) < 2 {
			continue
		}
		if found != "" && found != u.Path[1:] {
			return "" // a certificate for two servers is for none
		}
		found = u.Path[1:]
	}
	return found
}

// validServerName refuses a name no server can have.
func validServerName(name string) error {
	if name == "" {
		return fmt.Errorf("a server certificate needs the name of its server (grid server -name)")
	}
	if strings.ContainsAny(name, " \t\r\n/") {
		return fmt.Errorf("server name %q must not contain white space or /", name)
	}
	return nil
}

// ServerName is the name of the server that holds the process's certificate: "" for
// a certificate of another role, or a server's that names none.
func (s *Source) ServerName() string { return s.cur.Load().server }

// PeerServer returns the name of the server whose certificate a peer presented, in
// this process's region and domain; "" if it is no server's or names none.
func (s *Source) PeerServer(cert *x509.Certificate) string {
	b := s.cur.Load()
	if !overlaps(rolesIn(cert, b.suffix), []Role{RoleServer}) {
		return ""
	}
	return serverNameOf(cert, b.suffix)
}
