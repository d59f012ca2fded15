// Package server is a Grid server: a Raft peer that keeps the replicated state (fsm/),
// a gossip member that finds the other servers and bootstraps Raft with them, a gRPC
// endpoint for agents and for the other servers, and the HTTP API that clients use.
//
// Where things happen: gossip.go joins the gossip pool (gossip/ tracks its members);
// bootstrap.go forms the cluster; leader.go runs while this server leads, and adds
// the servers gossip finds to Raft as non-voters, which autopilot.go (hashicorp's
// raft-autopilot, on the leader) promotes once they are stable, as it removes dead
// ones, and autopilot_http.go serves its configuration and health; rpc.go
// applies writes, and forward.go is the one way a follower reaches the leader;
// agents.go takes the agents' calls and heartbeat.go judges their health from their
// heartbeats, by the thresholds of thresholds.go, which SIGHUP may change; nodes.go records node intents and reconcile.go, on the leader, orders
// agents to carry them out and corrects drift; shipper.go sends the events to the
// event store, and eventfeed.go keeps the latest for readers; http.go,
// events_http.go, events_stream.go (thin over the query engine in eventquery/),
// consistent.go (the leader's confirmation that it still leads, before a read),
// status_http.go, snapshot.go and keyring.go (the gossip keyring) serve the API;
// names.go holds every agent and node name the grid has known, and resolves the
// names of event queries; metrics.go measures the server for GET /v1/metrics
// (telemetry/). Every request passes the Authorizer (auth/); acl.go
// makes it acl's with -acl-enabled, and acl_http.go serves the ACL endpoints.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/dial"
	"github.com/sutragrid/grid/durable"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/gossip"
)

// Server is one Grid server. New starts it; Shutdown stops it.
type Server struct {
	config *Config
	logger hclog.Logger
	// logs are the subsystems' named loggers, made once.
	logs struct {
		leader, bootstrap, agents, heartbeat, nodes, shipper, http hclog.Logger
	}
	// id is the server's Raft ID, kept in the data dir so it survives restarts.
	id string

	fsm       *fsm.FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	logStore  *raftboltdb.BoltStore
	// stable is Raft's view of logStore as its stable store (stableguard.go).
	stable *stableGuard
	// hadState is true when Raft state existed at start: such a server never bootstraps.
	hadState bool
	leaderCh chan bool

	gossip  *gossip.Pool
	members *gossip.Members
	// keyringPool is gossip once it runs, for the keyring endpoints, which may be
	// asked before it does (keyring.go).
	keyringPool atomic.Pointer[gossip.Pool]
	// heartbeats is meaningful on the leader only.
	heartbeats *heartbeats
	// thresholds are the heartbeat thresholds in force, which SIGHUP may swap
	// (thresholds.go); the Config's are the ones the server started with.
	thresholds atomic.Pointer[Thresholds]
	// feed holds recent events and wakes their readers; stores are the shipper's views
	// of the event stores (store_status.go).
	feed *eventFeed
	// askNames holds the names questions are resolved against (ask.go).
	askNames namesCache
	stores   storeStatuses
	// readFails remembers the event stores that failed reads lately (events_read.go).
	readFails readFailures
	// strangers rate-limits the warnings about members refused as servers (peercheck.go).
	strangers strangerLog
	// leaderReady is true while this server leads and its FSM has applied every
	// entry of earlier terms: only then may it answer a read as the leader
	// (consistent.go).
	leaderReady atomic.Bool
	// nodeOrders is the node reconciler while this server leads, else nil.
	nodeOrders atomic.Pointer[reconciler]
	// acl resolves ACL tokens; with ACLs on it authorizes every request (acl.go).
	acl *acl.Authorizer
	// autopilot runs on the leader; pilot is Grid's side of it (autopilot.go).
	autopilot *autopilot.Autopilot
	pilot     *pilot
	// routes are the HTTP route patterns, as startHTTP registered them.
	routes []string
	// metrics are served at /v1/metrics (metrics.go).
	metrics *serverMetrics
	// restoring is held for writing by an operator's snapshot restore (snapshot.go)
	// and for reading by every command this server proposes as leader (applyLocal):
	// no event may be derived between the restore's reading of the event counters and
	// Raft's swap of the state, or its seq would be assigned twice.
	restoring sync.RWMutex
	// restores counts the snapshots restored into this server's FSM, so that the
	// shipper knows to re-read its position from the state (shipper.go).
	restores atomic.Uint64

	grpc   *grpc.Server
	rpcLn  net.Listener
	http   *http.Server
	httpLn net.Listener
	conns  *dial.Pool // to other servers
	// agentConns and storeConns reach agents and the event store: with TLS, each
	// expects its own role of the peer (tls.go).
	agentConns, storeConns *dial.Pool

	// fatal receives an error that the server cannot run on with, such as giving up on
	// -join; the process running the server should stop.
	fatal chan error

	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New starts a server: it opens its listeners and Raft state, joins gossip, and runs
// until Shutdown. On error everything it opened is closed again.
func New(cfg *Config) (s *Server, err error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg
	if err := c.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = &Server{
		config:     &c,
		logger:     c.Logger,
		leaderCh:   make(chan bool, 16),
		members:    gossip.NewMembers(),
		heartbeats: newHeartbeats(),
		feed:       newEventFeed(),
		conns:      dial.NewPool(c.TLS.ClientConfig(serverPeers...)),
		agentConns: dial.NewPool(c.TLS.ClientConfig(agentPeers...)),
		storeConns: dial.NewPool(c.TLS.ClientConfig(storePeers...)),
		fatal:      make(chan error, 1),
		ctx:        ctx,
		cancel:     cancel,
	}
	s.thresholds.Store(&Thresholds{HeartbeatInterval: c.HeartbeatInterval, AgentDegradedAfter: c.AgentDegradedAfter, AgentOfflineAfter: c.AgentOfflineAfter})
	s.logs.leader, s.logs.bootstrap = s.logger.Named("leader"), s.logger.Named("bootstrap")
	s.logs.agents, s.logs.heartbeat = s.logger.Named("agents"), s.logger.Named("heartbeat")
	s.logs.nodes, s.logs.shipper, s.logs.http = s.logger.Named("nodes"), s.logger.Named("shipper"), s.logger.Named("http")
	s.metrics = newServerMetrics(s)
	// "return nil, err" sets s to nil before this runs: keep the server to stop.
	started := s
	defer func() {
		if err != nil {
			_ = started.Shutdown()
		}
	}()
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.id, err = loadOrCreateID(filepath.Join(c.DataDir, "server-id")); err != nil {
		return nil, err
	}
	if s.fsm, err = fsm.New(s.logger.Named("fsm")); err != nil {
		return nil, err
	}
	s.fsm.SetEventHook(func(evs []*events.Event) {
		s.metrics.eventsDerived(evs)
		s.feed.publish(evs)
	})
	s.fsm.SetRestoreHook(s.restored)
	s.setupACL()
	// gRPC does its own TLS handshake (see startRPC), so its listener stays plain.
	if s.rpcLn, err = listen(s.hostPort(c.RPCPort), nil); err != nil {
		return nil, fmt.Errorf("listen for gRPC: %w", err)
	}
	if s.httpLn, err = listen(s.hostPort(c.HTTPPort), s.httpTLS()); err != nil {
		return nil, fmt.Errorf("listen for HTTP: %w", err)
	}
	if err := s.setupRaft(); err != nil {
		return nil, err
	}
	s.setupAutopilot()
	s.startRPC()
	s.startHTTP()
	if err := s.setupGossip(); err != nil {
		return nil, err
	}
	s.goRun(s.monitorLeadership)
	s.goRun(s.bootstrapLoop)
	if len(c.Join) > 0 {
		s.goRun(s.joinLoop)
	}
	s.logger.Info("server started", "name", c.NodeName, "id", s.id, "http", s.httpLn.Addr(),
		"rpc", s.rpcLn.Addr(), "raft", s.transport.LocalAddr(), "gossip", s.GossipAddr(),
		"bootstrap_expect", c.BootstrapExpect, "existing_state", s.hadState, "tls", c.TLS.String())
	return s, nil
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) hostPort(port int) string {
	return net.JoinHostPort(s.config.BindAddr, strconv.Itoa(port))
}

// Grid's Raft timings at -raft-multiplier=1: half of hashicorp/raft's heartbeat and
// election timeouts, so that a grid has a new leader within about a second of losing
// one (a follower notices after 1-2 heartbeat timeouts; the vote on loopback or a LAN
// takes milliseconds) instead of 1.5-2 s. The leader still heartbeats every tenth of
// the heartbeat timeout, so a follower calls an election only after missing ten
// heartbeats in a row; scripts/bench-elections checks that a busy three-server grid
// holds none. The leader lease stays hashicorp/raft's 500ms (at most the heartbeat
// timeout): a leader steps down only after that long without a quorum.
const (
	raftHeartbeatTimeout   = 500 * time.Millisecond
	raftElectionTimeout    = 500 * time.Millisecond
	raftLeaderLeaseTimeout = 500 * time.Millisecond
)

// defaultRaftConfig is hashicorp/raft's configuration with Grid's timings.
func defaultRaftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout = raftHeartbeatTimeout
	rc.ElectionTimeout = raftElectionTimeout
	rc.LeaderLeaseTimeout = raftLeaderLeaseTimeout
	return rc
}

// setupRaft opens the log store, snapshots and transport and starts the Raft peer.
func (s *Server) setupRaft() error {
	rc := raftConfig(s.config)
	rc.LocalID = raft.ServerID(s.id)
	rc.NotifyCh = s.leaderCh
	rc.Logger = newRaftLogger(s.logger.Named("raft"), s.members)

	dir := filepath.Join(s.config.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create raft dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", dir, err)
	}
	s.logStore, s.stable = store, &stableGuard{StableStore: store}
	logs, err := raft.NewLogCache(raftLogCache, store)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, s.logger.Named("raft.snapshots"))
	if err != nil {
		return fmt.Errorf("open raft snapshots: %w", err)
	}
	advertise, err := s.raftAdvertise()
	if err != nil {
		return err
	}
	if s.transport, err = s.newRaftTransport(advertise); err != nil {
		return fmt.Errorf("listen for raft: %w", err)
	}
	if s.hadState, err = raft.HasExistingState(logs, s.stable, snaps); err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.stable, snaps, s.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

// raftLogCache is how many recent log entries Raft keeps in memory in front of
// raft-boltdb.
const raftLogCache = 512

// raftConfig is the Raft configuration of a server with config c, apart from its ID,
// logger and leadership channel. (BenchmarkApply's ceiling, raw Raft, uses it too.)
func raftConfig(c *Config) *raft.Config {
	rc := defaultRaftConfig()
	if c.RaftConfig != nil {
		copied := *c.RaftConfig
		rc = &copied
	}
	m := time.Duration(c.RaftMultiplier)
	rc.HeartbeatTimeout *= m
	rc.ElectionTimeout *= m
	rc.LeaderLeaseTimeout *= m
	// Batch concurrent applies into one log write and one fsync.
	rc.BatchApplyCh = true
	// Raft's per-peer metrics carry a peer_id label; the legacy copies would put
	// every peer's ID in a metric's name, a new name per server ever known.
	rc.NoLegacyTelemetry = true
	return rc
}

// raftAdvertise returns the address other servers reach Raft at: nil (the listener's
// own) unless the server binds to every interface.
func (s *Server) raftAdvertise() (net.Addr, error) {
	ip := net.ParseIP(s.config.BindAddr)
	if !ip.IsUnspecified() {
		return nil, nil
	}
	adv, err := advertiseIP()
	if err != nil {
		return nil, err
	}
	return &net.TCPAddr{IP: adv, Port: s.config.RaftPort}, nil
}

// loadOrCreateID returns the server's Raft ID, kept at path, creating a random one
// the first time.
func loadOrCreateID(path string) (string, error) {
	return durable.LoadOrCreateID(path, uuid.NewString, func(id string) error {
		if _, err := uuid.Parse(id); err != nil {
			return fmt.Errorf("server ID file %s is corrupt: %w", path, err)
		}
		return nil
	})
}

// Fatal returns a channel that receives an error when the server cannot go on, such
// as when it gave up joining the gossip pool after RetryMax attempts.
func (s *Server) Fatal() <-chan error { return s.fatal }

// ID returns the server's Raft ID.
func (s *Server) ID() string { return s.id }

// Name returns the server's gossip name.
func (s *Server) Name() string { return s.config.NodeName }

// HTTPAddr returns the address the HTTP API listens on.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// RPCAddr returns the address the gRPC endpoint listens on.
func (s *Server) RPCAddr() string { return s.rpcLn.Addr().String() }

// RaftAddr returns the address Raft listens on.
func (s *Server) RaftAddr() string { return string(s.transport.LocalAddr()) }

// GossipAddr returns the gossip address, host:port.
func (s *Server) GossipAddr() string {
	if s.gossip == nil {
		return ""
	}
	return s.gossip.LocalAddr()
}

// IsLeader reports whether this server is the Raft leader.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// State returns a read-only view of this server's replicated state. On a follower it
// may lag the leader by the entries not yet applied.
func (s *Server) State() *fsm.State { return s.fsm.State() }

// Shutdown leaves gossip, stops the listeners and Raft, and waits for the server's
// goroutines. The Raft membership is kept: a restarted server rejoins as it was.
func (s *Server) Shutdown() error {
	return s.stop(true)
}

// stop stops the server once. A graceful stop leaves gossip and hands leadership over
// first; an abrupt one (tests use it to stand in for a crash) just stops.
func (s *Server) stop(graceful bool) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(graceful) })
	return s.shutdownErr
}

func (s *Server) shutdown(graceful bool) error {
	s.logger.Info("shutting down", "graceful", graceful)
	s.cancel()
	var errs []error
	if s.gossip != nil {
		if graceful {
			if err := s.gossip.Leave(5 * time.Second); err != nil {
				s.logger.Warn("leave gossip", "error", err)
			}
		}
		errs = append(errs, s.gossip.Shutdown())
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			s.http.Close()
		}
		cancel()
	} else if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.grpc != nil {
		dial.StopServer(s.grpc, 5*time.Second)
	} else if s.rpcLn != nil {
		s.rpcLn.Close()
	}
	if s.raft != nil {
		if graceful {
			s.transferLeadership()
		}
		errs = append(errs, s.raft.Shutdown().Error())
	}
	if s.transport != nil {
		errs = append(errs, s.transport.Close())
	}
	if s.logStore != nil {
		s.stable.close()
		errs = append(errs, s.logStore.Close())
	}
	s.wg.Wait()
	s.metrics.reg.Close()
	s.conns.Close()
	s.agentConns.Close()
	s.storeConns.Close()
	return errors.Join(errs...)
}

// transferLeadership hands leadership to another voter before a leader stops, so the
// cluster does not wait out an election timeout. The voter is one that gossip shows
// alive: Raft on its own picks the most up-to-date follower, which may be a server
// that stopped a moment ago, and the transfer then fails after a timeout.
func (s *Server) transferLeadership() {
	if s.raft.State() != raft.Leader {
		return
	}
	cfg := s.raft.GetConfiguration()
	if cfg.Error() != nil {
		return
	}
	alive := map[raft.ServerID]bool{}
	for _, m := range s.members.AliveServers() {
		alive[raft.ServerID(m.Tags.ID)] = true
	}
	for _, srv := range cfg.Configuration().Servers {
		if srv.Suffrage != raft.Voter || string(srv.ID) == s.id || !alive[srv.ID] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), leadershipTransferTimeout)
		err := waitFuture(ctx, context.Background(), s.raft.LeadershipTransferToServer(srv.ID, srv.Address))
		cancel()
		if err != nil {
			s.logger.Warn("leadership transfer before shutdown failed", "to", srv.Address, "error", err)
		}
		return
	}
}

// listen opens a TCP listener, wrapped in TLS when the server has a TLS config.
func listen(addr string, tlsConf *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		return tls.NewListener(ln, tlsConf), nil
	}
	return ln, nil
}

// leadershipTransferTimeout bounds the handover of leadership before a shutdown; Raft
// gives up on its own after an election timeout.
const leadershipTransferTimeout = 10 * time.Second
