package mtls

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

func readLeaf(t *testing.T, f Files) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(f.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	return parsePEM(t, raw)
}

// parsePEM parses the first certificate of PEM data.
func parsePEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServerCertificatesNameTheirServer: a server's certificate names its server, in
// its region; other roles' name none, and may not.
func TestServerCertificatesNameTheirServer(t *testing.T) {
	p := newPKI(t)
	self := p.source("self", RoleAgent)
	for _, tc := range []struct {
		name string
		o    CertOptions
		want string // the name PeerServer reads; "" for none
	}{
		{"a server", CertOptions{Role: RoleServer, Server: "db1"}, "db1"},
		{"a name that is no host name", CertOptions{Role: RoleServer, Server: "host-127.0.0.11:a%b"}, "host-127.0.0.11:a%b"},
		{"a server naming none", CertOptions{Role: RoleServer}, ""},
		{"a server of another region", CertOptions{Role: RoleServer, Region: "eu", Server: "db1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := p.files(strings.ReplaceAll(tc.name, " ", "-"), tc.o)
			if got := self.PeerServer(readLeaf(t, f)); got != tc.want {
				t.Errorf("PeerServer = %q, want %q", got, tc.want)
			}
			if tc.o.Region != "" {
				return
			}
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.ServerName() != tc.want {
				t.Errorf("ServerName = %q, want %q", s.ServerName(), tc.want)
			}
		})
	}
	// An agent's certificate names no server, even with the URI of one.
	if _, _, err := CreateCert(p.caCert, p.caKey, CertOptions{Role: RoleAgent, Server: "db1"}); err == nil || !strings.Contains(err.Error(), "only a server's certificate names a server") {
		t.Errorf("an agent certificate naming a server: %v", err)
	}
	if _, _, err := CreateCert(p.caCert, p.caKey, CertOptions{Role: RoleServer, Server: "a/b"}); err == nil {
		t.Error("a server name with / was taken")
	}
}

// TestReloadKeepsTheServer: a server's certificate can be renewed, not swapped for
// another server's.
func TestReloadKeepsTheServer(t *testing.T) {
	p := newPKI(t)
	f := p.files("db1", CertOptions{Role: RoleServer, Server: "db1"})
	s, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	renewed := p.files("db1-renewed", CertOptions{Role: RoleServer, Server: "db1"})
	other := p.files("db2", CertOptions{Role: RoleServer, Server: "db2"})
	copyTo := func(from Files) {
		t.Helper()
		copyFile(t, from.CertFile, f.CertFile)
		copyFile(t, from.KeyFile, f.KeyFile)
	}
	copyTo(other)
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), `the new certificate is server "db2"'s, the process is server "db1"`) {
		t.Errorf("reload with another server's certificate: %v", err)
	}
	copyTo(renewed)
	if ch, err := s.Reload(); err != nil || !ch.Cert || s.ServerName() != "db1" {
		t.Errorf("renewal: %+v, %v", ch, err)
	}
}
