package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/mtls"
)

// A gossip member's tags are only what it says of itself: anyone with the gossip key
// can claim the server role. With TLS, a member becomes a Raft voter (or counts
// towards the bootstrap) only once the peer at its advertised Raft address has
// presented a server certificate of this grid in a TLS handshake; otherwise it would
// raise the quorum with a voter that can never vote, or worse.

// peerCheckTimeout bounds one handshake with a would-be server.
const peerCheckTimeout = 3 * time.Second

// strangerWarnEvery is how often the refusal of the same member is logged again.
const strangerWarnEvery = time.Minute

// verifyServerPeer checks that the member's Raft address is served by the holder of
// a server certificate of this grid made for the member, by name. It is nil without
// TLS.
func (s *Server) verifyServerPeer(ctx context.Context, m gossip.Member) error {
	if s.config.TLS == nil {
		return nil
	}
	addr := m.HostPort(m.Tags.RaftPort)
	ctx, cancel := context.WithTimeout(ctx, peerCheckTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: s.config.TLS.ClientConfig(mtls.RoleServer)}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("the peer at its raft address %s did not prove it holds a server certificate of this grid: %w", addr, err)
	}
	defer conn.Close()
	cert := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	if got := s.config.TLS.PeerServer(cert); got != m.Name {
		return fmt.Errorf("the peer at its raft address %s holds the certificate of server %q, not of %q", addr, got, m.Name)
	}
	return nil
}

// strangerLog rate-limits the warnings about members refused as servers.
type strangerLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// refuse logs a refusal of member m, at most once per strangerWarnEvery for the same
// member and error.
func (l *strangerLog) refuse(log hclog.Logger, msg string, m gossip.Member, err error) {
	key := m.Name + "\x00" + m.Tags.ID + "\x00" + err.Error()
	l.mu.Lock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < strangerWarnEvery {
		l.mu.Unlock()
		return
	}
	l.last[key] = now
	l.mu.Unlock()
	log.Warn(msg, "member", m.Name, "id", m.Tags.ID, "address", m.Addr, "error", err)
}
