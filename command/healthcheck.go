package command

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/mtls"
)

// HealthcheckEnv names the variable that gives grid healthcheck its address when
// none is given on the command line: one image serves servers, agents and storage
// nodes, so its HEALTHCHECK runs `grid healthcheck` alone and each container says
// through its environment what it runs.
const HealthcheckEnv = "GRID_HEALTHCHECK"

// HealthcheckCommand is `grid healthcheck`, hidden from the command list: the probe
// that a container's HEALTHCHECK runs. An image FROM scratch has no shell or curl,
// only the grid binary, so the binary probes itself.
type HealthcheckCommand struct {
	Meta
}

func (c *HealthcheckCommand) Synopsis() string {
	return "Probe a server, agent or storage node for a container's health check"
}

func (c *HealthcheckCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid healthcheck [options] [ADDRESS]

  Exits 0 when the process at ADDRESS is healthy, and 1, with the reason on
  stderr, when it is not: the probe of the container image's HEALTHCHECK.

    http://HOST:PORT or https://HOST:PORT
      A server's HTTP API: healthy when it answers GET /v1/status/leader with
      a leader, so a server cut off from its quorum is unhealthy.

    grpc://HOST:PORT
      An agent's gRPC endpoint or a storage node: healthy when the standard
      gRPC health service answers SERVING. With a CA certificate and a client
      certificate (-ca-cert, -client-cert, -client-key or their GRID_
      variables), over mutual TLS: agents and nodes answer the health check to
      a certificate of any Grid role.

  ADDRESS defaults to GRID_HEALTHCHECK, then to the server's HTTP API address
  (-address, GRID_ADDR, http://127.0.0.1:7000).

Options:

  -timeout=DURATION
    How long the probe may take. Default: 5s.
` + clientHelp)
}

func (c *HealthcheckCommand) Run(args []string) int {
	const name = "healthcheck"
	fs := c.clientFlags(name)
	timeout := fs.Duration("timeout", 5*time.Second, "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return c.usageError(name, argsError(fs.Args()[1:]))
	}
	target := fs.Arg(0)
	if target == "" {
		target = os.Getenv(HealthcheckEnv)
	}
	if target == "" {
		target = c.apiConfig().Address
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return c.usageError(name, fmt.Errorf("address %q is not a URL: give http://, https:// or grpc://HOST:PORT", target))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch u.Scheme {
	case "http", "https":
		err = c.probeServer(ctx, target)
	case "grpc":
		err = c.probeGRPC(ctx, u.Host)
	default:
		return c.usageError(name, fmt.Errorf("address %q: the scheme must be http, https or grpc", target))
	}
	if err != nil {
		return c.fail("%s is unhealthy: %v", target, err)
	}
	return 0
}

// probeServer asks a server for the leader: the one public endpoint (no token is
// needed with ACLs on) that tells whether the server is part of a working cluster.
func (c *HealthcheckCommand) probeServer(ctx context.Context, addr string) error {
	c.address = addr
	client, err := c.client()
	if err != nil {
		return err
	}
	leader, err := client.Leader(ctx)
	if err != nil {
		return err
	}
	if leader == "" {
		return fmt.Errorf("the server knows no leader")
	}
	return nil
}

// probeGRPC runs the standard gRPC health check against hostPort.
func (c *HealthcheckCommand) probeGRPC(ctx context.Context, hostPort string) error {
	cfg := c.apiConfig()
	creds := insecure.NewCredentials()
	if !cfg.TLS.IsZero() {
		src, err := mtls.Load(mtls.Files{CAFile: cfg.TLS.CACert, CertFile: cfg.TLS.ClientCert, KeyFile: cfg.TLS.ClientKey})
		if err != nil {
			return fmt.Errorf("TLS for the gRPC health check (a CA certificate, and a certificate and key of the grid): %w", err)
		}
		// Any Grid role: agents and storage nodes each serve with their own.
		creds = credentials.NewTLS(src.ClientConfig())
	}
	conn, err := grpc.NewClient(hostPort, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health status %s", s)
	}
	return nil
}
