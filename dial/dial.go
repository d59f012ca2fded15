// Package dial is how servers and agents reach each other over gRPC: transport
// credentials from the one TLS configuration a process has, and a pool of client
// connections, one per address, that reconnect within seconds.
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
