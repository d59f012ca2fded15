package server

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
)

// BenchmarkHTTPACL measures a read of the HTTP API (GET /v1/nodes on the leader, over
// loopback with keep-alive) on a server without ACLs and on one with them, whose
// token holds two policies: the difference of the p50s is what the ACL check adds to
// a request.
func BenchmarkHTTPACL(b *testing.B) {
	for _, enabled := range []bool{false, true} {
		name := "acl=off"
		if enabled {
			name = "acl=on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b, "s1", b.TempDir(), 1)
			cfg.ACLEnabled = enabled
			s := startServer(b, cfg)
			s.logger.SetLevel(0)
			(&testCluster{t: b, servers: []*Server{s}}).leader()
			base := "http://" + s.HTTPAddr()
			client := &http.Client{Timeout: 10 * time.Second}
			send := func(method, path, token, body string) *http.Response {
				var r io.Reader
				if body != "" {
					r = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, base+path, r)
				if token != "" {
					req.Header.Set(auth.TokenHeader, token)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				return resp
			}
			token := ""
			if enabled {
				var boot, tok api.ACLToken
				decode(b, send("POST", "/v1/acl/bootstrap", "", ""), &boot)
				for name, rules := range map[string]string{"nodes": `node { policy = \"read\" }`, "events": `event { policy = \"read\" }`} {
					decode(b, send("PUT", "/v1/acl/policy/"+name, boot.SecretID, `{"rules":"`+rules+`"}`), nil)
				}
				decode(b, send("POST", "/v1/acl/token", boot.SecretID, `{"name":"bench","policies":["events","nodes"]}`), &tok)
				token = tok.SecretID
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				resp := send("GET", "/v1/nodes", token, "")
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET /v1/nodes: %d", resp.StatusCode)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
		})
	}
}

func decode(b *testing.B, resp *http.Response, out any) {
	b.Helper()
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			b.Fatal(err)
		}
	}
}
