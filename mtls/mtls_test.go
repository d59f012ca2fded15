package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// pki is a CA in a temporary directory, and the certificates made with it.
type pki struct {
	t             testing.TB
	dir           string
	caCert, caKey []byte
	caFile        string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	cert, key, err := CreateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), caCert: cert, caKey: key}
	p.caFile = p.write("ca.pem", cert)
	return p
}

func (p *pki) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// files makes a certificate and returns the files of a process holding it.
func (p *pki) files(name string, o CertOptions) Files {
	p.t.Helper()
	cert, key, err := CreateCert(p.caCert, p.caKey, o)
	if err != nil {
		p.t.Fatal(err)
	}
	return Files{CAFile: p.caFile, CertFile: p.write(name+".pem", cert), KeyFile: p.write(name+"-key.pem", key)}
}

func (p *pki) source(name string, role Role) *Source {
	p.t.Helper()
	s, err := Load(p.files(name, CertOptions{Role: role}))
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// handshake runs a TLS handshake between the two configs over loopback TCP and
// returns the client's and the server's errors (the server's from its first read,
// which completes the handshake in TLS 1.3).
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			srvErr <- err
			return
		}
		_, err = tc.Write([]byte("ok"))
		srvErr <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	return err, <-srvErr
}

func TestCertificatesNameTheirRole(t *testing.T) {
	p := newPKI(t)
	for _, r := range Roles {
		s := p.source(string(r), r)
		if s.Role() != r || s.Name() != string(r)+".global.grid" {
			t.Errorf("%s: role %s, name %s", r, s.Role(), s.Name())
		}
	}
	eu := p.files("eu", CertOptions{Role: RoleServer, Region: "eu", DNSNames: []string{"grid.example.com"}})
	s, err := Load(eu)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "server.eu.grid" {
		t.Errorf("name %s", s.Name())
	}
	if _, err := LoadRole(p.files("agent2", CertOptions{Role: RoleAgent}), RoleServer); err == nil || !strings.Contains(err.Error(), "is an agent's (agent.global.grid); this process needs the certificate of a server") {
		t.Errorf("an agent certificate loaded as a server's: %v", err)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	good := p.files("server", CertOptions{Role: RoleServer})
	foreign := other.files("server", CertOptions{Role: RoleServer})
	expired := p.files("old", CertOptions{Role: RoleServer, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	for name, tc := range map[string]struct {
		f    Files
		want string
	}{
		"partial":       {Files{CAFile: good.CAFile}, "missing -cert-file, -key-file"},
		"wrong CA":      {Files{CAFile: good.CAFile, CertFile: foreign.CertFile, KeyFile: foreign.KeyFile}, "not signed by this grid's CA"},
		"expired":       {expired, "expired at"},
		"key mismatch":  {Files{CAFile: good.CAFile, CertFile: good.CertFile, KeyFile: foreign.KeyFile}, "private key does not match"},
		"no such file":  {Files{CAFile: good.CAFile + ".missing", CertFile: good.CertFile, KeyFile: good.KeyFile}, "no such file"},
		"CA is no cert": {Files{CAFile: good.KeyFile, CertFile: good.CertFile, KeyFile: good.KeyFile}, "no PEM certificate"},
	} {
		if _, err := Load(tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	if s, err := Load(Files{}); s != nil || err != nil {
		t.Errorf("no files: %v, %v", s, err)
	}
}

func TestHandshakesCheckCAAndRole(t *testing.T) {
	p := newPKI(t)
	server, agent, client, node := p.source("server", RoleServer), p.source("agent", RoleAgent), p.source("client", RoleClient), p.source("node", RoleNode)
	foreign := newPKI(t).source("server", RoleServer)
	expired, err := Load(p.files("expired", CertOptions{Role: RoleAgent}))
	if err != nil {
		t.Fatal(err)
	}
	// Made valid, then let expire: the process loaded it while it was valid.
	expiredFiles := p.files("expired2", CertOptions{Role: RoleAgent, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	expiredCert, _ := tls.LoadX509KeyPair(expiredFiles.CertFile, expiredFiles.KeyFile)
	expired.cur.Load().cert = expiredCert

	for _, tc := range []struct {
		name           string
		server, client *tls.Config
		clientErr      string // "" for success
		serverErr      string
	}{
		{name: "server to server", server: server.ServerConfig(true), client: server.ClientConfig(RoleServer)},
		{name: "agent to server", server: server.ServerConfig(true), client: agent.ClientConfig(RoleServer)},
		{name: "agent dials a node", server: node.ServerConfig(true), client: agent.ClientConfig(RoleNode)},
		{name: "an agent answers where a server is expected", server: agent.ServerConfig(true), client: server.ClientConfig(RoleServer),
			clientErr: "certificate agent.global.grid is not the certificate of a server of global.grid"},
		{name: "only servers accepted", server: node.ServerConfig(true, RoleServer), client: agent.ClientConfig(RoleNode),
			serverErr: "certificate agent.global.grid is not the certificate of a server"},
		{name: "a client cannot serve", server: client.ServerConfig(true), client: server.ClientConfig(RoleClient),
			clientErr: "incompatible key usage"},
		{name: "foreign CA, server side", server: foreign.ServerConfig(true), client: agent.ClientConfig(RoleServer),
			clientErr: "not signed by this grid's CA"},
		{name: "foreign CA, client side", server: server.ServerConfig(true), client: foreign.ClientConfig(RoleServer),
			clientErr: "not signed by this grid's CA"},
		{name: "client certificate of a foreign CA", server: server.ServerConfig(true),
			client: &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &foreign.cur.Load().cert, nil
			}},
			clientErr: "unknown certificate authority"},
		{name: "expired client", server: server.ServerConfig(true), client: expired.ClientConfig(RoleServer),
			clientErr: "expired certificate"},
		{name: "no client certificate", server: server.ServerConfig(true), client: &tls.Config{InsecureSkipVerify: true},
			clientErr: "certificate required"},
		{name: "no client certificate, optional", server: server.ServerConfig(false), client: &tls.Config{InsecureSkipVerify: true}},
		{name: "TLS 1.1 refused", server: server.ServerConfig(false), client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			clientErr: "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr := handshake(t, tc.server, tc.client)
			if tc.clientErr == "" && tc.serverErr == "" {
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v; server: %v", cerr, serr)
				}
				return
			}
			if tc.clientErr != "" && (cerr == nil || !strings.Contains(cerr.Error(), tc.clientErr)) {
				t.Errorf("client error %v, want %q (server: %v)", cerr, tc.clientErr, serr)
			}
			if tc.serverErr != "" && (serr == nil || !strings.Contains(serr.Error(), tc.serverErr)) {
				t.Errorf("server error %v, want %q (client: %v)", serr, tc.serverErr, cerr)
			}
		})
	}
}

// peerSerial returns the serial of the certificate the server presents.
func peerSerial(t *testing.T, server, client *tls.Config) string {
	t.Helper()
	var serial string
	c := client.Clone()
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		serial = cs.PeerCertificates[0].SerialNumber.Text(16)
		return verify(cs)
	}
	if cerr, serr := handshake(t, server, c); cerr != nil || serr != nil {
		t.Fatalf("client: %v; server: %v", cerr, serr)
	}
	return serial
}

func TestReloadSwapsCertificatesForNewHandshakes(t *testing.T) {
	p := newPKI(t)
	f := p.files("server", CertOptions{Role: RoleServer})
	s, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	agent := p.source("agent", RoleAgent)
	srvConf, cliConf := s.ServerConfig(true), agent.ClientConfig(RoleServer)
	before := peerSerial(t, srvConf, cliConf)

	// A connection open across the reload keeps working.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, srvConf)
		io.Copy(tc, tc)
		tc.Close()
	}()
	open, err := tls.Dial("tcp", ln.Addr().String(), cliConf)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	next := p.files("server-next", CertOptions{Role: RoleServer})
	copyFile(t, next.CertFile, f.CertFile)
	copyFile(t, next.KeyFile, f.KeyFile)
	ch, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Cert || ch.CA || ch.OldSerial != before || ch.Serial == before {
		t.Errorf("change %+v (old serial %s)", ch, before)
	}
	if after := peerSerial(t, srvConf, cliConf); after != ch.Serial {
		t.Errorf("new handshakes see serial %s, want %s", after, ch.Serial)
	}
	if _, err := open.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(open, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("open connection after reload: %q, %v", buf, err)
	}

	// Half-written files (a key that does not match) are refused; the source keeps
	// what it had.
	half := p.files("server-half", CertOptions{Role: RoleServer})
	copyFile(t, half.CertFile, f.CertFile)
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), "still using the previous certificates") {
		t.Errorf("reload of mismatched files: %v", err)
	}
	if got := peerSerial(t, srvConf, cliConf); got != ch.Serial {
		t.Errorf("after a failed reload: serial %s, want %s", got, ch.Serial)
	}
	// Another role is refused too.
	ag := p.files("agent-again", CertOptions{Role: RoleAgent})
	copyFile(t, ag.CertFile, f.CertFile)
	copyFile(t, ag.KeyFile, f.KeyFile)
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), "the new certificate is agent.global.grid, the process is server.global.grid") {
		t.Errorf("reload to another role: %v", err)
	}
}

func TestReloadRotatesTheCA(t *testing.T) {
	oldCA, newCA := newPKI(t), newPKI(t)
	f := oldCA.files("server", CertOptions{Role: RoleServer})
	s, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	agentNew := newCA.source("agent", RoleAgent)
	if cerr, _ := handshake(t, s.ServerConfig(true), agentNew.ClientConfig(RoleServer)); cerr == nil {
		t.Fatal("an agent of the new CA was accepted before the CA was trusted")
	}
	// Step one of a rotation: trust both CAs.
	copyBytes(t, append(append([]byte{}, oldCA.caCert...), newCA.caCert...), f.CAFile)
	ch, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !ch.CA || ch.Cert || ch.CAs != 2 {
		t.Errorf("change %+v", ch)
	}
	// The agent trusts the new CA only, so it cannot verify the server yet; the
	// server accepts the agent's certificate all the same.
	_, serr := handshake(t, s.ServerConfig(true), agentNew.ClientConfig(RoleServer))
	if serr != nil && strings.Contains(serr.Error(), "unknown certificate authority") {
		t.Errorf("server still refuses the new CA: %v", serr)
	}
}

func TestGRPCMethodsCheckTheCallersRole(t *testing.T) {
	p := newPKI(t)
	server := p.source("server", RoleServer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(server.GRPCServerOptions(func(method string) []Role {
		if method == "/grpc.health.v1.Health/Check" {
			return []Role{RoleServer}
		}
		return nil
	})...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	call := func(src *Source) error {
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(src.ClientConfig(RoleServer))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(p.source("server2", RoleServer)); err != nil {
		t.Errorf("server: %v", err)
	}
	err = call(p.source("agent", RoleAgent))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is agent.global.grid") {
		t.Errorf("agent: %v", err)
	}
	err = call(newPKI(t).source("server", RoleServer))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not signed by this grid's CA") {
		t.Errorf("foreign server: %v", err)
	}
}

func TestAPIClientChecksTheServer(t *testing.T) {
	p := newPKI(t)
	server := p.source("server", RoleServer)
	agent := p.source("agent", RoleAgent)
	clientFiles := p.files("client", CertOptions{Role: RoleClient})
	conf, err := APIClientConfig("127.0.0.1", p.caFile, clientFiles.CertFile, clientFiles.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cerr, serr := handshake(t, server.ServerConfig(true), conf); cerr != nil || serr != nil {
		t.Errorf("client to server: %v, %v", cerr, serr)
	}
	// An agent's certificate names 127.0.0.1 (and would do for a browser there), but
	// not 10.1.2.3, nor does it say "server".
	byIP, _ := APIClientConfig("10.1.2.3", p.caFile, "", "")
	if cerr, _ := handshake(t, agent.ServerConfig(false), byIP); cerr == nil || !strings.Contains(cerr.Error(), "neither a Grid server's certificate nor one for 10.1.2.3") {
		t.Errorf("client to an agent: %v", cerr)
	}
	foreign := newPKI(t)
	wrong, err := APIClientConfig("127.0.0.1", foreign.caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cerr, _ := handshake(t, server.ServerConfig(false), wrong); cerr == nil || !strings.Contains(cerr.Error(), "is not signed by the CA in "+foreign.caFile) {
		t.Errorf("wrong CA: %v", cerr)
	}
	noCert, _ := APIClientConfig("127.0.0.1", p.caFile, "", "")
	cerr, _ := handshake(t, server.ServerConfig(true), noCert)
	if got := DescribeRemoteError(cerr, ""); !strings.Contains(got, "requires a client certificate") {
		t.Errorf("no client certificate: %v -> %q", cerr, got)
	}
	if _, err := APIClientConfig("127.0.0.1", p.caFile, clientFiles.CertFile, ""); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

func TestCreateCertificates(t *testing.T) {
	p := newPKI(t)
	cert, _, err := CreateCert(p.caCert, p.caKey, CertOptions{Role: RoleServer, Region: "eu", Domain: "corp",
		Days: 10, DNSNames: []string{"grid.example.com"}, IPs: []net.IP{net.ParseIP("10.0.0.5")}})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, cert)
	if c.Subject.CommonName != "server.eu.corp" || strings.Join(c.DNSNames, ",") != "server.eu.corp,localhost,grid.example.com" {
		t.Errorf("names: %s %v", c.Subject.CommonName, c.DNSNames)
	}
	if len(c.IPAddresses) != 3 || !c.IPAddresses[2].Equal(net.ParseIP("10.0.0.5")) {
		t.Errorf("IPs: %v", c.IPAddresses)
	}
	if d := time.Until(c.NotAfter); d < 9*24*time.Hour || d > 10*24*time.Hour {
		t.Errorf("valid until %s", c.NotAfter)
	}
	other := newPKI(t)
	if _, _, err := CreateCert(p.caCert, other.caKey, CertOptions{Role: RoleAgent}); err == nil {
		t.Error("signed with a key that is not the CA's")
	}
	if _, _, err := CreateCert(p.caCert, p.caKey, CertOptions{Role: "admin"}); err == nil {
		t.Error("an unknown role was accepted")
	}
	if cf, kf := CertFileNames(RoleAgent, "global", "grid"); cf != "global-agent-grid.pem" || kf != "global-agent-grid-key.pem" {
		t.Errorf("file names %s %s", cf, kf)
	}
}

func TestWriteNewFilesRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b-key.pem")
	if err := os.WriteFile(b, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteNewFiles(NewFile{a, []byte("new"), 0o644}, NewFile{b, []byte("new"), 0o600})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was written: %v", a, err)
	}
	if got, _ := os.ReadFile(b); string(got) != "keep" {
		t.Errorf("%s changed: %q", b, got)
	}
	os.Remove(b)
	if err := WriteNewFiles(NewFile{a, []byte("new"), 0o644}, NewFile{b, []byte("new"), 0o600}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(b); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	copyBytes(t, data, to)
}

func copyBytes(t *testing.T, data []byte, to string) {
	t.Helper()
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
