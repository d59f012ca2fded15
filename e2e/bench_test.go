//go:build linux

package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
)

// BenchmarkFailover measures the time from kill -9 of the leader of a three-server grid
// (real processes built without -race, Grid's default Raft timings) until a surviving server reports
// a new leader. Each iteration restarts the killed server and waits for the cluster to
// settle. Run it with -benchtime=20x (scripts/bench-servers does); it reports the
// median and the worst.
func BenchmarkFailover(b *testing.B) {
	c := &serverCluster{t: b, dir: b.TempDir(), procs: map[string]*proc{}, bin: plainGridBin(b)}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	clients := map[string]*api.Client{}
	for _, ip := range serverIPs {
		cl, err := api.NewClient(&api.Config{Address: "http://" + ip + ":7000"})
		if err != nil {
			b.Fatal(err)
		}
		clients[ip] = cl
	}
	ctx := context.Background()
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		peers := c.stablePeers("127.0.0.11", "", 60*time.Second)
		old := leaderOf(peers).Address
		oldIP := old[:len(old)-len(":7002")]
		c.procs[oldIP].kill()
		start := time.Now()
		for done := false; !done; {
			for ip, cl := range clients {
				if ip == oldIP {
					continue
				}
				if l, err := cl.Leader(ctx); err == nil && l != "" && l != old {
					done = true
				}
			}
			if time.Since(start) > time.Minute {
				b.Fatal("no new leader within a minute")
			}
			time.Sleep(5 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		c.start(oldIP)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
}
