package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"
)

// APIClientConfig is the tls.Config of a client of the HTTPS API of the server at
// host (the CLI).
// With caFile, the server's certificate must be signed by that CA and either name a
// server role (server.REGION.DOMAIN: any server of the grid, whatever address it is
// reached at) or match the address's host name, as a browser would check it; without,
// the system's roots and the host name are checked. certFile and keyFile, both or
// neither, are the client's own certificate, for servers that verify clients.
func APIClientConfig(host, caFile, certFile, keyFile string) (*tls.Config, error) {
	// A client that opens new connections (one per request without keep-alive, or
	// after an idle timeout) resumes its TLS session instead of a full handshake.
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both its certificate and its key file (GRID_CLIENT_CERT and GRID_CLIENT_KEY)")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		// Sent whatever CAs the server names: a certificate it will refuse gets a
		// refusal that says why, rather than looking like no certificate at all.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if caFile == "" {
		return conf, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	cas, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", caFile, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	// Verified in VerifyConnection: by role as well as by host name.
	conf.InsecureSkipVerify = true
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.DidResume && len(cs.PeerCertificates) > 0 && time.Now().Before(cs.PeerCertificates[0].NotAfter) {
			// A session this client verified, with the same CA, resumed: as crypto/tls
			// does, only its expiry needs checking again.
			return nil
		}
		return verifyAPIServer(cs.PeerCertificates, host, roots, caFile)
	}
	return conf, nil
}

func verifyAPIServer(chain []*x509.Certificate, host string, roots *x509.CertPool, caFile string) error {
	if len(chain) == 0 {
		return fmt.Errorf("the server at %s presented no certificate", host)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("the certificate of the server at %s (%s) expired at %s", host, describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("the certificate of the server at %s (%s) is not signed by the CA in %s: %w", host, describe(leaf), caFile, err)
	}
	for _, n := range leaf.DNSNames {
		if r, _, ok := roleOfName(n); ok && r == RoleServer {
			return nil
		}
	}
	if leaf.VerifyHostname(host) == nil {
		return nil
	}
	return fmt.Errorf("the certificate of the server at %s is %s: neither a Grid server's certificate nor one for %s", host, describe(leaf), host)
}

// DescribeRemoteError explains a TLS alert the server sent about the client's
// certificate; it returns "" for any other error.
func DescribeRemoteError(err error, certFile string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "remote error: tls: expired certificate"):
		return fmt.Sprintf("the server refused the client certificate %s: it has expired", orNone(certFile))
	case strings.Contains(msg, "remote error: tls: unknown certificate authority"):
		return fmt.Sprintf("the server refused the client certificate %s: it is not signed by the grid's CA", orNone(certFile))
	case strings.Contains(msg, "remote error: tls: certificate required"):
		return "the server requires a client certificate (-client-cert and -client-key, or GRID_CLIENT_CERT and GRID_CLIENT_KEY)"
	case strings.Contains(msg, "remote error: tls: bad certificate"):
		return fmt.Sprintf("the server refused the client certificate %s (a client or server certificate of its grid is needed)", orNone(certFile))
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}
