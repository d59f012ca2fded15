package mtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Default validity of what `grid tls` creates.
const (
	DefaultCADays   = 1825 // five years
	DefaultCertDays = 365
)

// CAOptions describe a CA to create.
type CAOptions struct {
	// Domain is the grid's domain, the last label of every role name. Default: grid.
	Domain string
	// Days is how long the CA is valid. Default: DefaultCADays.
	Days int
	// Now is the time the CA is valid from. Default: time.Now().
	Now time.Time
}

// CreateCA makes a self-signed CA with a new ECDSA P-256 key and returns both, PEM.
func CreateCA(o CAOptions) (certPEM, keyPEM []byte, err error) {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Days == 0 {
		o.Days = DefaultCADays
	}
	if o.Days < 0 {
		return nil, nil, fmt.Errorf("days must be positive, got %d", o.Days)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Grid CA %s %x", o.Domain, serial.Bytes()[:4]),
			Organization: []string{"Grid"},
		},
		NotBefore:             o.Now.Add(-time.Minute),
		NotAfter:              o.Now.AddDate(0, 0, o.Days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// CertOptions describe a certificate to create.
type CertOptions struct {
	Role Role
	// Region and Domain make the role name role.REGION.DOMAIN. Default: global, grid.
	Region, Domain string
	// Days is how long the certificate is valid. Default: DefaultCertDays.
	Days int
	// Server is the name of the server (grid server -name) a server's certificate is
	// for, which it names (identity.go); only for RoleServer. A server refuses to run
	// with a certificate that names another, or none.
	Server string
	// DNSNames and IPs are added to the defaults of the role.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter, if set, replace the validity Days gives (tests make
	// expired certificates with them).
	NotBefore, NotAfter time.Time
}

// CreateCert makes a certificate for o.Role signed by the CA, with a new ECDSA P-256
// key, and returns both, PEM. Its common name and first DNS name are the role name;
// servers', agents' and nodes' certificates also name localhost and 127.0.0.1 (and
// ::1), for clients on the same machine. Servers and agents both serve and dial, so
// their certificates are for server and client authentication; a client's is for
// client authentication only, a node's for server authentication only.
func CreateCert(caCertPEM, caKeyPEM []byte, o CertOptions) (certPEM, keyPEM []byte, err error) {
	if _, err := ParseRole(string(o.Role)); err != nil {
		return nil, nil, err
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Days == 0 {
		o.Days = DefaultCertDays
	}
	if o.Days < 0 {
		return nil, nil, fmt.Errorf("days must be positive, got %d", o.Days)
	}
	ca, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Minute)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.AddDate(0, 0, o.Days)
	}
	if o.NotAfter.After(ca.NotAfter) {
		o.NotAfter = ca.NotAfter // a certificate cannot outlive its CA
	}
	name := o.Role.Name(o.Region, o.Domain)
	if _, _, ok := roleOfName(name); !ok {
		return nil, nil, fmt.Errorf("%q is not a valid role name: check -region and -domain", name)
	}
	var uris []*url.URL
	switch {
	case o.Role == RoleServer && o.Server != "":
		if err := validServerName(o.Server); err != nil {
			return nil, nil, err
		}
		uris = append(uris, serverURI(o.Server, o.Region+"."+o.Domain))
	case o.Server != "":
		return nil, nil, fmt.Errorf("only a server's certificate names a server, not %s's", an(string(o.Role)))
	}
	dns := []string{name, "localhost"}
	var ips []net.IP
	var usage []x509.ExtKeyUsage
	switch o.Role {
	case RoleServer, RoleAgent:
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case RoleNode:
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case RoleClient:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	dns = appendNew(dns, o.DNSNames...)
	for _, ip := range o.IPs {
		if !containsIP(ips, ip) {
			ips = append(ips, ip)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Grid"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// parseCA reads a CA certificate and its key.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, nil, errors.New("the CA certificate is not a CA")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, nil, errors.New("CA key: no PEM key in it")
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("CA key cannot sign")
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, errors.New("the CA key does not belong to the CA certificate")
	}
	return ca, signer, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		dup := false
		for _, l := range list {
			if l == m {
				dup = true
				break
			}
		}
		if !dup && m != "" {
			list = append(list, m)
		}
	}
	return list
}

func containsIP(list []net.IP, ip net.IP) bool {
	for _, l := range list {
		if l.Equal(ip) {
			return true
		}
	}
	return false
}

// CAFileNames are the files `grid tls ca create` writes: "grid-ca.pem" and
// "grid-ca-key.pem" for the domain grid.
func CAFileNames(domain string) (cert, key string) {
	return domain + "-ca.pem", domain + "-ca-key.pem"
}

// CertFileNames are the files `grid tls cert create` writes:
// "global-agent-grid.pem" and "global-agent-grid-key.pem" (a server's: ServerCertFileNames).
func CertFileNames(role Role, region, domain string) (cert, key string) {
	base := region + "-" + string(role) + "-" + domain
	return base + ".pem", base + "-key.pem"
}

// ServerCertFileNames are the files of server name's certificate:
// "global-server-grid-server-1.pem" and "global-server-grid-server-1-key.pem", so that
// the certificates of several servers can be made in one directory. Characters a
// file name should not have become "_".
func ServerCertFileNames(name, region, domain string) (cert, key string) {
	safe := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
	base := region + "-" + string(RoleServer) + "-" + domain + "-" + safe
	return base + ".pem", base + "-key.pem"
}

// NewFile is a file WriteNewFiles writes.
type NewFile struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// WriteNewFiles writes files that must not exist yet: if any does, it writes none.
// A private key gets mode 0600.
func WriteNewFiles(files ...NewFile) error {
	for _, f := range files {
		if _, err := os.Lstat(f.Path); err == nil {
			return fmt.Errorf("%s already exists: not overwriting it", f.Path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var written []string
	for _, f := range files {
		if err := writeExclusive(f); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return err
		}
		written = append(written, f.Path)
	}
	return nil
}

func writeExclusive(f NewFile) error {
	out, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode)
	if err != nil {
		return err
	}
	if _, err := out.Write(f.Data); err != nil {
		out.Close()
		os.Remove(f.Path)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(f.Path)
		return err
	}
	return nil
}
