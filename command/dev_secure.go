package command

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/mtls"
	"github.com/sutragrid/grid/server"
)

// devSecurity is what `grid dev -secure` runs with: a CA and the certificates of
// every role, in the dev grid's directory, a gossip key and, once bootstrapped, the
// management token and the agent's token.
type devSecurity struct {
	ca                    string // the CA certificate's file
	server, agent, node   mtls.Files
	clientCert, clientKey string
	gossipKey             string
	token                 string // the management token's secret
	agentToken            string // the dev agent's token's secret (agent write)
}

// newDevSecurity makes a CA, a certificate for each role (the servers', agents' and
// nodes' also naming bind), and a gossip key, writing the files into dir/tls.
func newDevSecurity(dir, bind string) (*devSecurity, error) {
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		return nil, err
	}
	caCert, caKey, err := mtls.CreateCA(mtls.CAOptions{})
	if err != nil {
		return nil, fmt.Errorf("create the CA: %w", err)
	}
	caFile, caKeyFile := mtls.CAFileNames(mtls.DefaultDomain)
	files := []mtls.NewFile{
		{Path: filepath.Join(tlsDir, caFile), Data: caCert, Mode: 0o644},
		{Path: filepath.Join(tlsDir, caKeyFile), Data: caKey, Mode: 0o600},
	}
	sec := &devSecurity{ca: files[0].Path}
	var ips []net.IP
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		ips = append(ips, ip)
	}
	for _, role := range []mtls.Role{mtls.RoleServer, mtls.RoleAgent, mtls.RoleNode, mtls.RoleClient} {
		o := mtls.CertOptions{Role: role}
		if role != mtls.RoleClient {
			o.IPs = ips
		}
		certName, keyName := mtls.CertFileNames(role, mtls.DefaultRegion, mtls.DefaultDomain)
		if role == mtls.RoleServer {
			o.Server = devServerName
			certName, keyName = mtls.ServerCertFileNames(devServerName, mtls.DefaultRegion, mtls.DefaultDomain)
		}
		cert, key, err := mtls.CreateCert(caCert, caKey, o)
		if err != nil {
			return nil, fmt.Errorf("create the %s certificate: %w", role, err)
		}
		f := mtls.Files{CAFile: sec.ca, CertFile: filepath.Join(tlsDir, certName), KeyFile: filepath.Join(tlsDir, keyName)}
		files = append(files,
			mtls.NewFile{Path: f.CertFile, Data: cert, Mode: 0o644},
			mtls.NewFile{Path: f.KeyFile, Data: key, Mode: 0o600})
		switch role {
		case mtls.RoleServer:
			sec.server = f
		case mtls.RoleAgent:
			sec.agent = f
		case mtls.RoleNode:
			sec.node = f
		case mtls.RoleClient:
			sec.clientCert, sec.clientKey = f.CertFile, f.KeyFile
		}
	}
	if err := mtls.WriteNewFiles(files...); err != nil {
		return nil, err
	}
	if sec.gossipKey, err = gossip.GenerateKey(); err != nil {
		return nil, fmt.Errorf("generate the gossip key: %w", err)
	}
	return sec, nil
}

// client is an API client of the dev server at addr over HTTPS, with the client
// certificate and token.
func (sec *devSecurity) client(addr, token string) (*api.Client, error) {
	return api.NewClient(&api.Config{
		Address: "https://" + addr,
		TLS:     api.TLSConfig{CACert: sec.ca, ClientCert: sec.clientCert, ClientKey: sec.clientKey},
		Token:   token,
	})
}

// devAgentPolicy is the dev agent token's policy: what an agent needs, nothing more.
const devAgentPolicy = `agent { policy = "write" }`

// bootstrap waits for srv to lead, bootstraps its ACLs, and creates the agent's
// token, through the HTTP API, as an operator would.
func (sec *devSecurity) bootstrap(ctx context.Context, srv *server.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for !srv.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server to lead: %w", ctx.Err())
		case err := <-srv.Fatal():
			return fmt.Errorf("server: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := sec.client(srv.HTTPAddr(), "")
	if err != nil {
		return err
	}
	mgmt, err := c.ACLBootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap ACLs: %w", err)
	}
	sec.token = mgmt.SecretID
	if c, err = sec.client(srv.HTTPAddr(), sec.token); err != nil {
		return err
	}
	if _, err := c.ACLPolicyApply(ctx, "agents", api.ACLPolicyRequest{Description: "grid dev's agent", Rules: devAgentPolicy}); err != nil {
		return fmt.Errorf("create the agents' policy: %w", err)
	}
	tok, err := c.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: devAgentName, Policies: []string{"agents"}})
	if err != nil {
		return fmt.Errorf("create the agent's token: %w", err)
	}
	sec.agentToken = tok.SecretID
	return nil
}

// exports are the shell lines that point the CLI at the secure dev grid.
func (sec *devSecurity) exports(bind string) string {
	addr := "https://" + net.JoinHostPort(bind, strconv.Itoa(server.DefaultHTTPPort))
	return fmt.Sprintf(`    export %s=%s
    export %s=%s
    export %s=%s %s=%s
    export %s=%s
`, api.AddressEnv, addr, api.CACertEnv, sec.ca, api.ClientCertEnv, sec.clientCert, api.ClientKeyEnv, sec.clientKey, api.TokenEnv, sec.token)
}
