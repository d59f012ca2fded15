package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
)

// BenchmarkTLSHTTP measures the latency of an HTTP API request (GET
// /v1/status/leader, answered by the server asked) with TLS off, on, and on with
// verified client certificates: on a kept-alive connection, which is what TLS adds
// to every request, and on a new connection each time, which adds the handshake.
func BenchmarkTLSHTTP(b *testing.B) {
	for _, mode := range []string{"off", "on", "mutual"} {
		b.Run("tls="+mode, func(b *testing.B) {
			pki := gridtest.NewPKI(b)
			cfg := testConfig(b, "solo", b.TempDir(), 1)
			if mode != "off" {
				cfg.TLS = pki.Source(b, "solo", mtls.RoleServer)
				cfg.VerifyHTTPSClient = mode == "mutual"
			}
			s := startServer(b, cfg)
			(&testCluster{t: b, servers: []*Server{s}}).leader()
			s.logger.SetLevel(0)
			url := "http://" + s.HTTPAddr() + "/v1/status/leader"
			var conf *tls.Config
			if mode != "off" {
				url = "https://" + s.HTTPAddr() + "/v1/status/leader"
				client := pki.RoleFiles(b, "client", mtls.RoleClient)
				var err error
				if conf, err = mtls.APIClientConfig("127.0.0.1", pki.CAFile, client.CertFile, client.KeyFile); err != nil {
					b.Fatal(err)
				}
			}
			for _, kept := range []bool{true, false} {
				name := "conn=new"
				if kept {
					name = "conn=kept"
				}
				b.Run(name, func(b *testing.B) {
					hc := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: !kept}}
					defer hc.CloseIdleConnections()
					get := func() time.Duration {
						t0 := time.Now()
						resp, err := hc.Get(url)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Fatalf("status %d", resp.StatusCode)
						}
						return time.Since(t0)
					}
					get() // the first connection's handshake is not the steady state
					lat := make([]time.Duration, 0, b.N)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						lat = append(lat, get())
					}
					b.StopTimer()
					reportLatencies(b, lat)
				})
			}
		})
	}
}
