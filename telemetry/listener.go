package telemetry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Listener is the small HTTP API of a process that has no other: an agent's
// -http-port and a storage node's -metrics-port. It serves
//
//	GET /v1/metrics   the Registry (JSON, or ?format=prometheus)
//	GET /v1/health    200 {"status":"ok"} while the process runs, for container
//	                  health checks and load balancers
//
// Neither needs a token: they show counts and latencies, never the grid's data or
// secrets. With TLS it serves HTTPS with the process's own certificate and asks for no
// client certificate, so that a Prometheus server scrapes it with the CA alone; bind
// it to a private address, as the gRPC port.
type Listener struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Listen opens addr (host:port; port 0 picks a free one), with TLS when tlsConf is
// not nil, and serves until Shutdown.
func Listen(addr string, tlsConf *tls.Config, reg *Registry, log hclog.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	httpm := NewHTTPMetrics(reg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/metrics", httpm.Wrap("GET /v1/metrics", reg.Handler(log)))
	mux.HandleFunc("GET /v1/health", httpm.Wrap("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	}))
	l := &Listener{
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})},
		done: make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "error", err)
		}
	}()
	return l, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Shutdown stops serving, letting requests in flight finish for up to 5s.
func (l *Listener) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	<-l.done
}
