package mtls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files a process's TLS comes from.
type Files struct {
	// CAFile holds the CA certificate(s) that sign every certificate of the grid.
	// During a change of CA it holds both, old and new.
	CAFile string
	// CertFile and KeyFile are the process's own certificate (which names its role)
	// and private key.
	CertFile, KeyFile string
}

// IsZero reports whether no file is named: TLS is off.
func (f Files) IsZero() bool { return f == Files{} }

// check reports a set of files that is neither complete nor empty.
func (f Files) check() error {
	var missing []string
	for flag, v := range map[string]string{"-ca-file": f.CAFile, "-cert-file": f.CertFile, "-key-file": f.KeyFile} {
		if v == "" {
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("TLS needs -ca-file, -cert-file and -key-file together; missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Source holds a process's CA, certificate and key, and hands out tls.Configs that
// always use the ones it holds now: Reload swaps them for every listener and dialer
// at once, for the handshakes that follow, without closing any connection.
type Source struct {
	files Files
	now   func() time.Time

	mu  sync.Mutex // serializes Reload
	cur atomic.Pointer[bundle]
}

// bundle is one loaded generation of the files.
type bundle struct {
	cert   tls.Certificate
	leaf   *x509.Certificate
	roots  *x509.CertPool
	cas    []*x509.Certificate
	caPEM  []byte
	role   Role
	suffix string // "global.grid": the region and domain of the process's role name
	server string // the server's name, in a server's certificate (identity.go)

	serverConfs sync.Map // serverKey -> *tls.Config, made on first use
}

// Load reads the files and checks them: the certificate must name a Grid role, be
// signed by the CA and be valid now. Every file or none must be named; with none,
// Load returns nil (TLS off) and no error.
func Load(f Files) (*Source, error) {
	if f.IsZero() {
		return nil, nil
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	s := &Source{files: f, now: time.Now}
	b, err := loadBundle(f, s.now())
	if err != nil {
		return nil, err
	}
	s.cur.Store(b)
	return s, nil
}

// LoadRole is Load for a process that must hold a certificate of one of roles (a
// server a server certificate, say).
func LoadRole(f Files, roles ...Role) (*Source, error) {
	s, err := Load(f)
	if err != nil || s == nil {
		return s, err
	}
	if b := s.cur.Load(); !overlaps([]Role{b.role}, roles) {
		return nil, fmt.Errorf("certificate %s is %s's (%s); this process needs the certificate of %s", f.CertFile, an(string(b.role)), string(b.role)+"."+b.suffix, anRoles(roles))
	}
	return s, nil
}

func loadBundle(f Files, now time.Time) (*bundle, error) {
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", f.CAFile, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", f.CertFile, err)
		}
		cert.Leaf = leaf
	}
	role, suffix, err := ownRole(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", f.CertFile, err)
	}
	b := &bundle{cert: cert, leaf: leaf, roots: roots, cas: cas, caPEM: caPEM, role: role, suffix: suffix}
	if role == RoleServer {
		b.server = serverNameOf(leaf, suffix)
	}
	if err := b.verifyChain(cert.Certificate, x509.ExtKeyUsageAny, now); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", f.CertFile, err)
	}
	return b, nil
}

// parseCerts returns every certificate in a PEM file.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}

// Change says what a Reload changed.
type Change struct {
	// Cert and CA are true when the certificate, or the CA file, differ from before.
	Cert, CA bool
	// OldSerial and Serial are the serial numbers of the certificate before and after.
	OldSerial, Serial string
	// NotAfter is when the certificate now held expires.
	NotAfter time.Time
	// CAs is how many CA certificates the CA file holds now.
	CAs int
}

// LogArgs are the change as key-value pairs for a log line.
func (c Change) LogArgs() []any {
	return []any{"cert_changed", c.Cert, "ca_changed", c.CA, "old_serial", c.OldSerial, "serial", c.Serial,
		"expires", c.NotAfter.UTC().Format(time.RFC3339), "ca_certs", c.CAs}
}

// Reload reads the files again and, if they are sound, uses them for every handshake
// from now on; connections already open stay as they are. On error the source keeps
// what it held. The new certificate must name the same role as the old one, and a
// server's the same server.
func (s *Source) Reload() (Change, error) {
	if s == nil {
		return Change{}, errors.New("TLS is not enabled")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := loadBundle(s.files, s.now())
	if err != nil {
		return Change{}, fmt.Errorf("reload TLS (still using the previous certificates): %w", err)
	}
	old := s.cur.Load()
	if b.role != old.role || b.suffix != old.suffix {
		return Change{}, fmt.Errorf("reload TLS (still using the previous certificates): the new certificate is %s, the process is %s",
			string(b.role)+"."+b.suffix, string(old.role)+"."+old.suffix)
	}
	if b.server != old.server {
		return Change{}, fmt.Errorf("reload TLS (still using the previous certificates): the new certificate is server %q's, the process is server %q", b.server, old.server)
	}
	s.cur.Store(b)
	return Change{
		Cert:      !bytes.Equal(old.leaf.Raw, b.leaf.Raw),
		CA:        !bytes.Equal(old.caPEM, b.caPEM),
		OldSerial: old.leaf.SerialNumber.Text(16),
		Serial:    b.leaf.SerialNumber.Text(16),
		NotAfter:  b.leaf.NotAfter,
		CAs:       len(b.cas),
	}, nil
}

// Role is the role the process's certificate names.
func (s *Source) Role() Role { return s.cur.Load().role }

// Name is the process's role name ("server.global.grid").
func (s *Source) Name() string {
	b := s.cur.Load()
	return string(b.role) + "." + b.suffix
}

// NotAfter is when the certificate held now expires.
func (s *Source) NotAfter() time.Time { return s.cur.Load().leaf.NotAfter }

// Files are the files the source reads.
func (s *Source) Files() Files { return s.files }

// CAPEM is the content of the CA file as last loaded.
func (s *Source) CAPEM() []byte { return s.cur.Load().caPEM }

// PeerRoles returns the roles a peer's certificate names in this process's region
// and domain; a certificate of another region names none.
func (s *Source) PeerRoles(cert *x509.Certificate) []Role {
	return rolesIn(cert, s.cur.Load().suffix)
}

// Verify checks a peer's certificate chain (leaf first) as a handshake would: signed by
// the CA held now, valid now, meant for usage, and naming one of roles.
func (s *Source) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, roles ...Role) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	b := s.cur.Load()
	if err := b.verifyChain(raw, usage, s.now()); err != nil {
		return err
	}
	return b.checkRole(chain[0], roles)
}

// verifyChain checks that chain (DER, leaf first) leads to one of the CAs, is valid at
// now and allows usage.
func (b *bundle) verifyChain(chain [][]byte, usage x509.ExtKeyUsage, now time.Time) error {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return fmt.Errorf("unreadable certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certificate %s expired at %s", describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate %s is not valid before %s", describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: b.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknown):
		return fmt.Errorf("certificate %s is not signed by this grid's CA: %w", describe(leaf), err)
	}
	return fmt.Errorf("certificate %s: %w", describe(leaf), err)
}

// checkRole refuses a peer certificate that names none of roles (any Grid role of
// this region when roles is empty).
func (b *bundle) checkRole(cert *x509.Certificate, roles []Role) error {
	if len(roles) == 0 {
		roles = Roles
	}
	if overlaps(rolesIn(cert, b.suffix), roles) {
		return nil
	}
	return fmt.Errorf("certificate %s is not the certificate of %s of %s", describe(cert), anRoles(roles), b.suffix)
}

// ServerConfig is the tls.Config of a listener. A client must present a certificate
// when requireClient is set; one it presents must be signed by the CA and name one
// of accept (any Grid role of this region when accept is empty), or the handshake
// fails. The certificate and CA are those held at each handshake.
func (s *Source) ServerConfig(requireClient bool, accept ...Role) *tls.Config {
	if s == nil {
		return nil
	}
	key := serverKey{require: requireClient, accept: fmt.Sprint(accept)}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return &s.cur.Load().cert, nil
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		b := s.cur.Load()
		if c, ok := b.serverConfs.Load(key); ok {
			return c.(*tls.Config), nil
		}
		c := b.serverConfig(requireClient, accept, base.NextProtos)
		b.serverConfs.Store(key, c)
		return c, nil
	}
	return base
}

type serverKey struct {
	require bool
	accept  string
}

func (b *bundle) serverConfig(requireClient bool, accept []Role, nextProtos []string) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.cert},
		ClientCAs:    b.roots,
		ClientAuth:   auth,
		NextProtos:   nextProtos,
		// The chain is verified by crypto/tls against ClientCAs (its alerts tell the
		// client what is wrong: expired, unknown CA); the role is ours to check.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return b.checkRole(cs.PeerCertificates[0], accept)
		},
	}
}

// ClientConfig is the tls.Config of a dialer to peers that must present a
// certificate signed by the CA and naming one of expect. The dialer presents the
// process's own certificate. Peers are recognised by role, not by host name: the
// address a peer is dialed at (an IP from gossip or a registration) is not in its
// certificate, its role is.
func (s *Source) ClientConfig(expect ...Role) *tls.Config {
	if s == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified in VerifyConnection instead: against the CA held at the time of the
		// handshake (RootCAs would be fixed at creation), and by role.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &s.cur.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, expect...)
		},
	}
}
