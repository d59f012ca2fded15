//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/chaos/checker"
)

// callTimeout bounds each call of the load: a server that is down, paused or cut
// off leaves the outcome unknown soon, and the client goes on.
const callTimeout = 3 * time.Second

// Each agent's nodes take ports from firstNodePort on: every spawn takes the next
// port, modulo nodePorts, so that live nodes on one agent never share one.
const (
	firstNodePort = 51000
	nodePorts     = 4000
)

// maxLiveNodes is how many nodes one client keeps at most: 4 clients of 3 nodes stay
// under the agents' -max-nodes, and the machine's two cores keep up.
const maxLiveNodes = 3

// load is the load generator: clients that spawn, stop and read nodes through random
// servers, recording every call.
type load struct {
	c       *cluster
	history *checker.History
	seed    uint64
	spawns  atomic.Uint64
}

// loadClient is one client of the load, with its own view: the nodes it spawned, by
// name (the node routes take a name as well as an ID).
type loadClient struct {
	l     *load
	id    int
	rng   *rand.Rand
	live  []string // names spawned (OK or unknown) and not yet stopped
	known []string // every name spawned (OK or unknown), for reads
}

// run runs n clients until ctx ends.
func (l *load) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := &loadClient{l: l, id: i, rng: rand.New(rand.NewPCG(l.seed, uint64(i)))}
			lc.loop(ctx)
		}()
	}
	wg.Wait()
}

// loop makes one call after another, with a short pause between them.
func (lc *loadClient) loop(ctx context.Context) {
	for ctx.Err() == nil {
		switch r := lc.rng.IntN(10); {
		case len(lc.live) < maxLiveNodes && r < 4:
			lc.spawn()
		case len(lc.live) > 0 && r < 6:
			lc.stop()
		default:
			lc.read()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(50+lc.rng.IntN(200)) * time.Millisecond):
		}
	}
}

// server picks a server at random, leader or follower, up or down.
func (lc *loadClient) server() *member {
	s := lc.l.c.servers
	return s[lc.rng.IntN(len(s))]
}

func (lc *loadClient) spawn() {
	n := lc.l.spawns.Add(1)
	name := fmt.Sprintf("chaos-%d-%d", lc.id, n)
	agents := lc.l.c.agents
	agent := agents[lc.rng.IntN(len(agents))]
	s := lc.server()
	op := checker.Op{Client: lc.id, Kind: checker.Spawn, Name: name, Server: s.httpAddr()}
	req := &api.SpawnRequest{Name: name, Agent: agent.name, Port: firstNodePort + int(n%nodePorts), MemoryLimitMB: 64}
	node, _ := lc.call(&op, 201, func(ctx context.Context) (*api.Node, error) {
		return s.client(callTimeout).SpawnNode(ctx, req)
	})
	if node != nil {
		op.NodeID = node.ID
	}
	if op.Outcome != checker.Failed {
		lc.live = append(lc.live, name)
		lc.known = append(lc.known, name)
	}
	lc.l.history.Add(op)
}

func (lc *loadClient) stop() {
	i := lc.rng.IntN(len(lc.live))
	name := lc.live[i]
	s := lc.server()
	op := checker.Op{Client: lc.id, Kind: checker.Stop, Name: name, Server: s.httpAddr()}
	node, _ := lc.call(&op, 200, func(ctx context.Context) (*api.Node, error) {
		return s.client(callTimeout).StopNode(ctx, name, 0)
	})
	if node != nil {
		op.NodeID = node.ID
	}
	// Whatever the outcome, the client is done with the node: a stop that failed
	// or may not have happened leaves it to the final checks.
	lc.live = append(lc.live[:i], lc.live[i+1:]...)
	lc.l.history.Add(op)
}

func (lc *loadClient) read() {
	if len(lc.known) == 0 {
		return
	}
	name := lc.known[lc.rng.IntN(len(lc.known))]
	s := lc.server()
	op := checker.Op{Client: lc.id, Kind: checker.Read, Name: name, Server: s.httpAddr(), Stale: lc.rng.IntN(2) == 0}
	node, err := lc.call(&op, 200, func(ctx context.Context) (*api.Node, error) {
		cl := s.client(callTimeout)
		if op.Stale {
			cl = cl.WithStale()
		}
		return cl.Node(ctx, name)
	})
	if api.IsNotFound(err) {
		op.Outcome = checker.OK // a definite answer: no such node
	}
	if node != nil {
		op.Found, op.Status, op.NodeID = true, node.Status, node.ID
	}
	lc.l.history.Add(op)
}

// call runs f, bounded by callTimeout, and records its times and outcome in op;
// okCode is the status the server answers a success with (the client does not
// pass it on).
func (lc *loadClient) call(op *checker.Op, okCode int, f func(context.Context) (*api.Node, error)) (*api.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	op.Call = time.Now()
	node, err := f(ctx)
	op.Return = time.Now()
	op.Outcome, op.HTTPStatus = outcome(err)
	if err != nil {
		op.Error = err.Error()
	} else {
		op.HTTPStatus = okCode
	}
	return node, err
}

// outcome classifies a call's error: none is OK; a 4xx is a definite refusal; a
// 5xx, a timeout or a broken connection leaves the outcome unknown, since the
// leader may have applied the write before the answer was lost.
func outcome(err error) (checker.Outcome, int) {
	if err == nil {
		return checker.OK, 0
	}
	var se *api.StatusError
	if errors.As(err, &se) {
		if se.Code >= 400 && se.Code < 500 {
			return checker.Failed, se.Code
		}
		return checker.Unknown, se.Code
	}
	return checker.Unknown, 0
}
