//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/chaos/checker"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/internal/gridtest"
)

// defaultDuration keeps TestChaos, setup and checks included, under five minutes,
// so that it runs in `make test`; `make chaos DURATION=30m` runs it longer.
const defaultDuration = 100 * time.Second

// loadClients is how many clients the load runs at once.
const loadClients = 4

// poll is how often the test looks at the grid while it waits: each look is a few
// HTTP calls to every server.
var poll = gridtest.Poller{Interval: 500 * time.Millisecond}

// TestChaos runs the load and the nemesis against a grid of real processes for
// CHAOS_DURATION, heals everything, waits for the grid to settle and checks what an
// operator relies on: the servers agree, what was acknowledged is there, no node
// runs twice, the event store holds every event once and in order. CHAOS_SEED
// replays a run's choices (the timing of real processes does not replay).
// With -artifacts, the processes' logs, the nemesis's log and the history stay in
// the test's artifact directory.
func TestChaos(t *testing.T) {
	requireNetns(t)
	duration, seed := chaosDuration(t), chaosSeed(t)
	short := duration < 10*time.Minute
	out := t.ArtifactDir()
	logDir := filepath.Join(out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d (CHAOS_SEED=%d replays it), duration %s, files in %s", seed, seed, duration, out)

	c := newCluster(t, t.TempDir(), logDir)
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(60)
		}
	})
	poll.WaitFor(t, 2*time.Minute, "five servers, a leader and three healthy agents", func() error {
		_, err := settled(c, 0)
		return err
	})

	history := &checker.History{}
	nemLog, err := os.Create(filepath.Join(out, "nemesis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer nemLog.Close()
	nem := newNemesis(c, seed, short, nemLog)
	l := &load{c: c, history: history, seed: seed}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { l.run(ctx, loadClients) })
	wg.Go(func() { nem.run(ctx) })
	wg.Wait()
	t.Logf("actions: %s; %d calls of the load", nem.summary(), len(history.Ops()))

	recoverAll(t, c)
	if err := history.WriteFile(filepath.Join(out, "history.jsonl")); err != nil {
		t.Error(err)
	}
	checkLinearizable(t, history.Ops(), nem.restores, out)
	for _, err := range nem.errs {
		t.Errorf("nemesis: %v", err)
	}
	verify(t, c, history.Ops(), nem.restores)
	report(t, "leaders cut off", checkIsolations(history.Ops(), nem.isolations))
}

// checkIsolations returns what is wrong with how each leader cut off from every
// other host behaved: it must have stepped down while cut off, and acknowledged no
// write (a spawn or a stop) asked of it while cut off: it could not commit one.
func checkIsolations(ops []checker.Op, isolations []isolation) []string {
	var bad []string
	for _, iso := range isolations {
		span := iso.during.to.Sub(iso.during.from).Round(time.Millisecond)
		if !iso.steppedDown {
			bad = append(bad, fmt.Sprintf("%s still called itself leader after %s cut off", iso.server.name, span))
		}
		for _, op := range ops {
			if op.Kind != checker.Read && op.Outcome == checker.OK && op.Server == iso.server.httpAddr() &&
				op.Call.After(iso.during.from) && op.Return.Before(iso.during.to) {
				bad = append(bad, fmt.Sprintf("%s acknowledged a %s of %s while cut off (%s)", iso.server.name, op.Kind, op.Name, span))
			}
		}
	}
	return bad
}

// checkLinearizable checks with porcupine that the load's spawns, stops and reads of
// nodes are linearizable (chaos/checker), in epochs between the snapshot restores,
// which rightly put the state back; it writes the failing node's history as HTML
// next to the other files when they are not.
func checkLinearizable(t *testing.T, ops []checker.Op, restores []interval, dir string) {
	t.Helper()
	var rollbacks []checker.Rollback
	for _, r := range restores {
		rollbacks = append(rollbacks, checker.Rollback{From: r.from, To: r.to})
	}
	r := checker.CheckWithRollbacks(ops, rollbacks, 2*time.Minute)
	t.Logf("linearizability: %s", r.String())
	switch r.Verdict {
	case checker.Linearizable:
	case checker.NotLinearizable:
		path, err := r.Visualize(dir)
		t.Errorf("the operations on node %s are not linearizable (see %s, %v): %s", r.Failed, path, err, r.String())
	default:
		t.Errorf("the linearizability check did not finish: %s", r.String())
	}
}

// chaosDuration is CHAOS_DURATION (a Go duration), or the short default.
func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("CHAOS_DURATION")
	if v == "" {
		return defaultDuration
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("CHAOS_DURATION=%q: want a duration such as 30m", v)
	}
	return d
}

// chaosSeed is CHAOS_SEED, or a new random seed.
func chaosSeed(t *testing.T) uint64 {
	v := os.Getenv("CHAOS_SEED")
	if v == "" {
		return rand.Uint64()
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("CHAOS_SEED=%q: want an unsigned integer", v)
	}
	return seed
}

// recoverAll undoes every fault: heals the network, frees the full disk, continues
// paused processes and starts those that are down.
func recoverAll(t *testing.T, c *cluster) {
	t.Helper()
	if err := c.net.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(c.members[fullStore].fsDir, "filler")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if err := c.restart(m); err != nil {
			t.Fatal(err)
		}
	}
}

// settled returns the leader's status once the grid has a leader, five servers and
// three healthy agents, and at most waiting events wait in the outbox.
func settled(c *cluster, waiting uint64) (*api.Status, error) {
	st, err := leaderStatus(c)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Servers != len(c.servers):
		return nil, fmt.Errorf("%d servers in the Raft configuration", st.Servers)
	case st.Agents.Total != len(c.agents) || st.Agents.Healthy != len(c.agents):
		return nil, fmt.Errorf("agents: %+v", st.Agents)
	case st.Events.Waiting > waiting:
		return nil, fmt.Errorf("%d events wait in the outbox (last error %q)", st.Events.Waiting, st.Events.LastError)
	}
	// A store being backfilled does not hold the outbox back: an empty outbox does
	// not say it has everything.
	for _, es := range st.Events.Stores {
		if es.State != api.StoreInSync || es.AckedSeq+waiting < st.Events.LastSeq {
			return nil, fmt.Errorf("event store %s is %s at seq %d of %d", es.Name, es.State, es.AckedSeq, st.Events.LastSeq)
		}
	}
	return st, nil
}

// leaderStatus is GET /v1/status of the leader.
func leaderStatus(c *cluster) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := c.leader(ctx)
	if err != nil {
		return nil, err
	}
	return l.client(5 * time.Second).Status(ctx)
}

// verify waits for the grid to settle, then checks it.
func verify(t *testing.T, c *cluster, ops []checker.Op, restores []interval) {
	t.Helper()
	var state *serverView
	var status *api.Status
	poll.WaitFor(t, 3*time.Minute, "the grid to settle: the outbox empty, every server holding the same state", func() error {
		before, err := settled(c, 0)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if state, err = sameState(ctx, c); err != nil {
			return err
		}
		if status, err = settled(c, 0); err != nil {
			return err
		}
		if status.Events.LastSeq != before.Events.LastSeq {
			return fmt.Errorf("events still come: seq %d, then %d", before.Events.LastSeq, status.Events.LastSeq)
		}
		return nil
	})
	t.Logf("settled: %d nodes, %d events", len(state.Nodes), status.Events.LastSeq)
	report(t, "acknowledged operations", checkAcknowledged(ops, state, restores))
	poll.WaitFor(t, 30*time.Second, "one process per node", func() error {
		if bad := checkOneProcessEach(); len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		return nil
	})
	verifyEvents(t, c, ops)
}

// verifyEvents checks the event stores against the leader's last seq. Events may
// still come (a node's restart after its agent's), so the stores are read between
// two looks at the leader that agree on the last seq, with nothing waiting.
func verifyEvents(t *testing.T, c *cluster, ops []checker.Op) {
	t.Helper()
	stores := c.stores
	held := make([][]storedEvent, len(stores))
	var last uint64
	poll.WaitFor(t, time.Minute, "the event stores to be read while no event comes", func() error {
		before, err := settled(c, 0)
		if err != nil {
			return err
		}
		for i, m := range stores {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			held[i], err = readStore(ctx, m)
			cancel()
			if err != nil {
				return err
			}
		}
		after, err := settled(c, 0)
		if err != nil {
			return err
		}
		if last = after.Events.LastSeq; last != before.Events.LastSeq {
			return fmt.Errorf("events still come: seq %d, then %d", before.Events.LastSeq, last)
		}
		return nil
	})
	for i, m := range stores {
		report(t, "events of "+m.name, checkEventSeqs(m.name, held[i], last))
		report(t, "the order of the events of "+m.name, checkEventOrder(m.name, held[i]))
		report(t, "spawn events of "+m.name, checkSpawnEvents(ops, held[i]))
	}
	for i := 1; i < len(stores); i++ {
		report(t, "the stores' events", checkSameEvents(held[0], held[i], stores[0].name, stores[i].name))
	}
	report(t, "what each server derived", checkDigests(c, last, held[0]))
}

// checkDigests compares what each server's FSM derived with what the store holds:
// each server's running digest of its history (fsm/digest.go) at the last seq must
// be the digest of the stored events 1..last, recomputed from their stored JSON.
func checkDigests(c *cluster, last uint64, stored []storedEvent) []string {
	byseq := append([]storedEvent(nil), stored...)
	sort.Slice(byseq, func(i, j int) bool { return byseq[i].Seq < byseq[j].Seq })
	want := ""
	for _, e := range byseq {
		want = fsm.ChainDigest(want, e.JSON)
	}
	var bad []string
	for _, m := range c.servers {
		seq, digest, err := derivedDigest(m)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", m.name, err))
		case seq != last:
			bad = append(bad, fmt.Sprintf("%s: its state's last seq is %d, the leader's %d", m.name, seq, last))
		case digest != want:
			bad = append(bad, fmt.Sprintf("%s: digest of its history %q, of the store's events 1..%d %q", m.name, digest, last, want))
		}
	}
	return bad
}

// derivedDigest returns a server's own last seq and history digest.
func derivedDigest(m *member) (uint64, string, error) {
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(m.httpAddr() + "/v1/operator/events/derived?after=18446744073709551615")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("GET /v1/operator/events/derived: %s", resp.Status)
	}
	seq, err := strconv.ParseUint(resp.Header.Get("X-Grid-Event-Last-Seq"), 10, 64)
	return seq, resp.Header.Get("X-Grid-Event-Digest"), err
}

// report fails the test with each problem found by a check.
func report(t *testing.T, what string, bad []string) {
	t.Helper()
	if len(bad) > 0 {
		t.Errorf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
}
