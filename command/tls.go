package command

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/mtls"
)

// TLSCommand is `grid tls`: the parent of the commands that make the CA and the
// certificates of mutual TLS.
type TLSCommand struct{}

func (c *TLSCommand) Synopsis() string { return "Create the CA and certificates of mutual TLS" }

func (c *TLSCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid tls <subcommand> [options]

  Create a certificate authority and the certificates that servers, agents,
  storage nodes and clients use for mutual TLS. Every certificate names its role
  (server.global.grid, agent.global.grid, client.global.grid, node.global.grid),
  and every process checks the role of its peers, not only that the CA signed
  their certificates: an agent's certificate cannot act as a server.

    grid tls ca create
    grid tls cert create -server
    grid tls cert create -agent
    grid tls cert create -node
    grid tls cert create -client

Subcommands:

  ca      Create the certificate authority
  cert    Create a certificate for a server, an agent, a storage node or a client

  Run 'grid tls <subcommand> -help' for the details of each.
`)
}

func (c *TLSCommand) HelpTemplate() string { return parentHelpTemplate }

func (c *TLSCommand) Run([]string) int { return cli.RunResultHelp }

// TLSCACommand is `grid tls ca`.
type TLSCACommand struct{}

func (c *TLSCACommand) Synopsis() string { return "Create the certificate authority" }

func (c *TLSCACommand) Help() string {
	return strings.TrimSpace(`
Usage: grid tls ca <subcommand> [options]

Subcommands:

  create    Create a CA certificate and key in the current directory
`)
}

func (c *TLSCACommand) HelpTemplate() string { return parentHelpTemplate }

func (c *TLSCACommand) Run([]string) int { return cli.RunResultHelp }

// TLSCertCommand is `grid tls cert`.
type TLSCertCommand struct{}

func (c *TLSCertCommand) Synopsis() string { return "Create certificates" }

func (c *TLSCertCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid tls cert <subcommand> [options]

Subcommands:

  create    Create a certificate and key, signed by the CA, in the current directory
`)
}

func (c *TLSCertCommand) HelpTemplate() string { return parentHelpTemplate }

func (c *TLSCertCommand) Run([]string) int { return cli.RunResultHelp }

// TLSCACreateCommand is `grid tls ca create`.
type TLSCACreateCommand struct {
	Meta
}

func (c *TLSCACreateCommand) Synopsis() string { return "Create a CA certificate and key" }

func (c *TLSCACreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid tls ca create [options]

  Creates a certificate authority for a grid's mutual TLS: a self-signed CA
  certificate and its ECDSA P-256 key, written to the current directory as
  DOMAIN-ca.pem and DOMAIN-ca-key.pem (grid-ca.pem and grid-ca-key.pem by
  default; the key with mode 0600). Existing files are never overwritten.

  Every process of the grid gets the CA certificate (-ca-file); keep the key
  where certificates are made, and nowhere else.

Options:

  -days=N
    How many days the CA is valid. Default: 1825 (five years).

  -domain=DOMAIN
    The grid's domain, the last part of every role name (server.global.DOMAIN)
    and of the file names. Default: grid.
`)
}

func (c *TLSCACreateCommand) Run(args []string) int {
	const name = "tls ca create"
	fs := c.flagSet(name)
	days := fs.Int("days", mtls.DefaultCADays, "")
	domain := fs.String("domain", mtls.DefaultDomain, "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return c.usageError(name, argsError(fs.Args()))
	case *days < 1:
		return c.usageError(name, fmt.Errorf("-days must be at least 1"))
	case !validLabel(*domain):
		return c.usageError(name, fmt.Errorf("-domain %q must be a DNS label (letters, digits, hyphens)", *domain))
	}
	cert, key, err := mtls.CreateCA(mtls.CAOptions{Domain: *domain, Days: *days})
	if err != nil {
		return c.fail("create CA: %v", err)
	}
	certFile, keyFile := mtls.CAFileNames(*domain)
	if err := mtls.WriteNewFiles(mtls.NewFile{Path: certFile, Data: cert, Mode: 0o644}, mtls.NewFile{Path: keyFile, Data: key, Mode: 0o600}); err != nil {
		return c.fail("%v", err)
	}
	c.Ui.Output("==> CA certificate: " + certFile)
	c.Ui.Output("==> CA key: " + keyFile)
	return 0
}

// TLSCertCreateCommand is `grid tls cert create`.
type TLSCertCreateCommand struct {
	Meta
}

func (c *TLSCertCreateCommand) Synopsis() string { return "Create a certificate and key" }

func (c *TLSCertCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid tls cert create -server -name=NAME|-agent|-node|-client [options]

  Creates a certificate and its ECDSA P-256 key, signed by the CA, in the
  current directory: REGION-ROLE-DOMAIN.pem and REGION-ROLE-DOMAIN-key.pem
  (global-agent-grid.pem and global-agent-grid-key.pem for -agent; the key
  with mode 0600). A server's are REGION-server-DOMAIN-NAME.pem and
  REGION-server-DOMAIN-NAME-key.pem. Existing files are never overwritten.

  Each server needs its own certificate, naming it: agents obey the leader's
  certificate alone, and a server refuses to start with a certificate made for
  another.

  The certificate names its role, ROLE.REGION.DOMAIN (server.global.grid), as
  its common name and first DNS name; each process checks its peers' roles:

    -server   grid server: may join Raft and call the servers' internal service,
              orders agents, writes to the event store
    -agent    grid agent: calls the servers' agent service
    -node     a storage node (the agent hands it to its nodes; or an event store)
    -client   the CLI and other clients of the HTTP API or of storage nodes

  Server, agent and node certificates also name localhost, 127.0.0.1 and ::1,
  for clients on the same machine that check host names (curl); Grid's own
  clients check the role instead, whatever address a server has.

Options:

  -server, -agent, -node, -client
    The role; exactly one.

  -name=NAME
    With -server, required: the name of the server the certificate is for,
    as it runs (grid server -name; by default the host name, with the bind
    IP appended when it binds to one: "db1" or "db1-10.0.0.5"). The
    certificate names it as grid://server.REGION.DOMAIN/NAME.

  -region=REGION
    The region of the role name. Default: global.

  -domain=DOMAIN
    The domain of the role name, as the CA was made with. Default: grid.

  -days=N
    How many days the certificate is valid (at most as long as the CA).
    Default: 365.

  -ca=FILE, -key=FILE
    The CA certificate and key. Default: DOMAIN-ca.pem and DOMAIN-ca-key.pem.

  -additional-dnsname=NAME
    Another DNS name for the certificate. May be given several times.

  -additional-ipaddress=IP
    Another IP address for the certificate. May be given several times.
`)
}

func (c *TLSCertCreateCommand) Run(args []string) int {
	const name = "tls cert create"
	fs := c.flagSet(name)
	roles := map[mtls.Role]*bool{}
	for _, r := range mtls.Roles {
		roles[r] = fs.Bool(string(r), false, "")
	}
	region := fs.String("region", mtls.DefaultRegion, "")
	domain := fs.String("domain", mtls.DefaultDomain, "")
	days := fs.Int("days", mtls.DefaultCertDays, "")
	server := fs.String("name", "", "")
	caFile := fs.String("ca", "", "")
	keyFile := fs.String("key", "", "")
	var dnsNames, ipAddrs stringList
	fs.Var(&dnsNames, "additional-dnsname", "")
	fs.Var(&ipAddrs, "additional-ipaddress", "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	var role mtls.Role
	for _, r := range mtls.Roles {
		if *roles[r] {
			if role != "" {
				return c.usageError(name, fmt.Errorf("give one of -server, -agent, -node and -client, not -%s and -%s", role, r))
			}
			role = r
		}
	}
	switch {
	case fs.NArg() > 0:
		return c.usageError(name, argsError(fs.Args()))
	case role == "":
		return c.usageError(name, fmt.Errorf("give one of -server, -agent, -node and -client"))
	case role == mtls.RoleServer && *server == "":
		return c.usageError(name, fmt.Errorf("-server needs -name, the name of the server the certificate is for (grid server -name; by default its host name)"))
	case role != mtls.RoleServer && *server != "":
		return c.usageError(name, fmt.Errorf("-name is for -server only: other certificates name their role alone"))
	case *days < 1:
		return c.usageError(name, fmt.Errorf("-days must be at least 1"))
	case !validLabel(*region):
		return c.usageError(name, fmt.Errorf("-region %q must be a DNS label (letters, digits, hyphens)", *region))
	case !validLabel(*domain):
		return c.usageError(name, fmt.Errorf("-domain %q must be a DNS label (letters, digits, hyphens)", *domain))
	}
	var ips []net.IP
	for _, s := range ipAddrs {
		ip := net.ParseIP(s)
		if ip == nil {
			return c.usageError(name, fmt.Errorf("-additional-ipaddress %q is not an IP address", s))
		}
		ips = append(ips, ip)
	}
	defCA, defKey := mtls.CAFileNames(*domain)
	if *caFile == "" {
		*caFile = defCA
	}
	if *keyFile == "" {
		*keyFile = defKey
	}
	caCert, err := os.ReadFile(*caFile)
	if err != nil {
		return c.fail("read the CA certificate: %v (make one with grid tls ca create, or name it with -ca)", err)
	}
	caKey, err := os.ReadFile(*keyFile)
	if err != nil {
		return c.fail("read the CA key: %v (name it with -key)", err)
	}
	cert, key, err := mtls.CreateCert(caCert, caKey, mtls.CertOptions{Role: role, Region: *region, Domain: *domain,
		Days: *days, Server: *server, DNSNames: dnsNames, IPs: ips})
	if err != nil {
		return c.fail("create certificate: %v", err)
	}
	certOut, keyOut := mtls.CertFileNames(role, *region, *domain)
	if role == mtls.RoleServer {
		certOut, keyOut = mtls.ServerCertFileNames(*server, *region, *domain)
	}
	if err := mtls.WriteNewFiles(mtls.NewFile{Path: certOut, Data: cert, Mode: 0o644}, mtls.NewFile{Path: keyOut, Data: key, Mode: 0o600}); err != nil {
		return c.fail("%v", err)
	}
	c.Ui.Output(fmt.Sprintf("==> Using CA %s and key %s", filepath.Clean(*caFile), filepath.Clean(*keyFile)))
	what := role.Name(*region, *domain)
	if role == mtls.RoleServer {
		what += ", server " + *server
	}
	c.Ui.Output(fmt.Sprintf("==> %s certificate (%s): %s", strings.ToUpper(string(role[:1]))+string(role[1:]), what, certOut))
	c.Ui.Output(fmt.Sprintf("==> %s key: %s", strings.ToUpper(string(role[:1]))+string(role[1:]), keyOut))
	return 0
}

// validLabel reports whether s is one DNS label.
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
