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

// Pool keeps one gRPC client connection per address. Connections are created lazily
// and live until Close.
type Pool struct {
	creds grpc.DialOption
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewPool returns an empty pool whose connections use conf (nil: plaintext).
func NewPool(conf *tls.Config) *Pool {
	return &Pool{creds: Creds(conf), conns: map[string]*grpc.ClientConn{}}
}

// Get returns the connection to addr, creating it on first use.
func (p *Pool) Get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.creds, reconnect)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.Close()
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
