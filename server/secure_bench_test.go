package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/internal/gridtest"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// BenchmarkSecure compares a three-server grid with its security off and on (mutual
// TLS on Raft, gRPC and HTTPS with verified clients, ACLs, encrypted gossip), one
// after the other in the same run, on what security stands in the way of:
//
//   - writes: committed writes as agents make them, 64 writers calling the servers'
//     Register over gRPC with an agent's token (the role check, the token's ACL check,
//     the Raft commit; through a follower, also the forward to the leader, which
//     checks the token again). writes/s on against off is what security costs the
//     write path.
//   - http: GET /v1/nodes on the leader with an operator's read token, one client
//     on a kept-alive connection. p50 on minus p50 off is what TLS and the ACL check
//     add to a request.
func BenchmarkSecure(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "security=off"
		if on {
			name = "security=on"
		}
		b.Run(name, func(b *testing.B) {
			g := newBenchGrid(b, on)
			b.Run("writes/via=leader", func(b *testing.B) { g.benchRegister(b, g.leader, 64) })
			b.Run("writes/via=follower", func(b *testing.B) { g.benchRegister(b, g.follower, 64) })
			b.Run("http", g.benchRead)
		})
	}
}

// benchGrid is a three-server cluster and the credentials of its callers: an agent's
// gRPC credentials and token, an operator's API client with a read token.
type benchGrid struct {
	leader, follower *Server
	rpcCreds         grpc.DialOption
	agentToken       string
	reader           *api.Client
}

func newBenchGrid(b *testing.B, secure bool) *benchGrid {
	pki := gridtest.NewPKI(b)
	key, err := gossip.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	c := newClusterWith(b, 3, func(cfg *Config) {
		stableRaft(cfg)
		// The agents registered never heartbeat: keep them healthy, so that no status
		// change competes with the writes measured.
		cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Hour, time.Hour
		if secure {
			cfg.TLS = pki.Source(b, cfg.NodeName, mtls.RoleServer)
			cfg.VerifyHTTPSClient, cfg.ACLEnabled, cfg.EncryptKey = true, true, key
		}
	})
	for _, s := range c.servers {
		s.logger.SetLevel(0) // keep Raft's debug logging off the hot path
	}
	g := &benchGrid{leader: c.leader(), rpcCreds: grpc.WithTransportCredentials(insecure.NewCredentials())}
	g.follower = followers(g.leader, c.servers)[0]
	if secure {
		g.secure(b, pki)
	} else {
		g.reader = apiClient(b, g.leader)
	}
	// Every agent registers once before anything is measured: the writes measured
	// are re-registrations, alike in every run.
	g.register(b, g.leader, benchAgents, 64)
	return g
}

// benchAgents is how many agents the writes register, again and again.
const benchAgents = 1000

// secure bootstraps the ACLs, and makes the tokens and certificates of the callers.
func (g *benchGrid) secure(b *testing.B, pki *gridtest.PKI) {
	client := pki.RoleFiles(b, "client", mtls.RoleClient)
	apiAs := func(token string) *api.Client {
		cl, err := api.NewClient(&api.Config{Address: "https://" + g.leader.HTTPAddr(), Token: token,
			TLS: api.TLSConfig{CACert: pki.CAFile, ClientCert: client.CertFile, ClientKey: client.KeyFile}})
		if err != nil {
			b.Fatal(err)
		}
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := apiAs("").ACLBootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	root := apiAs(boot.SecretID)
	for name, rules := range map[string]string{"agents": `agent { policy = "write" }`, "readers": `node { policy = "read" }`} {
		if _, err := root.ACLPolicyApply(ctx, name, api.ACLPolicyRequest{Rules: rules}); err != nil {
			b.Fatal(err)
		}
	}
	agentTok, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: "bench-agent", Policies: []string{"agents"}})
	if err != nil {
		b.Fatal(err)
	}
	readTok, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: "bench-reader", Policies: []string{"readers"}})
	if err != nil {
		b.Fatal(err)
	}
	g.agentToken, g.reader = agentTok.SecretID, apiAs(readTok.SecretID)
	g.rpcCreds = grpc.WithTransportCredentials(credentials.NewTLS(pki.Source(b, "agent", mtls.RoleAgent).ClientConfig(mtls.RoleServer)))
}

// benchRegister has writers goroutines register agents through s, b.N in all, and
// reports the latencies and the throughput.
func (g *benchGrid) benchRegister(b *testing.B, s *Server, writers int) {
	b.ResetTimer()
	start := time.Now()
	latencies := g.register(b, s, b.N, writers)
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatencies(b, latencies...)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}

// register makes n registrations through s from writers goroutines, and returns the
// latencies of each goroutine's.
func (g *benchGrid) register(b *testing.B, s *Server, n, writers int) [][]time.Duration {
	conn := rpcConn(b, s, g.rpcCreds)
	client := gridpb.NewServersClient(conn)
	ctx := context.Background()
	if g.agentToken != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, g.agentToken)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				t0 := time.Now()
				req := &gridpb.RegisterRequest{Name: fmt.Sprintf("agent-%d", i%benchAgents), Address: deadAgentAddr, MaxNodes: 4}
				if _, err := client.Register(ctx, req); err != nil {
					b.Error(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return latencies
}

// benchRead reads the nodes b.N times, one request after the other.
func (g *benchGrid) benchRead(b *testing.B) {
	ctx := context.Background()
	if _, err := g.reader.Nodes(ctx, ""); err != nil { // the connection, and its handshake
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := g.reader.Nodes(ctx, ""); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// reportLatencies reports the p50 and p99 of latencies, in microseconds.
func reportLatencies(b *testing.B, latencies ...[]time.Duration) {
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1000, "p99-µs")
}
