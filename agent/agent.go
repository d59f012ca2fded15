// Package agent is a Grid agent: a gossip member that finds the servers, registers
// with them and heartbeats, and a supervisor that runs the storage nodes the leader
// orders over gRPC, restarting them when they crash and reporting what happens.
//
// Where things happen: gossip.go tracks the servers (and keeps the gossip keyring of
// -encrypt); client.go registers and heartbeats, and queue.go keeps node reports
// until they are delivered; endpoint.go serves the leader's orders (tls.go checks the
// caller's certificate, leader.go that it is the leader's), which supervisor.go
// carries out: launch.go starts a node
// process and waits for its health check, isolation.go puts it in a cgroup of its
// own (package cgroup) and tells an OOM kill from another crash, watch.go restarts
// it after a crash under restart.go's policy; process.go and adopt.go let an agent that restarts take its
// running nodes back; paths.go keeps storage paths inside the root and reads logs;
// metrics.go measures the agent for GET /v1/metrics on its HTTP listener
// (-http-port, which also serves GET /v1/health; see telemetry/).
//
// Agents run on Linux only: what they need of the system (/proc, pidfds, flock,
// process groups) is in process_linux.go. Elsewhere process_other.go lets the package
// build, for the grid binary's other commands, and New refuses to start.
//
// An agent stops in one of two ways. Leave (SIGINT) is for good: it stops its nodes,
// reports them stopped, unregisters and leaves gossip. Shutdown (SIGTERM, and a crash
// alike) is a restart: its nodes keep running, and the next agent on the same data
// dir adopts them.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/dial"
	"github.com/sutragrid/grid/gossip"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/telemetry"
	"github.com/sutragrid/grid/version"
)

// Budgets of the steps of Leave.
const (
	leaveStopTimeout       = 30 * time.Second // stopping every node
	leaveFlushTimeout      = 10 * time.Second // delivering the last reports
	leaveUnregisterTimeout = 5 * time.Second
	leaveGossipTimeout     = 5 * time.Second
)

// Agent is one Grid agent. New starts it; Leave or Shutdown stops it.
type Agent struct {
	config *Config
	logger hclog.Logger
	// lock holds an exclusive flock on the data dir: two agents on one dir would
	// fight over the same nodes.
	lock *os.File

	rpcLn net.Listener
	grpc  *grpc.Server
	// http serves /v1/metrics and /v1/health (-http-port); nil when off.
	http    *telemetry.Listener
	metrics *agentMetrics
	gossip  *gossip.Pool
	servers *serverTable
	sup     *supervisor
	client  *client

	clientCancel context.CancelFunc
	clientWG     sync.WaitGroup

	// fatal receives an error the agent cannot run on with, such as giving up on
	// -join; the process running the agent should stop.
	fatal chan error

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New starts an agent: it opens its data dir and listeners, adopts the nodes a
// previous agent left running, joins gossip, and registers with the servers once
// gossip shows one. On error everything it opened is closed again.
func New(cfg *Config) (_ *Agent, err error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := CheckPlatform(); err != nil {
		return nil, err
	}
	c := *cfg
	if err := c.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		config:  &c,
		logger:  c.Logger,
		servers: newServerTable(),
		fatal:   make(chan error, 1),
		ctx:     ctx,
		cancel:  cancel,
	}
	defer func() {
		if err != nil {
			_ = a.Shutdown()
		}
	}()
	if err := mkdirAll(c.DataDir); err != nil {
		return nil, err
	}
	if a.lock, err = lockDir(c.DataDir); err != nil {
		return nil, err
	}
	root, err := newStorageRoot(c.StorageRoot)
	if err != nil {
		return nil, err
	}
	state, err := loadState(c.DataDir)
	if err != nil {
		return nil, err
	}
	if a.rpcLn, err = net.Listen("tcp", net.JoinHostPort(c.BindAddr, strconv.Itoa(c.RPCPort))); err != nil {
		return nil, fmt.Errorf("listen for gRPC: %w", err)
	}
	a.metrics = newAgentMetrics(a)
	if c.HTTPPort >= 0 {
		// HTTPS with the agent's own certificate, no client certificate asked
		// (telemetry.Listener says why).
		addr := net.JoinHostPort(c.BindAddr, strconv.Itoa(c.HTTPPort))
		if a.http, err = telemetry.Listen(addr, c.TLS.ServerConfig(false), a.metrics.reg, a.logger.Named("http")); err != nil {
			return nil, fmt.Errorf("listen for HTTP: %w", err)
		}
	}
	if err := a.setupGossip(); err != nil {
		return nil, err
	}
	queue, err := openReportQueue(filepath.Join(c.DataDir, reportsFile), a.logger.Named("client"))
	if err != nil {
		return nil, err
	}
	a.client = newClient(a.config, a.servers, queue, a.registration)
	sup := newSupervisor(a.config, root, a.advertiseHost(), a.client.queue.push)
	sup.cgroups = openCgroups(a.config, a.logger)
	a.sup = sup
	if a.sup.certs, err = loadNodeCerts(a.config); err != nil {
		return nil, err
	}
	a.client.metrics, a.sup.metrics = a.metrics, a.metrics
	a.sup.adopt(state)
	a.client.supervised = a.sup.supervisedReports
	a.startRPC()

	cctx, ccancel := context.WithCancel(context.Background())
	a.clientCancel = ccancel
	for _, loop := range []func(context.Context){a.client.heartbeatLoop, a.client.reportLoop} {
		a.clientWG.Add(1)
		go func() {
			defer a.clientWG.Done()
			loop(cctx)
		}()
	}
	if len(c.Join) > 0 {
		a.goRun(a.joinLoop)
	}
	a.logger.Info("agent started", "name", c.Name, "rpc", a.RPCAddr(), "gossip", a.GossipAddr(), "http", a.HTTPAddr(),
		"data_dir", c.DataDir, "storage_root", root.lexical, "max_nodes", c.MaxNodes, "adopting", len(state.Nodes), "tls", c.TLS.String(), "isolation", a.sup.cgroups.String())
	return a, nil
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// lockFile, in the data dir, holds the agent's lock on it (lockDir).
const lockFile = "agent.lock"

// startRPC serves the Agent gRPC service on the RPC listener.
func (a *Agent) startRPC() {
	// TLS, and its check of the caller's role, comes first (tls.go); then that an
	// order comes from the leader (leader.go).
	// Timing goes before both, to count refused calls too.
	opts := append(append(a.metrics.rpc.ServerOptions(), a.config.TLS.GRPCServerOptions(rpcAllowed)...),
		grpc.ChainUnaryInterceptor(a.leaderOnly, auth.UnaryInterceptor(a.config.Authorizer)))
	a.grpc = grpc.NewServer(opts...)
	gridpb.RegisterAgentServer(a.grpc, &endpoint{sup: a.sup})
	// The standard health service, for load balancers and probes.
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(gridpb.Agent_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(a.grpc, hs)
	ln := a.rpcLn
	a.goRun(func() {
		if err := a.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			a.logger.Error("gRPC server stopped", "error", err)
		}
	})
}

// advertiseHost is the IP the servers and the leader reach this agent and its nodes
// at: the bind IP, or gossip's advertised IP when bound to every interface.
func (a *Agent) advertiseHost() string {
	if ip := net.ParseIP(a.config.BindAddr); ip != nil && !ip.IsUnspecified() {
		return a.config.BindAddr
	}
	return a.gossip.LocalIP().String()
}

// registration is what the agent tells the servers when it registers.
func (a *Agent) registration() *gridpb.RegisterRequest {
	host, _ := os.Hostname()
	nodes := a.sup.runningReports()
	for _, n := range nodes {
		n.Agent = a.config.Name
	}
	return &gridpb.RegisterRequest{
		Name:        a.config.Name,
		Address:     a.RPCAdvertiseAddr(),
		Hostname:    host,
		Platform:    runtime.GOOS + "/" + runtime.GOARCH,
		Version:     version.String(),
		MaxNodes:    int32(a.config.MaxNodes),
		StorageRoot: a.sup.root.lexical,
		Nodes:       nodes,
		// The leader refuses, when it records a spawn, what the agent would refuse.
		ReservedPaths: ownPaths(a.config.DataDir),
		ReservedPorts: a.ownPorts(),
		Isolation:     a.sup.cgroups.String(),
	}
}

// ownPorts are the ports the agent listens on.
func (a *Agent) ownPorts() []int32 {
	var ports []int32
	for _, addr := range []string{a.RPCAddr(), a.GossipAddr(), a.HTTPAddr()} {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				ports = append(ports, int32(n))
			}
		}
	}
	return ports
}

// Fatal returns a channel that receives an error when the agent cannot go on, such
// as when it gave up joining the gossip pool after RetryMax attempts.
func (a *Agent) Fatal() <-chan error { return a.fatal }

// Name returns the agent's name.
func (a *Agent) Name() string { return a.config.Name }

// RPCAddr returns the address the gRPC endpoint listens on.
func (a *Agent) RPCAddr() string { return a.rpcLn.Addr().String() }

// HTTPAddr returns the address /v1/metrics and /v1/health are served at, or "" when
// the HTTP listener is off.
func (a *Agent) HTTPAddr() string {
	if a.http == nil {
		return ""
	}
	return a.http.Addr().String()
}

// RPCAdvertiseAddr returns the address the leader reaches the gRPC endpoint at.
func (a *Agent) RPCAdvertiseAddr() string {
	return net.JoinHostPort(a.advertiseHost(), strconv.Itoa(a.rpcLn.Addr().(*net.TCPAddr).Port))
}

// GossipAddr returns the gossip address, host:port.
func (a *Agent) GossipAddr() string {
	if a.gossip == nil {
		return ""
	}
	return a.gossip.LocalAddr()
}

// Leave stops the agent for good: it stops taking orders, stops every node and
// reports each one stopped, delivers the reports still queued, unregisters, and
// leaves gossip. Steps that cannot finish (no server answers) give up after a
// while; their errors are returned once the agent has stopped.
func (a *Agent) Leave() error {
	var errs []error
	a.stopOnce.Do(func() {
		a.logger.Info("leaving: stopping every node, then unregistering")
		a.cancel()
		dial.StopServer(a.grpc, 5*time.Second)

		ctx, cancel := context.WithTimeout(context.Background(), leaveStopTimeout)
		errs = append(errs, a.sup.stopAll(ctx, DefaultKillTimeout))
		cancel()

		if len(a.servers.list()) == 0 {
			errs = append(errs, errors.New("no server known: could not report the stopped nodes nor unregister"))
			a.stopClient()
		} else {
			ctx, cancel = context.WithTimeout(context.Background(), leaveFlushTimeout)
			errs = append(errs, a.client.queue.waitEmpty(ctx))
			cancel()
			a.stopClient()

			ctx, cancel = context.WithTimeout(context.Background(), leaveUnregisterTimeout)
			errs = append(errs, a.client.unregister(ctx))
			cancel()
		}

		if err := a.gossip.Leave(leaveGossipTimeout); err != nil {
			errs = append(errs, fmt.Errorf("leave gossip: %w", err))
		}
		a.stopErr = a.shutdown()
	})
	return errors.Join(append(errs, a.stopErr)...)
}

// Shutdown stops the agent and leaves its nodes running, for the agent that starts
// next on the same data dir to adopt: the SIGTERM path. It does not leave gossip, so
// the servers see the agent fail and come back rather than leave.
func (a *Agent) Shutdown() error {
	a.stopOnce.Do(func() {
		a.logger.Info("shutting down; storage nodes keep running")
		a.cancel()
		if a.sup != nil {
			// Let go of the nodes first, so that orders in flight end now rather
			// than stop or kill a node.
			a.sup.detach()
		}
		if a.grpc != nil {
			dial.StopServer(a.grpc, 5*time.Second)
		}
		a.stopClient()
		a.stopErr = a.shutdown()
	})
	return a.stopErr
}

func (a *Agent) stopClient() {
	if a.clientCancel != nil {
		a.clientCancel()
	}
	a.clientWG.Wait()
}

// shutdown closes what is left once the nodes are either stopped or let go of.
func (a *Agent) shutdown() error {
	var errs []error
	if a.grpc == nil && a.rpcLn != nil {
		a.rpcLn.Close()
	}
	if a.sup != nil {
		a.sup.shutdown()
	}
	if a.gossip != nil {
		errs = append(errs, a.gossip.Shutdown())
	}
	// Health checks see the agent up until its parts have stopped.
	if a.http != nil {
		a.http.Shutdown()
	}
	if a.metrics != nil {
		a.metrics.reg.Close()
	}
	a.wg.Wait()
	if a.client != nil {
		a.client.close()
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Close()) // closing releases the flock
	}
	return errors.Join(errs...)
}
