//go:build linux

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/chaos/checker"
	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

// wipeableStores are the stores whose data the nemesis may wipe: those another
// store backs up, in-sync as the leader sees it. Losing any one disk must lose no
// event; losing the only complete copy would, which no grid can help.
func wipeableStores(c *cluster) []*member {
	st, err := leaderStatus(c)
	if err != nil {
		return nil
	}
	inSync := map[string]bool{}
	for _, s := range st.Events.Stores {
		inSync[s.Name] = s.State == api.StoreInSync
	}
	var out []*member
	for _, m := range c.stores {
		for _, other := range c.stores {
			if other != m && inSync[fmt.Sprintf("%s:%d", other.ip, storePort)] {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// nodeProcesses finds the live storage nodes in the grid's namespaces by their
// command line (`grid storage ... -node-id=ID`, as agents start them), and returns
// their pids by node ID. Paused processes count; zombies (an empty cmdline) do not,
// and neither do the nodes of other tests on the machine, in other namespaces.
func nodeProcesses() map[string][]int {
	ours := ourNamespaces()
	out := map[string][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "grid" || args[1] != "storage" {
			continue
		}
		if ns, err := os.Readlink(filepath.Join("/proc", d.Name(), "ns", "net")); err != nil || !ours[ns] {
			continue
		}
		for _, a := range args[2:] {
			if id, ok := strings.CutPrefix(a, "-node-id="); ok {
				out[id] = append(out[id], pid)
			}
		}
	}
	return out
}

// ourNamespaces are the network namespaces of the chaos grid, as /proc/PID/ns/net
// names them ("net:[INODE]").
func ourNamespaces() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), nsPrefix) {
			continue
		}
		fi, err := os.Stat(filepath.Join("/run/netns", e.Name()))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[fmt.Sprintf("net:[%d]", st.Ino)] = true
		}
	}
	return out
}

// serverView is what one server holds, read with ?stale: its own state. An agent's
// last heartbeat is the leader's alone to know, and is left out.
type serverView struct {
	Nodes  []api.Node
	Agents []api.Agent
}

func readView(ctx context.Context, s *member) (*serverView, error) {
	cl := s.client(5 * time.Second).WithStale()
	nodes, err := cl.Nodes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	agents, err := cl.Agents(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	for i := range agents {
		agents[i].LastHeartbeat = time.Time{}
	}
	return &serverView{Nodes: nodes, Agents: agents}, nil
}

// sameState returns the state every server holds, or an error saying which differ.
func sameState(ctx context.Context, c *cluster) (*serverView, error) {
	var first *serverView
	for _, s := range c.servers {
		v, err := readView(ctx, s)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = v
			continue
		}
		if !reflect.DeepEqual(first, v) {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(v)
			return nil, fmt.Errorf("%s and %s differ:\n%s\n%s", c.servers[0].name, s.name, a, b)
		}
	}
	return first, nil
}

// inRestore reports whether op overlaps a snapshot's save and restore: a restore
// may rightly undo what was acknowledged after the save.
func inRestore(op checker.Op, restores []interval) bool {
	for _, r := range restores {
		if op.Return.After(r.from) && op.Call.Before(r.to) {
			return true
		}
	}
	return false
}

// checkAcknowledged returns what of the history's acknowledged spawns and stops the
// final state lacks: a spawned node missing, a stopped node neither stopping nor
// stopped.
func checkAcknowledged(ops []checker.Op, state *serverView, restores []interval) []string {
	byName := map[string]api.Node{}
	for _, n := range state.Nodes {
		byName[n.Name] = n
	}
	var bad []string
	for _, op := range ops {
		if op.Outcome != checker.OK || inRestore(op, restores) {
			continue
		}
		n, ok := byName[op.Name]
		switch op.Kind {
		case checker.Spawn:
			if !ok {
				bad = append(bad, fmt.Sprintf("acknowledged spawn of %s (at %s): no such node", op.Name, op.Return.Format(time.StampMilli)))
			}
		case checker.Stop:
			if !ok || (n.Status != api.NodeStopping && n.Status != api.NodeStopped) {
				bad = append(bad, fmt.Sprintf("acknowledged stop of %s (at %s): node is %q (exists: %v)", op.Name, op.Return.Format(time.StampMilli), n.Status, ok))
			}
		}
	}
	return bad
}

// checkOneProcessEach returns the node IDs that have more than one live process.
func checkOneProcessEach() []string {
	var bad []string
	for id, pids := range nodeProcesses() {
		if len(pids) > 1 {
			bad = append(bad, fmt.Sprintf("node %s runs as pids %v", id, pids))
		}
	}
	sort.Strings(bad)
	return bad
}

// storedEvent is one event as a store holds it: its seq and its JSON.
type storedEvent struct {
	Seq  uint64
	JSON []byte
	Ev   events.Event
}

// readStore lists every event the store holds, in the store's ascending order,
// straight from its gRPC API, as eventquery's store does.
func readStore(ctx context.Context, m *member) ([]storedEvent, error) {
	conn, err := grpc.NewClient(fmt.Sprintf("%s:%d", m.ip, storePort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := gridpb.NewStorageClient(conn)
	var out []storedEvent
	token := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := client.Query(cctx, &gridpb.QueryRequest{
			Filters: []*gridpb.Filter{{Attribute: "kind", Values: []string{events.KindEvent}}},
			Order:   gridpb.Order_ORDER_ASCENDING, Limit: 500, PageToken: token,
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", m.name, err)
		}
		for _, c := range resp.GetConcepts() {
			seq, ok := events.SeqOf(c.GetId())
			if !ok {
				return nil, fmt.Errorf("%s: concept %s is not an event", m.name, c.GetId())
			}
			se := storedEvent{Seq: seq, JSON: c.GetContent()}
			if err := json.Unmarshal(c.GetContent(), &se.Ev); err != nil || se.Ev.Seq != seq {
				return nil, fmt.Errorf("%s: concept %s holds %q (%v)", m.name, c.GetId(), c.GetContent(), err)
			}
			out = append(out, se)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// checkEventSeqs returns what is wrong with a store's events: each of 1..last must
// be there exactly once.
func checkEventSeqs(name string, evs []storedEvent, last uint64) []string {
	var bad []string
	seen := map[uint64]int{}
	for _, e := range evs {
		seen[e.Seq]++
	}
	for seq := uint64(1); seq <= last; seq++ {
		if seen[seq] != 1 {
			bad = append(bad, fmt.Sprintf("%s: event %d is there %d times", name, seq, seen[seq]))
		}
	}
	if uint64(len(evs)) != last {
		bad = append(bad, fmt.Sprintf("%s: %d events, want %d (the leader's last seq)", name, len(evs), last))
	}
	return firstOf(bad, 20)
}

// checkEventOrder returns the events the store lists (in its ascending time order)
// before an event of a lower seq.
func checkEventOrder(name string, evs []storedEvent) []string {
	var bad []string
	for i := 1; i < len(evs); i++ {
		a, b := evs[i-1].Ev, evs[i].Ev
		if b.Seq <= a.Seq {
			bad = append(bad, fmt.Sprintf("%s: event %d (%s at %s) comes before event %d (%s at %s)", name,
				a.Seq, a.Type, a.Timestamp.Format(time.RFC3339Nano), b.Seq, b.Type, b.Timestamp.Format(time.RFC3339Nano)))
		}
	}
	return firstOf(bad, 20)
}

// checkSameEvents returns the seqs where two stores' events differ.
func checkSameEvents(a, b []storedEvent, nameA, nameB string) []string {
	var bad []string
	if len(a) != len(b) {
		bad = append(bad, fmt.Sprintf("%s holds %d events, %s %d", nameA, len(a), nameB, len(b)))
	}
	inB := map[uint64][]byte{}
	for _, e := range b {
		inB[e.Seq] = e.JSON
	}
	for _, e := range a {
		if other, ok := inB[e.Seq]; !ok || !bytes.Equal(e.JSON, other) {
			bad = append(bad, fmt.Sprintf("event %d: %s holds %s, %s holds %s", e.Seq, nameA, e.JSON, nameB, other))
		}
	}
	return firstOf(bad, 20)
}

// checkSpawnEvents returns the acknowledged spawns with no spawn_requested event
// naming their node. A restore undoes no event, so none is excused.
func checkSpawnEvents(ops []checker.Op, evs []storedEvent) []string {
	requested := map[string]bool{}
	for _, e := range evs {
		if e.Ev.Type == events.SpawnRequested {
			requested[e.Ev.NodeName] = true
		}
	}
	var bad []string
	for _, op := range ops {
		if op.Kind == checker.Spawn && op.Outcome == checker.OK && !requested[op.Name] {
			bad = append(bad, fmt.Sprintf("acknowledged spawn of %s has no spawn_requested event", op.Name))
		}
	}
	return firstOf(bad, 20)
}

// firstOf keeps a long list of problems readable.
func firstOf(bad []string, n int) []string {
	if len(bad) <= n {
		return bad
	}
	return append(bad[:n], fmt.Sprintf("... and %d more", len(bad)-n))
}
