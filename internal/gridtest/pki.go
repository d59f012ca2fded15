package gridtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sutragrid/grid/mtls"
)

// PKI is a grid CA in a temporary directory, for tests that run with mutual TLS:
// it makes certificates of any role (mtls.CreateCert) and writes them to files.
type PKI struct {
	Dir           string
	CAFile        string
	caCert, caKey []byte
}

// NewPKI makes a CA in a directory of the test's.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	cert, key, err := mtls.CreateCA(mtls.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{Dir: t.TempDir(), caCert: cert, caKey: key}
	p.CAFile = p.write(t, "ca.pem", cert)
	p.write(t, "ca-key.pem", key)
	return p
}

func (p *PKI) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Files makes a certificate as o says, writes it and its key as NAME.pem and
// NAME-key.pem (replacing files of that name), and returns the files of a process
// holding it.
func (p *PKI) Files(t testing.TB, name string, o mtls.CertOptions) mtls.Files {
	t.Helper()
	cert, key, err := mtls.CreateCert(p.caCert, p.caKey, o)
	if err != nil {
		t.Fatal(err)
	}
	return mtls.Files{CAFile: p.CAFile, CertFile: p.write(t, name+".pem", cert), KeyFile: p.write(t, name+"-key.pem", key)}
}

// RoleFiles is Files for a certificate of role with the defaults; a server's names
// server name (mtls.CertOptions.Server).
func (p *PKI) RoleFiles(t testing.TB, name string, role mtls.Role) mtls.Files {
	t.Helper()
	o := mtls.CertOptions{Role: role}
	if role == mtls.RoleServer {
		o.Server = name
	}
	return p.Files(t, name, o)
}

// Source makes a certificate of role and loads it.
func (p *PKI) Source(t testing.TB, name string, role mtls.Role) *mtls.Source {
	t.Helper()
	s, err := mtls.Load(p.RoleFiles(t, name, role))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
