package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
)

// TestConfigCheckSecure: off loopback, a server needs TLS, gossip encryption and
// ACLs, or -insecure.
func TestConfigCheckSecure(t *testing.T) {
	key := "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	withKeyring := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withKeyring, "serf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withKeyring, gossipKeyring), []byte(`["`+key+`"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		bind     string
		tls      bool
		key      string
		dataDir  string
		acl      bool
		insecure bool
		wantErr  string
		wantOff  int
	}{
		{name: "loopback, nothing", bind: "127.0.0.1"},
		{name: "loopback 127.0.0.11, nothing", bind: "127.0.0.11"},
		{name: "all on", bind: "0.0.0.0", tls: true, key: key, acl: true},
		{name: "keyring file counts", bind: "0.0.0.0", tls: true, dataDir: withKeyring, acl: true},
		{name: "nothing", bind: "0.0.0.0",
			wantErr: "refusing to run on 0.0.0.0, which is not a loopback address, without TLS (-ca-file, -cert-file, -key-file), gossip encryption (-encrypt) and ACLs (-acl-enabled): turn them on, or give -insecure to run without them"},
		{name: "no ACLs", bind: "10.0.0.5", tls: true, key: key, wantErr: "without ACLs (-acl-enabled): turn"},
		{name: "no TLS", bind: "10.0.0.5", key: key, acl: true, wantErr: "without TLS (-ca-file, -cert-file, -key-file): turn"},
		{name: "no key", bind: "10.0.0.5", tls: true, acl: true, wantErr: "without gossip encryption (-encrypt): turn"},
		{name: "insecure", bind: "0.0.0.0", insecure: true, wantOff: 3},
		{name: "insecure, ACLs only", bind: "0.0.0.0", acl: true, insecure: true, wantOff: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.BindAddr, cfg.EncryptKey, cfg.ACLEnabled, cfg.Insecure = tc.bind, tc.key, tc.acl, tc.insecure
			cfg.DataDir = tc.dataDir
			if cfg.DataDir == "" {
				cfg.DataDir = t.TempDir()
			}
			if tc.tls {
				cfg.TLS = &mtls.Source{}
			}
			off, err := cfg.CheckSecure()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if len(off) != tc.wantOff {
				t.Errorf("off %q, want %d", off, tc.wantOff)
			}
		})
	}
}

// TestNewRefusesInsecure: New refuses a server that CheckSecure refuses.
func TestNewRefusesInsecure(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BindAddr, cfg.DataDir = "0.0.0.0", t.TempDir()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "-insecure") {
		t.Fatalf("New: %v, want the refusal", err)
	}
}

// TestNewRefusesAnotherServersCertificate: a server's certificate must name it, since
// agents know the leader by the name in its certificate.
func TestNewRefusesAnotherServersCertificate(t *testing.T) {
	pki := gridtest.NewPKI(t)
	for _, tc := range []struct {
		cert string // the server the certificate names; "" for none
		want string
	}{
		{"db2", `is server "db2"'s, and this server is "db1" (-name)`},
		{"", "names no server: each server needs a certificate of its own, naming it, since agents obey the leader's alone (grid tls cert create -server -name=db1)"},
	} {
		src, err := mtls.LoadRole(pki.Files(t, "cert-"+tc.cert, mtls.CertOptions{Role: mtls.RoleServer, Server: tc.cert}), mtls.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.BindAddr, cfg.NodeName, cfg.DataDir, cfg.TLS = "127.0.0.1", "db1", t.TempDir(), src
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("a certificate of server %q: %v, want %q", tc.cert, err, tc.want)
		}
	}
}
