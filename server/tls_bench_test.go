package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
)

// BenchmarkTLSApply compares committed writes with TLS off and on in the same run:
// a three-server cluster each way, one after the other, 64 writers, through the
// leader (Raft replicates over TLS) and through a follower (which forwards each
// write to the leader over TLS gRPC as well). writes/s on against off is the cost of
// TLS to the write path.
func BenchmarkTLSApply(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "tls=off"
		if on {
			name = "tls=on"
		}
		b.Run(name, func(b *testing.B) {
			pki := gridtest.NewPKI(b)
			c := newClusterWith(b, 3, func(cfg *Config) {
				stableRaft(cfg)
				if on {
					cfg.TLS = pki.Source(b, cfg.NodeName, mtls.RoleServer)
				}
			})
			for _, s := range c.servers {
				s.logger.SetLevel(0) // keep Raft's debug logging off the hot path
			}
			leader := c.leader()
			follower := followers(leader, c.servers)[0]
			b.Run("via=leader", func(b *testing.B) { benchApply(b, leader, 64) })
			b.Run("via=follower", func(b *testing.B) { benchApply(b, follower, 64) })
		})
	}
}

// stableRaft gives a benchmark's cluster Raft's own timeouts: the tests' fast ones
// lose the leadership on a loaded machine, and a benchmark then fails.
func stableRaft(cfg *Config) {
	rc := *cfg.RaftConfig
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	cfg.RaftConfig = &rc
}

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
					sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
					b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
				})
			}
		})
	}
}
