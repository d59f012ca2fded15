package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/sutragrid/grid/fsm"
)

// BenchmarkApply measures committed FSM writes through a three-server cluster on
// loopback, with the Raft log in raft-boltdb on disk (fsynced), from one writer and
// from 64 concurrent writers. ns/op with one writer is the commit latency; writes/s
// is the throughput. Beside each figure, in the same run, is its ceiling (raft/...):
// hashicorp/raft itself, three peers with the same Raft configuration, log store,
// snapshots and TCP transport, applying commands of the same bytes to an FSM that
// does nothing. Grid's figure over the ceiling is what Grid costs on top of Raft.
func BenchmarkApply(b *testing.B) {
	c := newClusterWith(b, 3, stableRaft)
	for _, s := range c.servers {
		s.logger.SetLevel(0) // keep Raft's debug logging off the hot path
	}
	leader := c.leader()
	raw := newRawRaft(b, raftConfig(c.servers[0].config), 3)
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("grid/writers=%d", writers), func(b *testing.B) {
			benchWriters(b, writers, func(i int64) error {
				_, err := leader.Apply(context.Background(), benchCommand(i))
				return err
			})
		})
		b.Run(fmt.Sprintf("raft/writers=%d", writers), func(b *testing.B) {
			benchWriters(b, writers, func(i int64) error {
				buf, err := fsm.Encode(benchCommand(i)) // as Server.Apply does
				if err == nil {
					err = raw.Apply(buf, 10*time.Second).Error()
				}
				return err
			})
		})
	}
}

// benchWriters applies b.N commands with apply from writers goroutines and reports
// the latencies and the throughput.
func benchWriters(b *testing.B, writers int, apply func(i int64) error) {
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
				if err := apply(i); err != nil {
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

// benchCommand is the i'th command a writer applies.
func benchCommand(i int64) fsm.Command {
	return &fsm.RegisterAgent{Name: fmt.Sprintf("agent-%d", i%10000), Address: deadAgentAddr, MaxNodes: 4}
}

// newRawRaft starts n hashicorp/raft peers on 127.0.0.1 as a server's setupRaft
// does (raft-boltdb behind a log cache, file snapshots, TCP transport), with config
// rc and an FSM that does nothing, and returns the leader.
func newRawRaft(b *testing.B, rc *raft.Config, n int) *raft.Raft {
	var peers []*raft.Raft
	var cfg raft.Configuration
	var transports []*raft.NetworkTransport
	for i := range n {
		t, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		transports = append(transports, t)
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(fmt.Sprint(i)), Address: t.LocalAddr()})
	}
	for i, t := range transports {
		peers = append(peers, startRawPeer(b, rc, cfg, raft.ServerID(fmt.Sprint(i)), t))
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range peers {
			if r.State() == raft.Leader {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("raw raft: no leader")
	return nil
}

// startRawPeer starts one peer of newRawRaft, bootstrapped with cfg.
func startRawPeer(b *testing.B, rc *raft.Config, cfg raft.Configuration, id raft.ServerID, t raft.Transport) *raft.Raft {
	dir := b.TempDir()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		b.Fatal(err)
	}
	logs, err := raft.NewLogCache(raftLogCache, store)
	if err != nil {
		b.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	c := *rc
	c.LocalID, c.Logger = id, hclog.NewNullLogger()
	if err := raft.BootstrapCluster(&c, logs, store, snaps, t, cfg); err != nil {
		b.Fatal(err)
	}
	r, err := raft.NewRaft(&c, nopFSM{}, logs, store, snaps, t)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown().Error(); store.Close() })
	return r
}

// nopFSM is the raw Raft ceiling's FSM: it applies nothing, and snapshots nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                  { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error)  { return nopFSM{}, nil }
func (nopFSM) Restore(r io.ReadCloser) error        { return r.Close() }
func (nopFSM) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopFSM) Release()                             {}

// stableRaft gives a benchmark's cluster Raft's own timeouts: the tests' fast ones
// lose the leadership on a loaded machine, and a benchmark then fails.
func stableRaft(cfg *Config) {
	rc := *cfg.RaftConfig
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	cfg.RaftConfig = &rc
}
