package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sutragrid/grid/fsm"
)

// BenchmarkApply measures committed FSM writes through a three-server cluster on
// loopback, with the Raft log in raft-boltdb on disk (fsynced), from one writer and
// from 64 concurrent writers. ns/op with one writer is the commit latency; writes/s
// is the throughput.
func BenchmarkApply(b *testing.B) {
	c := newCluster(b, 3)
	for _, s := range c.servers {
		s.logger.SetLevel(0) // keep Raft's debug logging off the hot path
	}
	leader := c.leader()
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchApply(b, leader, writers) })
	}
}

// benchApply applies b.N commands through s from writers goroutines and reports
// the latencies and the throughput.
func benchApply(b *testing.B, s *Server, writers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, writers)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				cmd := &fsm.RegisterAgent{Name: fmt.Sprintf("agent-%d", i%10000), Address: deadAgentAddr, MaxNodes: 4}
				if _, err := s.Apply(context.Background(), cmd); err != nil {
					b.Error(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatencies(b, latencies...)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}

// stableRaft gives a benchmark's cluster Raft's own timeouts: the tests' fast ones
// lose the leadership on a loaded machine, and a benchmark then fails.
func stableRaft(cfg *Config) {
	rc := *cfg.RaftConfig
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	cfg.RaftConfig = &rc
}
