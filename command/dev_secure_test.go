package command

import (
	"os"
	"strings"
	"testing"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/mtls"
)

// TestNewDevSecurity: grid dev -secure makes loadable certificates of every role, keys
// only their owner reads, and a valid gossip key; its exports name them all.
func TestNewDevSecurity(t *testing.T) {
	dir := t.TempDir()
	sec, err := newDevSecurity(dir, "127.0.0.8")
	if err != nil {
		t.Fatal(err)
	}
	for role, f := range map[mtls.Role]mtls.Files{
		mtls.RoleServer: sec.server, mtls.RoleAgent: sec.agent, mtls.RoleNode: sec.node,
		mtls.RoleClient: {CAFile: sec.ca, CertFile: sec.clientCert, KeyFile: sec.clientKey},
	} {
		if _, err := mtls.LoadRole(f, role); err != nil {
			t.Errorf("%s: %v", role, err)
		}
		st, err := os.Stat(f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v, want 0600", role, st.Mode().Perm())
		}
	}
	if err := gossip.ValidKey(sec.gossipKey); err != nil {
		t.Errorf("gossip key: %v", err)
	}
	sec.token = "secret-token"
	out := sec.exports("127.0.0.8")
	for _, want := range []string{
		"export GRID_ADDR=https://127.0.0.8:7000\n", "export GRID_CACERT=" + sec.ca + "\n",
		"GRID_CLIENT_CERT=" + sec.clientCert, "GRID_CLIENT_KEY=" + sec.clientKey, "export GRID_TOKEN=secret-token\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exports lack %q:\n%s", want, out)
		}
	}
	if _, err := newDevSecurity(dir, "127.0.0.8"); err == nil {
		t.Error("a second newDevSecurity in the same directory succeeded, want an error")
	}
}
