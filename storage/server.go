package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/dial"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/telemetry"
)

// shutdownGrace is how long a stopping node lets RPCs in flight finish.
const shutdownGrace = 10 * time.Second

// Server is a running storage node: the store, and the gRPC server in front of it.
type Server struct {
	cfg    Config
	logger hclog.Logger
	nodeID string

	lock   *pebble.Lock
	store  *Store
	lis    net.Listener
	grpc   *grpc.Server
	health *health.Server
	// metrics are served on cfg.MetricsAddr by http, when set (metrics.go).
	metrics *nodeMetrics
	http    *telemetry.Listener
	// disk refuses writes at the free-space reserve (limits.go).
	disk *diskGuard

	authorizeUnary  grpc.UnaryServerInterceptor
	authorizeStream grpc.StreamServerInterceptor
}

// Run runs a storage node until ctx is done, then stops it cleanly.
func Run(ctx context.Context, cfg *Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// New locks the data dir, opens the store and binds the listener. Serve then serves;
// if Serve is never called, Close releases everything. A nil cfg is DefaultConfig(),
// which lacks the required DataDir.
func New(cfg *Config) (*Server, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg
	if err := c.validate(); err != nil {
		return nil, err
	}
	cfg, logger := &c, c.Logger
	s := &Server{cfg: c, logger: logger, metrics: newNodeMetrics(),
		authorizeUnary: auth.UnaryInterceptor(cfg.Authorizer), authorizeStream: auth.StreamInterceptor(cfg.Authorizer)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := pebble.LockDirectory(cfg.DataDir, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is in use by another process (is another grid storage running on it?): %w", cfg.DataDir, err)
	}
	s.lock = lock
	if s.nodeID, err = loadNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}

	opts := StoreOptions{Logger: logger.Named("pebble"), Now: cfg.Now}
	if cfg.MemoryLimitMB > 0 {
		limit := int64(cfg.MemoryLimitMB) << 20
		debug.SetMemoryLimit(limit)
		opts.CacheBytes = max(limit/4, 1<<20)
		opts.MemTableBytes = uint64(min(max(limit/16, 4<<20), 64<<20))
	}
	if s.store, err = OpenStore(filepath.Join(cfg.DataDir, "store"), opts); err != nil {
		return nil, err
	}

	addr := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.Port))
	if s.lis, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}

	s.grpc = grpc.NewServer(s.grpcOptions()...)
	// The guard's clock is the real one, not cfg.Now: it paces statfs calls.
	s.disk = &diskGuard{dir: cfg.DataDir, reserveMB: cfg.DiskReserveMB, logger: logger, now: time.Now,
		statfs: statfs, onCheck: s.metrics.diskChecked}
	// A first reading now: a data dir that cannot be read fails here, and the node
	// reports its free space from the start.
	if _, _, err := s.disk.reading(true); err != nil {
		return nil, fmt.Errorf("read the free space of %s: %w", cfg.DataDir, err)
	}
	s.grpc.RegisterService(storageServiceDesc(), &service{
		store:     s.store,
		batches:   newBatchLimiter(cfg.MaxConcurrentBatches, batchWaiters(cfg.MaxConcurrentBatches)),
		disk:      s.disk,
		v:         validator{maxContentBytes: cfg.MaxContentBytes, now: cfg.Now},
		logger:    logger,
		nodeID:    s.nodeID,
		started:   cfg.Now(),
		retention: cfg.Retention,
		metrics:   s.metrics,
	})
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(gridpb.Storage_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if cfg.MetricsAddr != "" {
		// HTTPS with the node's own certificate, no client certificate asked
		// (telemetry.Listener says why).
		if s.http, err = telemetry.Listen(cfg.MetricsAddr, cfg.TLS.ServerConfig(false), s.metrics.reg, logger.Named("http")); err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsAddr, err)
		}
	}
	ok = true
	return s, nil
}

func (s *Server) grpcOptions() []grpc.ServerOption {
	// Timing comes first, to count refused calls too; then TLS, and its check of the
	// caller's role (tls.go).
	opts := append(append(s.metrics.rpc.ServerOptions(), s.tlsOptions()...), []grpc.ServerOption{
		// gRPC refuses a larger message (ResourceExhausted) from its length prefix,
		// before it allocates for it: this, with the batch limiter, bounds memory.
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageMB << 20),
		grpc.ChainUnaryInterceptor(s.unaryGuard),
		grpc.ChainStreamInterceptor(s.streamGuard),
		// LearnBatch requests are decoded by the node itself (batchcodec.go).
		grpc.ForceServerCodecV2(newServerCodec()),
	}...)
	return opts
}

// unaryGuard authorizes each call, and turns a panic into an Internal error, so that
// no request can take the node down.
func (s *Server) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("panic in RPC", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "%s failed", info.FullMethod)
		}
	}()
	return s.authorizeUnary(ctx, req, info, h)
}

func (s *Server) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("panic in RPC", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "%s failed", info.FullMethod)
		}
	}()
	return s.authorizeStream(srv, ss, info, h)
}

// Addr is the address the node listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// MetricsAddr is the address /v1/metrics and /v1/health are served at, or nil when
// Config.MetricsAddr is "".
func (s *Server) MetricsAddr() net.Addr {
	if s.http == nil {
		return nil
	}
	return s.http.Addr()
}

// NodeID is the node's ID.
func (s *Server) NodeID() string { return s.nodeID }

// Serve serves until ctx is done, then stops: it reports NOT_SERVING, lets RPCs in
// flight finish (for up to shutdownGrace), and closes the store.
func (s *Server) Serve(ctx context.Context) error {
	free, reserve, _ := s.disk.reading(false)
	s.logger.Info("storage node started", "address", s.lis.Addr().String(), "node_id", s.nodeID,
		"data_dir", s.cfg.DataDir, "retention", s.cfg.Retention.String(),
		"max_message_mb", s.cfg.MaxMessageMB, "max_concurrent_batches", s.cfg.MaxConcurrentBatches,
		"disk_free_bytes", free, "disk_reserve_bytes", reserve)

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.grpc.Serve(s.lis) }()

	retCtx, stopRetention := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.cfg.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.retentionLoop(retCtx)
		}()
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve gRPC: %w", err)
	}
	s.logger.Info("storage node stopping")
	s.health.Shutdown()
	if !dial.StopServer(s.grpc, shutdownGrace) {
		s.logger.Warn("RPCs still running after grace period were stopped", "grace", shutdownGrace)
	}
	stopRetention()
	wg.Wait()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		s.logger.Info("storage node stopped")
	}
	return err
}

// Close releases the store, the listener and the data dir lock. Serve calls it.
func (s *Server) Close() error {
	var errs []error
	if s.grpc != nil {
		s.grpc.Stop()
	}
	if s.http != nil {
		s.http.Shutdown()
		s.http = nil
	}
	if s.metrics != nil {
		s.metrics.reg.Close()
	}
	if s.lis != nil {
		// Serve's listener is closed by Stop already; one never served is not.
		if err := s.lis.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

// retentionLoop removes expired concepts every RetentionInterval.
func (s *Server) retentionLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		cutoff := s.cfg.Now().Add(-s.cfg.Retention).UnixNano()
		n, err := s.store.ExpireBefore(ctx, cutoff)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.Error("retention failed", "error", err)
		case n > 0:
			s.logger.Info("retention removed concepts", "count", n, "before", time.Unix(0, cutoff).UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
