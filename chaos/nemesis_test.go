//go:build linux

package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errSkip is an action that found nothing to act on (no leader, no node yet).
var errSkip = errors.New("nothing to act on")

// nemesis injects one fault at a time, chosen at random from a seed, into the grid
// while the load runs, and undoes it after a while.
//
// Clock jumps are not among the faults: a network namespace isolates a network, not
// a clock, and CLOCK_REALTIME is the machine's; jumping it would jump every process
// (and the test) alike, which is no fault at all. That takes a time namespace
// (CLOCK_MONOTONIC only) or a VM per host.
type nemesis struct {
	c     *cluster
	rng   *rand.Rand
	short bool
	began time.Time

	mu     sync.Mutex
	log    io.Writer
	counts map[string]int
	errs   []error
	// restores are the intervals between a snapshot's save and its restore: what
	// was acknowledged in between may rightly be undone.
	restores []interval
	// isolations are the leaders cut off from every other host, and whether each
	// stepped down while cut off.
	isolations []isolation
}

// isolation is a leader cut off from every other host for a while.
type isolation struct {
	server *member
	during interval
	// steppedDown says the server stopped calling itself leader while cut off, after
	// steppedAfter.
	steppedDown  bool
	steppedAfter time.Duration
}

// interval is a span of time.
type interval struct{ from, to time.Time }

// action is one kind of fault: it injects it, waits, and undoes it.
type action struct {
	kind string
	run  func(ctx context.Context) (detail string, err error)
}

func newNemesis(c *cluster, seed uint64, short bool, log io.Writer) *nemesis {
	return &nemesis{c: c, rng: rand.New(rand.NewPCG(seed, 0x6e656d)), short: short, log: log,
		began: time.Now(), counts: map[string]int{}}
}

func (n *nemesis) actions() []action {
	return []action{
		{"kill-leader", n.killLeader},
		{"kill-follower", n.killFollower},
		{"kill-agent", n.killAgent},
		{"kill-node", n.killNode},
		{"kill-store", n.killStore},
		{"partition-leader", n.partitionLeader},
		{"partition-majority", n.partitionMajority},
		{"partition-agents", n.partitionAgents},
		{"pause-server", n.pauseServer},
		{"pause-agent", n.pauseAgent},
		{"store-down", n.storeDown},
		{"store-wipe", n.storeWipe},
		{"store-disk-full", n.storeDiskFull},
		{"snapshot-restore", n.snapshotRestore},
	}
}

// run injects faults until ctx ends. The fault in progress then ends early.
func (n *nemesis) run(ctx context.Context) {
	acts := n.actions()
	for ctx.Err() == nil {
		a := acts[n.rng.IntN(len(acts))]
		n.logf("%s begins", a.kind)
		detail, err := a.run(ctx)
		switch {
		case errors.Is(err, errSkip):
			n.logf("%s skipped: %s", a.kind, detail)
		case err != nil:
			n.logf("%s FAILED: %s: %v", a.kind, detail, err)
			n.mu.Lock()
			n.errs = append(n.errs, fmt.Errorf("%s (%s): %w", a.kind, detail, err))
			n.mu.Unlock()
		default:
			n.logf("%s done: %s", a.kind, detail)
			n.mu.Lock()
			n.counts[a.kind]++
			n.mu.Unlock()
		}
		n.sleep(ctx, n.between(1, 4, 2, 10))
	}
}

// logf writes a line with the time since the run began to the nemesis log.
func (n *nemesis) logf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.log, "%s +%7.2fs %s\n", time.Now().Format("15:04:05.000"), time.Since(n.began).Seconds(), fmt.Sprintf(format, args...))
}

// summary is the count of each kind of action done, sorted by kind.
func (n *nemesis) summary() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var kinds []string
	for k := range n.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s=%d ", k, n.counts[k])
	}
	return strings.TrimSpace(b.String())
}

// between is a random duration in seconds, from the short run's range or the long's.
func (n *nemesis) between(shortMin, shortMax, longMin, longMax int) time.Duration {
	lo, hi := longMin, longMax
	if n.short {
		lo, hi = shortMin, shortMax
	}
	return time.Duration(lo*1000+n.rng.IntN((hi-lo)*1000+1)) * time.Millisecond
}

// faultTime is how long a fault lasts: 5-30s, or 3-8s in a short run.
func (n *nemesis) faultTime() time.Duration { return n.between(3, 8, 5, 30) }

// sleep waits d, or until ctx ends.
func (n *nemesis) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (n *nemesis) pick(ms []*member) *member { return ms[n.rng.IntN(len(ms))] }

// killAndRestart kills m with SIGKILL and starts it again after d, with the same data.
func (n *nemesis) killAndRestart(ctx context.Context, m *member, d time.Duration) (string, error) {
	detail := fmt.Sprintf("%s down for %s", m.name, d.Round(time.Millisecond))
	if err := n.c.kill(m); err != nil {
		return detail, err
	}
	n.sleep(ctx, d)
	return detail, n.c.start(m)
}

func (n *nemesis) leader(ctx context.Context) (*member, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := n.c.leader(cctx)
	if err != nil {
		return nil, errSkip
	}
	return l, nil
}

func (n *nemesis) killLeader(ctx context.Context) (string, error) {
	l, err := n.leader(ctx)
	if err != nil {
		return "no leader", err
	}
	return n.killAndRestart(ctx, l, n.faultTime())
}

func (n *nemesis) killFollower(ctx context.Context) (string, error) {
	l, err := n.leader(ctx)
	if err != nil {
		return "no leader", err
	}
	return n.killAndRestart(ctx, n.pick(n.c.followers(l)), n.faultTime())
}

func (n *nemesis) killAgent(ctx context.Context) (string, error) {
	return n.killAndRestart(ctx, n.pick(n.c.agents), n.faultTime())
}

func (n *nemesis) killStore(ctx context.Context) (string, error) {
	return n.killAndRestart(ctx, n.pick(n.c.stores), n.faultTime())
}

// killNode kills a storage node the load spawned; its agent restarts it, as its
// restart policy says.
func (n *nemesis) killNode(context.Context) (string, error) {
	procs := nodeProcesses()
	var ids []string
	for id := range procs {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "no node runs", errSkip
	}
	sort.Strings(ids)
	id := ids[n.rng.IntN(len(ids))]
	pid := procs[id][0]
	detail := fmt.Sprintf("node %s (pid %d)", id, pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return detail, err
	}
	return detail, nil
}

// partitionFor cuts a from b for a fault's time, then heals.
func (n *nemesis) partitionFor(ctx context.Context, a, b []*member, what string) (string, error) {
	d := n.faultTime()
	detail := fmt.Sprintf("%s for %s", what, d.Round(time.Millisecond))
	if err := n.c.net.Partition(hostsOf(a), hostsOf(b)); err != nil {
		_ = n.c.net.Heal()
		return detail, err
	}
	n.sleep(ctx, d)
	return detail, n.c.net.Heal()
}

// partitionLeader cuts the leader off from every other host.
func (n *nemesis) partitionLeader(ctx context.Context) (string, error) {
	l, err := n.leader(ctx)
	if err != nil {
		return "no leader", err
	}
	var others []*member
	for _, m := range n.c.members {
		if m != l {
			others = append(others, m)
		}
	}
	d := n.faultTime()
	detail := fmt.Sprintf("leader %s alone for %s", l.name, d.Round(time.Millisecond))
	if err := n.c.net.Partition(hostsOf([]*member{l}), hostsOf(others)); err != nil {
		_ = n.c.net.Heal()
		return detail, err
	}
	iso := isolation{server: l, during: interval{from: time.Now()}}
	// The test's own address stays reachable: ask the cut-off server whom it takes
	// for the leader until it no longer names itself.
	for time.Since(iso.during.from) < d && ctx.Err() == nil {
		if !n.callsItselfLeader(l) {
			iso.steppedDown, iso.steppedAfter = true, time.Since(iso.during.from)
			break
		}
		n.sleep(ctx, 100*time.Millisecond)
	}
	n.sleep(ctx, d-time.Since(iso.during.from))
	iso.during.to = time.Now()
	err = n.c.net.Heal()
	n.mu.Lock()
	n.isolations = append(n.isolations, iso)
	n.mu.Unlock()
	if iso.steppedDown {
		detail += fmt.Sprintf(", stepped down after %s", iso.steppedAfter.Round(time.Millisecond))
	}
	return detail, err
}

// callsItselfLeader reports whether m's own view (GET /v1/status/leader, answered
// locally) names m as the leader; a server that does not answer counts as not.
func (n *nemesis) callsItselfLeader(m *member) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr, err := m.client(time.Second).Leader(ctx)
	return err == nil && strings.HasPrefix(addr, m.ip+":")
}

// partitionMajority splits the servers three against two; agents and stores reach
// both sides.
func (n *nemesis) partitionMajority(ctx context.Context) (string, error) {
	s := append([]*member(nil), n.c.servers...)
	n.rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return n.partitionFor(ctx, s[:2], s[2:], "servers "+names(s[:2])+" | "+names(s[2:]))
}

// partitionAgents cuts every agent off from every server.
func (n *nemesis) partitionAgents(ctx context.Context) (string, error) {
	return n.partitionFor(ctx, n.c.agents, n.c.servers, "agents | servers")
}

// pauseFor stops m's process (SIGSTOP) for a fault's time, then continues it.
func (n *nemesis) pauseFor(ctx context.Context, m *member) (string, error) {
	d := n.faultTime()
	detail := fmt.Sprintf("%s paused for %s", m.name, d.Round(time.Millisecond))
	if err := n.c.pause(m); err != nil {
		return detail, err
	}
	n.sleep(ctx, d)
	return detail, n.c.resume(m)
}

func (n *nemesis) pauseServer(ctx context.Context) (string, error) {
	return n.pauseFor(ctx, n.pick(n.c.servers))
}

func (n *nemesis) pauseAgent(ctx context.Context) (string, error) {
	return n.pauseFor(ctx, n.pick(n.c.agents))
}

// storeDown takes an event store down for a minute (15s in a short run): events
// wait in the outbox meanwhile.
func (n *nemesis) storeDown(ctx context.Context) (string, error) {
	return n.killAndRestart(ctx, n.pick(n.c.stores), n.between(15, 15, 60, 60))
}

// storeWipe takes a store down and empties its data dir before it comes back. Only
// a store that another store backs up may lose its data: see wipeableStores.
func (n *nemesis) storeWipe(ctx context.Context) (string, error) {
	stores := wipeableStores(n.c)
	if len(stores) == 0 {
		return "no store may be wiped", errSkip
	}
	m := n.pick(stores)
	d := n.faultTime()
	detail := fmt.Sprintf("%s wiped, down for %s", m.name, d.Round(time.Millisecond))
	if err := n.c.kill(m); err != nil {
		return detail, err
	}
	if err := n.c.wipe(m); err != nil {
		return detail, err
	}
	n.sleep(ctx, d)
	return detail, n.c.start(m)
}

// storeDiskFull fills the tmpfs of the full store past its -disk-reserve-mb, leaving
// half the reserve for pebble's own writes, for a fault's time, then frees it.
func (n *nemesis) storeDiskFull(ctx context.Context) (string, error) {
	m := n.c.members[fullStore]
	filler := filepath.Join(m.fsDir, "filler")
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.fsDir, &st); err != nil {
		return m.name, err
	}
	size := int64(st.Bavail)*st.Bsize - fullStoreReserveMB<<20/2
	d := n.faultTime()
	detail := fmt.Sprintf("%s full (%d MiB filler) for %s", m.name, size>>20, d.Round(time.Millisecond))
	if size <= 0 {
		return detail, errSkip
	}
	if err := os.WriteFile(filler, make([]byte, size), 0o644); err != nil {
		os.Remove(filler)
		return detail, err
	}
	n.sleep(ctx, d)
	return detail, os.Remove(filler)
}

// snapshotRestore saves a snapshot through a random server, lets the load go on for
// a fault's time, and restores it: what the load did in between is undone, as an
// operator's restore would.
func (n *nemesis) snapshotRestore(ctx context.Context) (string, error) {
	s := n.pick(n.c.servers)
	from := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := s.client(10 * time.Second).SnapshotSave(cctx)
	if err != nil {
		return "save through " + s.name + ": " + err.Error(), errSkip
	}
	snap, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return "read the snapshot from " + s.name + ": " + err.Error(), errSkip
	}
	d := n.faultTime()
	n.sleep(ctx, d)
	r := n.pick(n.c.servers)
	detail := fmt.Sprintf("%d bytes saved through %s, restored through %s after %s", len(snap), s.name, r.name, d.Round(time.Millisecond))
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	err = r.client(30*time.Second).SnapshotRestore(rctx, bytes.NewReader(snap))
	// Whether or not the answer came, the restore may have happened.
	n.mu.Lock()
	n.restores = append(n.restores, interval{from, time.Now()})
	n.mu.Unlock()
	if err != nil {
		return detail + ": " + err.Error(), errSkip
	}
	return detail, nil
}

// names joins the members' names.
func names(ms []*member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return strings.Join(out, ",")
}
