// Package dial is how Grid's processes speak gRPC to each other: transport
// credentials from the one TLS configuration a process has, a pool of client
// connections, one per address, that reconnect within seconds, and a stop for the
// gRPC servers they run that cannot hang on a stuck call.
package dial

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Creds returns the transport credentials for conf; nil means plaintext.
func Creds(conf *tls.Config) grpc.DialOption {
	if conf != nil {
		return grpc.WithTransportCredentials(credentials.NewTLS(conf))
	}
	return grpc.WithTransportCredentials(insecure.NewCredentials())
}

// reconnect makes a lost connection come back within seconds rather than after gRPC's
// default backoff of up to two minutes: a server or event store that restarts should
// be used again at once.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
	MinConnectTimeout: 5 * time.Second,
})

// Pool keeps one gRPC client connection per address, created on first use. It lets
// go of connections nobody uses: gRPC puts a connection without calls for IdleTimeout
// into its idle state, and one that has failed to connect for BrokenAfter since it was
// last asked for is broken (its peer is gone, an agent that left, say); the next Get
// of any address closes and forgets both, so the pool does not grow with every peer
// ever seen.
type Pool struct {
	creds grpc.DialOption
	// now is the clock; tests set it.
	now func() time.Time

	mu        sync.Mutex
	conns     map[string]*pooled
	lastSweep time.Time
}

type pooled struct {
	conn     *grpc.ClientConn
	lastUsed time.Time
}

// Lifetimes of pooled connections.
const (
	// IdleTimeout is how long a connection without calls stays open.
	IdleTimeout = 5 * time.Minute
	// BrokenAfter is how long a connection that cannot connect is kept after it
	// was last asked for.
	BrokenAfter = time.Minute
	// sweepEvery bounds how often Get looks for connections to let go of.
	sweepEvery = 10 * time.Second
)

// NewPool returns an empty pool whose connections use conf (nil: plaintext).
func NewPool(conf *tls.Config) *Pool {
	return &Pool{creds: Creds(conf), now: time.Now, conns: map[string]*pooled{}}
}

// Get returns the connection to addr, creating it on first use.
func (p *Pool) Get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.lastSweep) >= sweepEvery {
		p.lastSweep = now
		p.sweepLocked(now)
	}
	if c, ok := p.conns[addr]; ok {
		c.lastUsed = now
		return c.conn, nil
	}
	c, err := grpc.NewClient(addr, p.creds, reconnect, grpc.WithIdleTimeout(IdleTimeout))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	p.conns[addr] = &pooled{conn: c, lastUsed: now}
	return c, nil
}

// sweepLocked closes and forgets idle, broken and shut down connections.
func (p *Pool) sweepLocked(now time.Time) {
	for addr, c := range p.conns {
		switch c.conn.GetState() {
		case connectivity.Idle:
			if now.Sub(c.lastUsed) < IdleTimeout {
				continue // new, or asked for again: gRPC connects it on the first call
			}
		case connectivity.TransientFailure:
			if now.Sub(c.lastUsed) < BrokenAfter {
				continue
			}
		case connectivity.Shutdown:
		default:
			continue
		}
		c.conn.Close()
		delete(p.conns, addr)
	}
}

// Len returns how many connections the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.conn.Close()
		delete(p.conns, addr)
	}
}

// StopServer stops srv gracefully, letting the RPCs in flight finish, and forcibly
// once grace has passed: a client that holds a stream open, or a handler that hangs,
// must not hold up a process that is shutting down. It returns once srv has stopped,
// and whether it stopped gracefully.
func StopServer(srv *grpc.Server, grace time.Duration) bool {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-stopped:
		return true
	case <-t.C:
	}
	// Stop closes every connection, which ends the GracefulStop above too.
	srv.Stop()
	<-stopped
	return false
}
