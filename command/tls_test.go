package command

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sutragrid/grid/mtls"
)

// readCert parses the certificate in a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestTLSCreatesCAAndCertificates(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	r := runCommand(t, "tls ca create")
	if r.code != 0 || r.stdout != "==> CA certificate: grid-ca.pem\n==> CA key: grid-ca-key.pem\n" || r.stderr != "" {
		t.Fatalf("ca create: %+v", r)
	}
	ca := readCert(t, "grid-ca.pem")
	if !ca.IsCA || mode(t, "grid-ca-key.pem") != 0o600 {
		t.Errorf("CA: IsCA %v, key mode %v", ca.IsCA, mode(t, "grid-ca-key.pem"))
	}
	// Never overwritten.
	before, _ := os.ReadFile("grid-ca-key.pem")
	if r := runCommand(t, "tls ca create"); r.code != 1 || r.stderr != "Error: grid-ca.pem already exists: not overwriting it\n" {
		t.Errorf("ca create again: %+v", r)
	}
	if after, _ := os.ReadFile("grid-ca-key.pem"); string(after) != string(before) {
		t.Error("the CA key changed")
	}

	for _, tc := range []struct {
		args       []string
		cert, key  string
		name       string
		ips        int
		serverAuth bool
		clientAuth bool
	}{
		{[]string{"-server", "-name=db1"}, "global-server-grid-db1.pem", "global-server-grid-db1-key.pem", "server.global.grid", 2, true, true},
		{[]string{"-agent", "-region=eu"}, "eu-agent-grid.pem", "eu-agent-grid-key.pem", "agent.eu.grid", 2, true, true},
		{[]string{"-node", "-days=30"}, "global-node-grid.pem", "global-node-grid-key.pem", "node.global.grid", 2, true, false},
		{[]string{"-client", "-additional-dnsname=ops.example.com", "-additional-ipaddress=10.0.0.7"}, "global-client-grid.pem", "global-client-grid-key.pem", "client.global.grid", 1, false, true},
	} {
		r := runCommand(t, "tls cert create", tc.args...)
		if r.code != 0 || !strings.Contains(r.stdout, "==> Using CA grid-ca.pem and key grid-ca-key.pem\n") || !strings.Contains(r.stdout, "("+tc.name) || !strings.Contains(r.stdout, "): "+tc.cert+"\n") {
			t.Errorf("%v: %+v", tc.args, r)
			continue
		}
		c := readCert(t, tc.cert)
		if c.Subject.CommonName != tc.name || c.DNSNames[0] != tc.name || len(c.IPAddresses) != tc.ips {
			t.Errorf("%v: CN %s, DNS %v, IPs %v", tc.args, c.Subject.CommonName, c.DNSNames, c.IPAddresses)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: poolOf(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		var server, client bool
		for _, u := range c.ExtKeyUsage {
			server = server || u == x509.ExtKeyUsageServerAuth
			client = client || u == x509.ExtKeyUsageClientAuth
		}
		if server != tc.serverAuth || client != tc.clientAuth {
			t.Errorf("%v: server auth %v, client auth %v", tc.args, server, client)
		}
		if mode(t, tc.key) != 0o600 {
			t.Errorf("%s: mode %v", tc.key, mode(t, tc.key))
		}
	}
	if c := readCert(t, "global-client-grid.pem"); !strings.Contains(strings.Join(c.DNSNames, ","), "ops.example.com") || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Errorf("additional names: %v %v", c.DNSNames, c.IPAddresses)
	}
	// The server's files load as server db1's TLS.
	if src, err := mtls.LoadRole(mtls.Files{CAFile: "grid-ca.pem", CertFile: "global-server-grid-db1.pem", KeyFile: "global-server-grid-db1-key.pem"}, mtls.RoleServer); err != nil || src.ServerName() != "db1" {
		t.Errorf("server db1's files: %v", err)
	}
	if c := readCert(t, "global-server-grid-db1.pem"); len(c.URIs) != 1 || c.URIs[0].String() != "grid://server.global.grid/db1" {
		t.Errorf("server identity: %v", c.URIs)
	}
	// Another server's, in the same directory; a name that is no file name is made one.
	if r := runCommand(t, "tls cert create", "-server", "-name=db2/x"); r.code != 1 || !strings.Contains(r.stderr, `server name "db2/x" must not contain white space or /`) {
		t.Errorf("bad server name: %+v", r)
	}
	if r := runCommand(t, "tls cert create", "-server", "-name=host:127.0.0.12"); r.code != 0 || !strings.Contains(r.stdout, "(server.global.grid, server host:127.0.0.12): global-server-grid-host_127.0.0.12.pem") {
		t.Errorf("second server: %+v", r)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "Error: give one of -server, -agent, -node and -client\n"},
		{[]string{"-server", "-agent"}, "Error: give one of -server, -agent, -node and -client, not -server and -agent\n"},
		{[]string{"-server"}, "Error: -server needs -name, the name of the server the certificate is for (grid server -name; by default its host name)\n"},
		{[]string{"-agent", "-name=db1"}, "Error: -name is for -server only: other certificates name their role alone\n"},
		{[]string{"-server", "-name=db1"}, "Error: global-server-grid-db1.pem already exists: not overwriting it\n"},
		{[]string{"-client", "-additional-ipaddress=nope"}, "Error: -additional-ipaddress \"nope\" is not an IP address\n"},
		{[]string{"-client", "-region=a.b"}, "Error: -region \"a.b\" must be a DNS label (letters, digits, hyphens)\n"},
		{[]string{"-client", "-domain=corp"}, "Error: read the CA certificate: open corp-ca.pem: no such file or directory (make one with grid tls ca create, or name it with -ca)\n"},
		{[]string{"-client", "-days=0"}, "Error: -days must be at least 1\n"},
	} {
		r := runCommand(t, "tls cert create", tc.args...)
		stderr := strings.SplitN(r.stderr, "Run 'grid", 2)[0]
		if r.code != 1 || stderr != tc.err {
			t.Errorf("%v: %+v, want %q", tc.args, r, tc.err)
		}
	}

	// Another domain: its own CA files and role names.
	if r := runCommand(t, "tls ca create", "-domain=corp", "-days=10"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if r := runCommand(t, "tls cert create", "-server", "-name=db1", "-domain=corp"); r.code != 0 || !strings.Contains(r.stdout, "(server.global.corp, server db1): global-server-corp-db1.pem") {
		t.Errorf("%+v", r)
	}
	// A certificate does not outlive its CA.
	if c, ca := readCert(t, "global-server-corp-db1.pem"), readCert(t, "corp-ca.pem"); c.NotAfter.After(ca.NotAfter) {
		t.Errorf("certificate until %s, CA until %s", c.NotAfter, ca.NotAfter)
	}
	if _, err := os.Stat(filepath.Join(dir, "corp-ca-key.pem")); err != nil {
		t.Error(err)
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestClientCommandsSpeakHTTPS runs a client command against an HTTPS server that
// verifies client certificates, with the TLS files from flags and from the
// environment, and without them.
func TestClientCommandsSpeakHTTPS(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{nil, {"-server", "-name=db1"}, {"-client"}} {
		cmd := "tls cert create"
		if args == nil {
			cmd = "tls ca create"
		}
		if r := runCommand(t, cmd, args...); r.code != 0 {
			t.Fatalf("%s %v: %+v", cmd, args, r)
		}
	}
	src, err := mtls.LoadRole(mtls.Files{CAFile: "grid-ca.pem", CertFile: "global-server-grid-db1.pem", KeyFile: "global-server-grid-db1-key.pem"}, mtls.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(membersFixture))
	}))
	srv.TLS = src.ServerConfig(true)
	srv.StartTLS()
	defer srv.Close()
	ca, cert, key := filepath.Join(dir, "grid-ca.pem"), filepath.Join(dir, "global-client-grid.pem"), filepath.Join(dir, "global-client-grid-key.pem")

	r := runCommand(t, "members", "-address="+srv.URL, "-ca-cert="+ca, "-client-cert="+cert, "-client-key="+key)
	if r.code != 0 || !strings.Contains(r.stdout, "host-127.0.0.11") {
		t.Errorf("with flags: %+v", r)
	}
	r = runCommand(t, "members", "-address="+srv.URL, "-ca-cert="+ca)
	if r.code != 1 || !strings.Contains(r.stderr, "the server requires a client certificate (-client-cert and -client-key, or GRID_CLIENT_CERT and GRID_CLIENT_KEY)") {
		t.Errorf("without a client certificate: %+v", r)
	}
	r = runCommand(t, "members", "-address="+strings.Replace(srv.URL, "https://", "http://", 1))
	if r.code != 1 || !strings.Contains(r.stderr, "the server speaks HTTPS, not HTTP: use an https:// address") {
		t.Errorf("plaintext: %+v", r)
	}
	t.Setenv("GRID_ADDR", strings.TrimPrefix(srv.URL, "https://")) // no scheme: https, since TLS is set
	t.Setenv("GRID_CACERT", ca)
	t.Setenv("GRID_CLIENT_CERT", cert)
	t.Setenv("GRID_CLIENT_KEY", key)
	r = runCommand(t, "members")
	if r.code != 0 || !strings.Contains(r.stdout, "host-127.0.0.11") {
		t.Errorf("with the environment: %+v", r)
	}
}

// TestTLSFlagsAreChecked: TLS flags given in part, or where they do not apply, or
// files of the wrong role, stop a process before it starts.
func TestTLSFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{nil, {"-server", "-name=db1"}, {"-agent"}} {
		cmd := "tls cert create"
		if args == nil {
			cmd = "tls ca create"
		}
		if r := runCommand(t, cmd, args...); r.code != 0 {
			t.Fatalf("%s %v: %+v", cmd, args, r)
		}
	}
	data := filepath.Join(dir, "data")
	agentTLS := []string{"-ca-file=grid-ca.pem", "-cert-file=global-agent-grid.pem", "-key-file=global-agent-grid-key.pem"}
	serverTLS := []string{"-ca-file=grid-ca.pem", "-cert-file=global-server-grid-db1.pem", "-key-file=global-server-grid-db1-key.pem"}
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"server", []string{"-data-dir=" + data, "-ca-file=grid-ca.pem"}, "TLS needs -ca-file, -cert-file and -key-file together; missing -cert-file, -key-file"},
		{"server", []string{"-data-dir=" + data, "-verify-https-client"}, "-verify-https-client needs TLS"},
		{"server", append([]string{"-data-dir=" + data}, agentTLS...), "certificate global-agent-grid.pem is an agent's (agent.global.grid); this process needs the certificate of a server"},
		{"storage", []string{"-data-dir=" + data, "-callers=server"}, "-callers needs TLS"},
		{"server", append([]string{"-data-dir=" + data, "-name=db2"}, serverTLS...), `certificate global-server-grid-db1.pem is server "db1"'s, and this server is "db2" (-name)`},
		{"storage", append([]string{"-data-dir=" + data, "-callers=server,admin"}, serverTLS...), "-callers: unknown role \"admin\""},
		{"storage", append([]string{"-data-dir=" + data}, agentTLS...), "this process needs the certificate of a node or a server"},
	} {
		r := runCommand(t, tc.cmd, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s %v: %+v, want %q", tc.cmd, tc.args, r, tc.want)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("a refused process created its data dir")
	}
}
