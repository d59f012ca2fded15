package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
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
// from 64 concurrent writers: writes/s and the latency of a write (p50, p99). Beside
// each figure is its ceiling (raft-…): hashicorp/raft itself, three peers with the
// same Raft configuration, log store, snapshots and TCP transport, applying commands
// of the same bytes to an FSM that does nothing. Grid's figure over the ceiling is
// what Grid costs on top of Raft. The two take turns, in rounds, within one benchmark:
// on a shared machine the load changes from one second to the next, and a ratio of
// figures taken at different times says little.
func BenchmarkApply(b *testing.B) {
	c := newClusterWith(b, 3, stableRaft)
	for _, s := range c.servers {
		s.logger.SetLevel(0) // keep Raft's debug logging off the hot path
	}
	leader := c.leader()
	raw := newRawRaft(b, raftConfig(c.servers[0].config), 3)
	grid := func(i int64) error {
		_, err := leader.Apply(context.Background(), benchCommand(i))
		return err
	}
	ceiling := func(i int64) error {
		buf, err := fsm.Encode(benchCommand(i)) // as Server.Apply does
		if err == nil {
			err = raw.Apply(buf, 10*time.Second).Error()
		}
		return err
	}
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			// Each round, the one that goes first goes second in the next: the
			// second meets what the first left behind (followers still applying,
			// garbage to collect).
			const rounds = 6
			var g, r writes
			for round := range rounds {
				n := b.N / rounds
				if round < b.N%rounds {
					n++ // b.N in all
				}
				if round%2 == 0 {
					g.add(runWriters(b, n, writers, grid))
					r.add(runWriters(b, n, writers, ceiling))
				} else {
					r.add(runWriters(b, n, writers, ceiling))
					g.add(runWriters(b, n, writers, grid))
				}
			}
			g.report(b, "")
			r.report(b, "raft-")
			b.ReportMetric(100*g.rate()/r.rate(), "%-of-raft")
		})
	}
}

// writes is what writers did: how many, how long they took in all, and each latency.
type writes struct {
	n         int
	elapsed   time.Duration
	latencies []time.Duration
}

func (w *writes) add(more writes) {
	w.n, w.elapsed = w.n+more.n, w.elapsed+more.elapsed
	w.latencies = append(w.latencies, more.latencies...)
}

func (w *writes) rate() float64 { return float64(w.n) / w.elapsed.Seconds() }

// report reports the throughput and the latencies, their units prefixed.
func (w *writes) report(b *testing.B, prefix string) {
	if len(w.latencies) == 0 {
		return
	}
	slices.Sort(w.latencies)
	b.ReportMetric(float64(w.latencies[len(w.latencies)/2].Nanoseconds())/1000, prefix+"p50-µs")
	b.ReportMetric(float64(w.latencies[len(w.latencies)*99/100].Nanoseconds())/1000, prefix+"p99-µs")
	b.ReportMetric(w.rate(), prefix+"writes/s")
}

// runWriters applies n commands with apply from writers goroutines.
func runWriters(b *testing.B, n, writers int, apply func(i int64) error) writes {
	var next atomic.Int64
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, writers)
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
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
	out := writes{n: n, elapsed: time.Since(start)}
	for _, l := range latencies {
		out.latencies = append(out.latencies, l...)
	}
	return out
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
// It takes committed entries in batches, as Grid's FSM does (raft.BatchingFSM): one
// call per batch rather than one per entry, the fastest raw Raft can hand them over.
type nopFSM struct{}

func (nopFSM) ApplyBatch(logs []*raft.Log) []any { return make([]any, len(logs)) }

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
