package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
	"github.com/sutragrid/grid/storage"
)

// A fleet's history for the benchmarks on a large event store (ask_bench_test.go):
// 20 agents running 10 named storage nodes each, over 30 days, until the event store
// holds about 1,000,000 events.
//
// The history is not written event by event: it is lived. fleetSim drives a real
// fsm.FSM (in memory, without Raft) with the commands a fleet sends, each stamped
// with its time in the 30 days, so every event is derived by the FSM's own code, with
// its seq, description and caused_by links (a restart caused by its crash, a spawn's
// outcome by its request, a stop's by its request). The FSM's event hook hands the
// events over in seq order; they go to a real storage node in batches of shipBatch
// through eventBatch and LearnBatch, as the shipper sends them, and each batch is
// acknowledged with EventsShipped, which trims the outbox as it does on a server.
// At the end the FSM's state (agents, nodes, LastSeq = ShippedSeq = the last seq, an
// empty outbox) is saved as a snapshot archive, which the benchmark's server restores
// through PUT /v1/operator/snapshot, as an operator would. The server then knows the
// agents and nodes by name, and its event counters agree with the store: the next
// event it derives takes the next seq. Nothing goes through Raft until the restore:
// committing a million entries would take the fill from a minute to an hour, and
// measure Raft, which BenchmarkApply does already.
//
// The mix, per step of the simulation: 18% a node crash, nearly always followed by
// its restart a few steps later (1 in 2,000 exhausts the restart policy: the node
// fails, is stopped and replaced); 1.2% an agent going degraded (a third of them
// then offline) and recovering, with the cluster events that follow; rarely a
// planned replacement of a node (stop, then spawn of a new node, some spawns and
// stops failing) or an agent unregistering and registering again; otherwise a
// sampled agent_heartbeat (as with -heartbeat-event-interval=80s). And twice in the
// 30 days the whole fleet goes dark at once (cluster_critical). Of the events, two
// thirds are heartbeats, 29% crashes and restarts, 4% agent and cluster health, and
// 0.1% spawns and stops; all 17 types occur.

const (
	fleetAgents        = 20
	fleetNodesPerAgent = 10
	fleetSpan          = 30 * 24 * time.Hour
	fleetSeed          = 9
	// fleetEventsEnv overrides the number of events (default 1,000,000), for a quick run.
	fleetEventsEnv = "GRID_BENCH_EVENTS"
	// fleetDirEnv names a directory where the built store is kept and reused by later
	// runs (a fill takes a minute or two); without it, it lives in the benchmark's
	// temporary directory.
	fleetDirEnv = "GRID_BENCH_ASK_DIR"
)

// benchFleetNode is a storage node of the fleet as the benchmarks name it.
type benchFleetNode struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Agent string `json:"agent"`
}

// benchFleet describes a built event store: dir/store is the storage node's data, and
// dir/state.tar the snapshot archive of the state that goes with it.
type benchFleet struct {
	// Events is the number of events stored, seqs 1 to Events.
	Events uint64 `json:"events"`
	// End is the time of the last event; Day the start of the last whole UTC day of
	// the history, which the benchmarks ask about as "today".
	End time.Time `json:"end"`
	Day time.Time `json:"day"`
	// Agents are the agents' names; Nodes one node per agent, active at the end, the
	// anchors of the cause benchmarks.
	Agents []string         `json:"agents"`
	Nodes  []benchFleetNode `json:"nodes"`
	// Types counts the events by type.
	Types map[events.Type]uint64 `json:"types"`
	// Fill is how long the history took to live and store.
	Fill time.Duration `json:"fill"`

	dir string
}

// loadOrBuildFleet returns the fleet kept in $GRID_BENCH_ASK_DIR, or builds one there
// (or in a temporary directory when the variable is not set).
func loadOrBuildFleet(b testing.TB) *benchFleet {
	dir := os.Getenv(fleetDirEnv)
	if dir == "" {
		dir = b.TempDir()
	} else if raw, err := os.ReadFile(filepath.Join(dir, "fleet.json")); err == nil {
		f := &benchFleet{dir: dir}
		if err := json.Unmarshal(raw, f); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "reusing the fleet of %d events built in %s (%s)\n", f.Events, dir, f.Fill.Round(time.Second))
		return f
	}
	// Whatever a fill that did not finish left there goes: a rewrite of a stored
	// event is a no-op, so it would keep the old fill's times.
	for _, name := range []string{"store", "state.tar"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	target := uint64(1_000_000)
	if v := os.Getenv(fleetEventsEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 10_000 {
			b.Fatalf("%s=%q: want a number of events, at least 10000", fleetEventsEnv, v)
		}
		target = n
	}
	f, err := buildFleet(dir, target)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "fleet.json"), raw, 0o644); err != nil {
		b.Fatal(err)
	}
	var types []string
	for t, n := range f.Types {
		types = append(types, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(types)
	fmt.Fprintf(os.Stderr, "built a fleet history of %d events in %s (%d types: %s)\n",
		f.Events, f.Fill.Round(time.Second), len(f.Types), strings.Join(types, " "))
	return f
}

// startBenchStorageNode serves a storage node on dataDir on a free port until stop,
// and returns its address and a client.
func startBenchStorageNode(dataDir string) (addr string, client gridpb.StorageClient, stop func() error, err error) {
	cfg := storage.DefaultConfig()
	cfg.DataDir, cfg.Port = dataDir, 0
	srv, err := storage.New(cfg)
	if err != nil {
		return "", nil, nil, err
	}
	addr = srv.Addr().String()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Close()
		return "", nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }() // Serve closes the store when ctx ends
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() { conn.Close(); cancel(); serr = <-done })
		return serr
	}
	return addr, gridpb.NewStorageClient(conn), stop, nil
}

// cloneStoreDir copies the data dir of a stopped storage node from src to dst, each
// pebble table as a hard link (pebble never changes a table it wrote, it only
// removes it; copied where a link cannot be made), the rest as copies: a benchmark's server writes to the store (its
// snapshot restore's cluster_restored event), and the next benchmark must find the
// fleet's store as it was built.
func cloneStoreDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o700)
		case strings.HasSuffix(path, ".sst"):
			if os.Link(path, to) == nil {
				return nil
			} // another file system: copied
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
}

// buildFleet lives the history into a storage node on dir/store and writes the
// state's snapshot archive to dir/state.tar.
func buildFleet(dir string, target uint64) (*benchFleet, error) {
	_, store, stop, err := startBenchStorageNode(filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	defer stop()
	start := time.Now()
	// The fill allocates at a high rate and keeps little: collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	// Two shippers, so that the node has one batch to write while the next is encoded.
	batches := make(chan []*events.Event, 8)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		shipErr error
		failed  = make(chan struct{})
	)
	fail := func(err error) { errOnce.Do(func() { shipErr = err; close(failed) }) }
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for evs := range batches {
				req, err := eventBatch(evs)
				if err == nil {
					_, err = store.LearnBatch(context.Background(), req)
				}
				if err != nil {
					fail(fmt.Errorf("store events %d-%d: %w", evs[0].Seq, evs[len(evs)-1].Seq, err))
				}
			}
		}()
	}
	f, err := fsm.New(hclog.NewNullLogger())
	if err != nil {
		close(batches)
		return nil, err
	}
	end := time.Now().UTC().Add(-time.Minute)
	sim := &fleetSim{
		f: f, rng: rand.New(rand.NewPCG(fleetSeed, fleetSeed)),
		start: end.Add(-fleetSpan), span: fleetSpan, target: target,
		types: map[events.Type]uint64{},
		ship: func(evs []*events.Event) error {
			select {
			case batches <- evs:
				return nil
			case <-failed:
				return shipErr
			}
		},
	}
	f.SetEventHook(sim.derived)
	err = sim.run()
	close(batches)
	wg.Wait()
	if err == nil {
		err = shipErr
	}
	if err != nil {
		return nil, err
	}
	fl := &benchFleet{Events: sim.lastSeq, Types: sim.types, dir: dir}
	fl.End = sim.lastTime
	fl.Day = fl.End.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	for _, a := range sim.agents {
		fl.Agents = append(fl.Agents, a.name)
		n := a.slots[0]
		fl.Nodes = append(fl.Nodes, benchFleetNode{ID: n.id, Name: n.name, Agent: a.name})
	}
	if err := writeBenchStateArchive(f, sim.index, filepath.Join(dir, "state.tar")); err != nil {
		return nil, err
	}
	// Closed, the node flushes its memtables: the benchmarks open the store from disk.
	if err := stop(); err != nil {
		return nil, err
	}
	fl.Fill = time.Since(start)
	return fl, nil
}

// writeBenchStateArchive saves f's state as `grid operator snapshot save` would.
func writeBenchStateArchive(f *fsm.FSM, index uint64, path string) error {
	snap, err := f.Snapshot()
	if err != nil {
		return err
	}
	var state bytes.Buffer
	if err := snap.Persist(&benchSnapshotSink{Buffer: &state}); err != nil {
		return err
	}
	sum := sha256.Sum256(state.Bytes())
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, ID: "fleet", Index: index, Term: 1}
	if err := writeArchive(out, meta, bytes.NewReader(state.Bytes()), sum[:], int64(state.Len())); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// benchSnapshotSink is a raft.SnapshotSink in memory.
type benchSnapshotSink struct{ *bytes.Buffer }

func (benchSnapshotSink) ID() string    { return "fleet" }
func (benchSnapshotSink) Cancel() error { return nil }
func (benchSnapshotSink) Close() error  { return nil }

// fleetSim lives a fleet's history; see the top of the file.
type fleetSim struct {
	f      *fsm.FSM
	rng    *rand.Rand
	index  uint64 // the last log index applied
	start  time.Time
	span   time.Duration
	target uint64 // events to derive
	// lastSeq and lastTime are the last event's; pending holds the events derived
	// and not yet shipped, in seq order.
	lastSeq  uint64
	lastTime time.Time
	pending  []*events.Event
	ship     func([]*events.Event) error
	types    map[events.Type]uint64

	agents []*simAgent
	// later holds the follow-ups of changes under way (a restart after its crash),
	// each due at a step.
	later []simTask
	step  int
	pids  int
	// darkAt are the seqs after which the whole fleet goes dark once.
	darkAt []uint64
}

type simAgent struct {
	name string
	// busy: unhealthy or unregistered; no heartbeats, spawns or node changes then.
	busy  bool
	slots []*simNode
}

type simNode struct {
	id, name string
	agent    *simAgent
	slot     int
	port     int
	pid      int
	restarts int
	// busy: a change under way (restarting, stopping, starting).
	busy bool
}

type simTask struct {
	at int
	do func() error
}

// derived is the FSM's event hook: it runs inside Apply.
func (s *fleetSim) derived(evs []*events.Event) {
	s.pending = append(s.pending, evs...)
	last := evs[len(evs)-1]
	s.lastSeq, s.lastTime = last.Seq, last.Timestamp
	for _, e := range evs {
		s.types[e.Type]++
	}
}

// now is the time of the next command: the history's events are spread evenly over
// the span.
func (s *fleetSim) now() time.Time {
	return s.start.Add(time.Duration(float64(s.span) * float64(s.lastSeq+1) / float64(s.target)))
}

// apply stamps cmd with the time and applies it, as a server applies a committed
// entry, then ships the full batches of what it derived.
func (s *fleetSim) apply(cmd fsm.Command) error {
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return err
	}
	if err := fsm.Stamp(buf, s.now()); err != nil {
		return err
	}
	s.index++
	if res := s.f.Apply(&raft.Log{Index: s.index, Term: 1, Type: raft.LogCommand, Data: buf}); res != nil {
		if err, ok := res.(error); ok {
			return fmt.Errorf("step %d: %s: %w", s.step, cmd.Type(), err)
		}
	}
	for len(s.pending) >= shipBatch {
		if err := s.flush(shipBatch); err != nil {
			return err
		}
	}
	return nil
}

// flush ships the first n pending events and acknowledges them, as the shipper does.
func (s *fleetSim) flush(n int) error {
	evs := s.pending[:n:n]
	s.pending = append([]*events.Event(nil), s.pending[n:]...)
	if err := s.ship(evs); err != nil {
		return err
	}
	return s.apply(&fsm.EventsShipped{UpTo: evs[len(evs)-1].Seq})
}

func (s *fleetSim) after(steps int, do func() error) {
	s.later = append(s.later, simTask{at: s.step + steps, do: do})
}

// due runs the follow-ups due by now.
func (s *fleetSim) due() error {
	var keep []simTask
	var run []simTask
	for _, t := range s.later {
		if t.at <= s.step {
			run = append(run, t)
		} else {
			keep = append(keep, t)
		}
	}
	s.later = keep
	for _, t := range run {
		if err := t.do(); err != nil {
			return err
		}
	}
	return nil
}

func (s *fleetSim) pid() int {
	s.pids++
	return 1000 + s.pids%4_000_000
}

func (s *fleetSim) run() error {
	for i := 1; i <= fleetAgents; i++ {
		a := &simAgent{name: fmt.Sprintf("agent-%03d", i)}
		s.agents = append(s.agents, a)
		if err := s.register(a); err != nil {
			return err
		}
	}
	for _, a := range s.agents {
		for slot := 0; slot < fleetNodesPerAgent; slot++ {
			a.slots = append(a.slots, nil)
			if err := s.spawn(a, slot, 0); err != nil {
				return err
			}
		}
	}
	s.darkAt = []uint64{s.target * 35 / 100, s.target * 70 / 100}
	for s.lastSeq < s.target {
		s.step++
		if err := s.due(); err != nil {
			return err
		}
		if err := s.act(); err != nil {
			return err
		}
	}
	// Finish every change under way: the server that restores the state then has no
	// pending or stopping node to order its (absent) agents about.
	for len(s.later) > 0 {
		s.step++
		if err := s.due(); err != nil {
			return err
		}
	}
	if len(s.pending) > 0 {
		return s.flush(len(s.pending))
	}
	return nil
}

// act takes one step of the fleet's life.
func (s *fleetSim) act() error {
	if len(s.darkAt) > 0 && s.lastSeq >= s.darkAt[0] {
		s.darkAt = s.darkAt[1:]
		return s.fleetDark()
	}
	a := s.agents[s.rng.IntN(len(s.agents))]
	if a.busy {
		return nil
	}
	switch r := s.rng.Float64(); {
	case r < 0.18:
		return s.crash(a.slots[s.rng.IntN(len(a.slots))])
	case r < 0.192:
		return s.incident(a)
	case r < 0.19206:
		if n := a.slots[s.rng.IntN(len(a.slots))]; !n.busy {
			return s.replace(n)
		}
		return nil
	case r < 0.19209:
		return s.deregister(a)
	}
	return s.apply(&fsm.SampleHeartbeat{Name: a.name, LastSeen: s.now()})
}

func (s *fleetSim) register(a *simAgent) error {
	n := strings.TrimPrefix(a.name, "agent-")
	return s.apply(&fsm.RegisterAgent{
		Name: a.name, Address: deadAgentAddr, Hostname: "host-" + n, Platform: "linux/amd64",
		Version: "0.9.0", MaxNodes: 2 * fleetNodesPerAgent, StorageRoot: "/var/lib/grid/nodes",
	})
}

// spawn starts a new node in a's slot; gen numbers the slot's nodes, for their names.
func (s *fleetSim) spawn(a *simAgent, slot, gen int) error {
	if a.busy {
		s.after(10, func() error { return s.spawn(a, slot, gen) })
		return nil
	}
	n := &simNode{
		id:    fmt.Sprintf("node-%08x", s.rng.Uint32()),
		name:  fmt.Sprintf("db-%s-%d", strings.TrimPrefix(a.name, "agent-"), slot),
		agent: a, slot: slot, port: 9100 + slot, busy: true,
	}
	if gen > 0 {
		n.name += fmt.Sprintf("-g%d", gen+1)
	}
	a.slots[slot] = n
	if err := s.apply(&fsm.SpawnNode{ID: n.id, Name: n.name, Agent: a.name, Port: n.port, Restart: restart.Default()}); err != nil {
		return err
	}
	started := func() error {
		if s.rng.Float64() < 0.07 {
			code := 1
			if err := s.apply(&fsm.NodeFailed{ID: n.id, ExitCode: &code,
				Error: fmt.Sprintf("storage node exited during its health check: listen tcp :%d: bind: address already in use", n.port)}); err != nil {
				return err
			}
			s.after(2+s.rng.IntN(5), func() error { return s.spawn(a, slot, gen+1) })
			return nil
		}
		n.pid, n.busy = s.pid(), false
		return s.apply(&fsm.NodeStarted{ID: n.id, PID: n.pid, Endpoint: fmt.Sprintf("10.0.0.%d:%d", 10+len(a.name), n.port)})
	}
	if s.step == 0 {
		return started() // the fleet's first day: the nodes start in turn
	}
	s.after(1+s.rng.IntN(3), started)
	return nil
}

// crash crashes n; it restarts a few steps later, unless its restart policy is
// exhausted: then it is replaced.
func (s *fleetSim) crash(n *simNode) error {
	if n.busy {
		return nil
	}
	c := &fsm.NodeCrashed{ID: n.id, PID: n.pid, Restarting: true}
	switch r := s.rng.IntN(10); {
	case r < 5:
		c.ExitCode = 1
	case r < 7:
		c.ExitCode = 2
	case r < 9:
		c.ExitCode, c.Signal = -1, "SIGKILL"
	default:
		c.ExitCode, c.Signal = -1, "SIGSEGV"
	}
	if s.rng.Float64() < 0.005 {
		c.Reason = fmt.Sprintf("missing from %d heartbeats of agent %s", driftHeartbeats, n.agent.name)
	}
	exhausted := s.rng.Float64() < 0.0005
	c.Restarting = !exhausted
	n.busy = true
	if err := s.apply(c); err != nil {
		return err
	}
	if exhausted {
		n.pid = 0
		s.after(3+s.rng.IntN(10), func() error { return s.replace(n) })
		return nil
	}
	s.after(1+s.rng.IntN(4), func() error {
		n.pid, n.busy = s.pid(), false
		n.restarts = n.restarts%restart.DefaultAttempts + 1
		return s.apply(&fsm.NodeRestarted{ID: n.id, PID: n.pid, Restarts: n.restarts})
	})
	return nil
}

// replace stops n (a failed node stops at once; a running one may fail to stop,
// and is stopped again) and spawns a new node in its slot.
func (s *fleetSim) replace(n *simNode) error {
	n.busy = true
	if err := s.apply(&fsm.StopNode{ID: n.id}); err != nil {
		return err
	}
	if n.pid == 0 { // failed: stopped at once
		s.after(1+s.rng.IntN(5), func() error { return s.spawn(n.agent, n.slot, s.nextGen(n)) })
		return nil
	}
	s.after(1+s.rng.IntN(3), func() error {
		if s.rng.Float64() < 0.05 {
			if err := s.apply(&fsm.NodeStopFailed{ID: n.id, Error: "the node did not exit within its kill timeout of 5s"}); err != nil {
				return err
			}
			s.after(2+s.rng.IntN(5), func() error { return s.replace(n) })
			return nil
		}
		if err := s.apply(&fsm.NodeStopped{ID: n.id, Signal: "SIGTERM", ExitCode: -1}); err != nil {
			return err
		}
		n.pid = 0
		s.after(1+s.rng.IntN(5), func() error { return s.spawn(n.agent, n.slot, s.nextGen(n)) })
		return nil
	})
	return nil
}

// nextGen is the generation of the node that replaces n.
func (s *fleetSim) nextGen(n *simNode) int {
	_, g, ok := strings.Cut(n.name, "-g")
	if !ok {
		return 1
	}
	i, _ := strconv.Atoi(g)
	return i
}

// incident: a goes degraded, perhaps offline, and recovers.
func (s *fleetSim) incident(a *simAgent) error {
	a.busy = true
	seen := s.now().Add(-16 * time.Second)
	if err := s.apply(&fsm.SetAgentStatus{Name: a.name, Status: fsm.AgentDegraded, LastSeen: seen}); err != nil {
		return err
	}
	wait := 2 + s.rng.IntN(6)
	if s.rng.Float64() < 0.35 {
		s.after(wait, func() error {
			return s.apply(&fsm.SetAgentStatus{Name: a.name, Status: fsm.AgentOffline, LastSeen: seen})
		})
		wait += 3 + s.rng.IntN(15)
	}
	s.after(wait, func() error { return s.recover(a) })
	return nil
}

func (s *fleetSim) recover(a *simAgent) error {
	a.busy = false
	return s.apply(&fsm.SetAgentStatus{Name: a.name, Status: fsm.AgentHealthy})
}

// deregister: a unregisters (its host is being upgraded) and registers again later.
func (s *fleetSim) deregister(a *simAgent) error {
	a.busy = true
	if err := s.apply(&fsm.DeregisterAgent{Name: a.name}); err != nil {
		return err
	}
	s.after(5+s.rng.IntN(15), func() error {
		a.busy = false
		return s.register(a)
	})
	return nil
}

// fleetDark: every agent goes silent at once (a network outage), then they recover
// one by one.
func (s *fleetSim) fleetDark() error {
	seen := s.now().Add(-16 * time.Second)
	for _, a := range s.agents {
		if a.busy {
			continue
		}
		a.busy = true
		if err := s.apply(&fsm.SetAgentStatus{Name: a.name, Status: fsm.AgentDegraded, LastSeen: seen}); err != nil {
			return err
		}
		s.after(5+s.rng.IntN(30), func() error { return s.recover(a) })
	}
	return nil
}
