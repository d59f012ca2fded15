//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

const eventStoreAddr = "127.0.0.31:50052"

// TestEventHistoryIsCompleteThroughChaos runs three servers, the event store and two
// agents as real processes, keeps operating the fleet while it kills the leader twice
// and stops the event store for a while, and then checks that the store holds every
// event 1..N exactly once, in order, identical to what each server's FSM derived.
func TestEventHistoryIsCompleteThroughChaos(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	startStore := func() *proc {
		return start(t, "event store", "storage", "-bind=127.0.0.31", "-port=50052", "-data-dir="+filepath.Join(dir, "events"))
	}
	store := startStore()
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}, extra: []string{
		"-event-store=" + eventStoreAddr, "-heartbeat-interval=300ms", "-agent-degraded-after=5s", "-agent-offline-after=10s",
	}}
	for _, ip := range serverIPs {
		c.start(ip)
	}
	c.stablePeers("127.0.0.11", "", 30*time.Second)
	agents := map[string]string{"agent-001": "127.0.0.21", "agent-002": "127.0.0.22"}
	for name, ip := range agents {
		start(t, name, "agent", "-bind="+ip, "-name="+name, "-data-dir="+filepath.Join(dir, name),
			"-join=127.0.0.11", "-retry-interval=200ms", "-max-nodes=50")
	}
	clients := map[string]*api.Client{}
	for _, ip := range serverIPs {
		clients[ip], _ = api.NewClient(&api.Config{Address: "http://" + ip + ":7000"})
	}
	cliPoll.WaitFor(t, 30*time.Second, "two healthy agents", func() error {
		as, err := clients["127.0.0.12"].Agents(context.Background())
		if err != nil {
			return err
		}
		healthy := 0
		for _, a := range as {
			if a.Status == "healthy" {
				healthy++
			}
		}
		if healthy != 2 {
			return fmt.Errorf("%d healthy agents", healthy)
		}
		return nil
	})

	// Operations go on throughout: spawn nodes, stop some, kill some processes.
	var (
		mu   sync.Mutex
		down = map[string]bool{} // servers currently killed
	)
	anyClient := func() *api.Client {
		mu.Lock()
		defer mu.Unlock()
		first := rand.Intn(len(serverIPs))
		for i := range serverIPs {
			if ip := serverIPs[(first+i)%len(serverIPs)]; !down[ip] {
				return clients[ip]
			}
		}
		return clients[serverIPs[0]]
	}
	ctx, stopOps := context.WithCancel(context.Background())
	opsDone := make(chan struct{})
	var kills atomic.Int32
	go func() {
		defer close(opsDone)
		port := 50100
		var running []*api.Node
		for i := 0; ctx.Err() == nil; i++ {
			cl := anyClient()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			switch {
			case i%4 == 3 && len(running) > 0:
				n := running[0]
				running = running[1:]
				_, _ = cl.StopNode(cctx, n.ID, time.Second)
			case i%5 == 4 && len(running) > 0:
				// Kill the newest node once it runs, so that every run has crashes.
				id := running[len(running)-1].ID
				for cctx.Err() == nil {
					cur, err := anyClient().Node(cctx, id)
					if err == nil && cur.Status == "running" && cur.PID > 0 {
						if syscall.Kill(cur.PID, syscall.SIGKILL) == nil {
							kills.Add(1)
						}
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			default:
				agent := "agent-001"
				if i%2 == 1 {
					agent = "agent-002"
				}
				port++
				n, err := cl.SpawnNode(cctx, &api.SpawnRequest{Agent: agent, Port: port, MemoryLimitMB: 128,
					Restart: api.RestartPolicy{Delay: api.Duration(100 * time.Millisecond)}})
				if err == nil {
					running = append(running, n)
				}
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()

	killLeader := func() {
		peers := c.stablePeers("127.0.0.11", "", 60*time.Second)
		var ip string
		for _, p := range peers {
			if p.State == "leader" {
				ip = p.Address[:len(p.Address)-len(":7002")]
			}
		}
		mu.Lock()
		down[ip] = true
		mu.Unlock()
		c.procs[ip].kill()
		t.Logf("killed leader %s", ip)
		others := []string{}
		for _, o := range serverIPs {
			if o != ip {
				others = append(others, o)
			}
		}
		cliPoll.WaitFor(t, 30*time.Second, "a new leader", func() error {
			l, err := clients[others[0]].Leader(context.Background())
			if err != nil || l == "" || l == ip+":7002" {
				return fmt.Errorf("leader %q, %v", l, err)
			}
			return nil
		})
		c.start(ip)
		mu.Lock()
		down[ip] = false
		mu.Unlock()
	}

	time.Sleep(3 * time.Second) // let operations run
	killLeader()
	time.Sleep(2 * time.Second)
	if code := store.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("event store exited %d", code)
	}
	t.Log("event store stopped")
	time.Sleep(3 * time.Second) // operations go on; events wait in the outbox
	startStore()
	t.Log("event store started again")
	time.Sleep(2 * time.Second)
	killLeader()
	time.Sleep(2 * time.Second)
	stopOps()
	<-opsDone

	if kills.Load() == 0 {
		t.Fatal("no node was killed: the test did not exercise crashes")
	}
	// Every order ends, and every restart after a kill: no node is left pending,
	// stopping or restarting, so that the history stops growing.
	c.stablePeers("127.0.0.11", "", 60*time.Second)
	cliPoll.WaitFor(t, 60*time.Second, "every node order to end", func() error {
		nodes, err := clients["127.0.0.11"].Nodes(context.Background(), "")
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Status == "pending" || n.Status == "stopping" || n.Status == "restarting" {
				return fmt.Errorf("node %s is still %s", n.ID, n.Status)
			}
		}
		return nil
	})

	// Every server derived the same history; the store holds exactly that, once. A
	// crash the agents report late still adds to the history (a node killed just
	// before the operations stopped): both are read again until they agree.
	var history, stored []*events.Event
	cliPoll.WaitFor(t, 60*time.Second, "the servers to derive one history, and the store to hold it", func() error {
		derived := map[string][]*events.Event{}
		for _, ip := range serverIPs {
			var evs []*events.Event
			if err := getJSON("http://"+ip+":7000/v1/operator/events/derived", &evs); err != nil {
				return err
			}
			derived[ip] = evs
		}
		a, b, d := derived["127.0.0.11"], derived["127.0.0.12"], derived["127.0.0.13"]
		if len(a) == 0 || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(b, d) {
			return fmt.Errorf("servers disagree: %d, %d, %d events", len(a), len(b), len(d))
		}
		history = a
		var err error
		if stored, err = storedEvents(); err != nil {
			return err
		}
		if len(stored) != len(history) {
			return fmt.Errorf("the store holds %d events, the servers derived %d", len(stored), len(history))
		}
		return nil
	})
	for i, e := range history {
		if e.Seq != uint64(i+1) {
			t.Fatalf("derived history has seq %d at position %d", e.Seq, i)
		}
	}
	for i, e := range stored {
		if e.Seq != uint64(i+1) {
			t.Fatalf("stored history has seq %d at position %d: a gap or a duplicate", e.Seq, i)
		}
		if !reflect.DeepEqual(e, history[i]) {
			a, _ := json.Marshal(e)
			b, _ := json.Marshal(history[i])
			t.Fatalf("event %d differs:\nstored  %s\nderived %s", e.Seq, a, b)
		}
	}
	counts := map[events.Type]int{}
	for _, e := range stored {
		counts[e.Type]++
	}
	t.Logf("%d events stored once each, in order: %v (%d kills)", len(stored), counts, kills.Load())
	checkOutcomes(t, stored)
	for _, typ := range []events.Type{events.SpawnRequested, events.SpawnSucceeded, events.StopSucceeded, events.NodeCrashed, events.NodeRestarted} {
		if counts[typ] == 0 {
			t.Errorf("no %s event in the history", typ)
		}
	}
}

// checkOutcomes checks that every spawn and stop request has exactly one outcome
// event, caused by it.
func checkOutcomes(t *testing.T, history []*events.Event) {
	t.Helper()
	outcomes := map[uint64][]events.Type{}
	for _, e := range history {
		switch e.Type {
		case events.SpawnSucceeded, events.SpawnFailed, events.StopSucceeded, events.StopFailed:
			if e.CausedBy != 0 {
				outcomes[e.CausedBy] = append(outcomes[e.CausedBy], e.Type)
			}
		}
	}
	for _, e := range history {
		if e.Type != events.SpawnRequested && e.Type != events.StopRequested {
			continue
		}
		if got := outcomes[e.Seq]; len(got) != 1 {
			var trail []string
			for _, o := range history {
				if o.NodeID == e.NodeID {
					b, _ := json.Marshal(o)
					trail = append(trail, string(b))
				}
			}
			t.Errorf("%s %d (node %s) has outcomes %v, want exactly one; its events:\n%s", e.Type, e.Seq, e.NodeID, got, strings.Join(trail, "\n"))
		}
	}
}

// storedEvents reads every event concept from the event store, in time order, sorted
// by seq.
func storedEvents() ([]*events.Event, error) {
	conn, err := grpc.NewClient(eventStoreAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return storedEventsFrom(conn)
}

// storedEventsFrom is storedEvents through conn, a connection to the event store.
func storedEventsFrom(conn *grpc.ClientConn) ([]*events.Event, error) {
	cl := gridpb.NewStorageClient(conn)
	var out []*events.Event
	token := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cl.Query(ctx, &gridpb.QueryRequest{
			Filters: []*gridpb.Filter{{Attribute: "kind", Values: []string{events.KindEvent}}},
			Limit:   1000, PageToken: token,
		})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, c := range resp.GetConcepts() {
			var e events.Event
			if err := json.Unmarshal(c.GetContent(), &e); err != nil {
				return nil, fmt.Errorf("concept %s: %w", c.GetId(), err)
			}
			out = append(out, &e)
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	sortBySeq(out)
	return out, nil
}

func sortBySeq(evs []*events.Event) {
	sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
}

// getJSON decodes the JSON answer to GET url.
func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
