// Package deploy holds the test of Grid's container deployment: the image
// (Dockerfile) and the compose grid (compose.yaml, brought up by deploy/up). It
// runs only with GRID_TEST_DEPLOY=1 (make test-deploy, which builds the image
// first), as it needs a Docker engine and docker-compose.
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
)

// Budgets of the steps. The whole test takes about a minute on a 2-core machine;
// these only bound a failure.
const (
	upTimeout       = 3 * time.Minute // deploy/up: secrets, servers, ACLs, agents
	electionTimeout = time.Minute
	shipTimeout     = time.Minute
)

// poll is the pace of the waits: each check runs a process in a container.
var poll = gridtest.Poller{Interval: 500 * time.Millisecond}

// grid is one compose grid of the test, under a project name of its own.
type grid struct {
	t       *testing.T
	dir     string   // this directory: compose.yaml, compose, up
	env     []string // GRID_SECRETS, GRID_IMAGE, COMPOSE_PROJECT_NAME, ...
	project string
	net     string // GRID_NET: the first three bytes of the network's /24
	secrets string
	token   string // the management token, once deploy/up made it

	// Once: an interrupt and the test's cleanup may both tear down, at once.
	teardownOnce sync.Once
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "test-deploy: "+format+"\n", args...)
}

// TestDeploy brings the compose grid up from the image, checks that three servers
// vote, spawns a node on each agent, stops the leader's container, sees another
// server lead, checks that every event is there, in order, and shipped to the
// event store; brings the grid down and up again from its volumes and checks it
// all again; and removes every container, network and volume it made.
func TestDeploy(t *testing.T) {
	if os.Getenv("GRID_TEST_DEPLOY") != "1" {
		t.Skip("GRID_TEST_DEPLOY=1 runs it (make test-deploy): it needs a Docker engine, docker-compose and the image")
	}
	g := newGrid(t)

	progress("bringing the grid up (project %s, network %s.0/24): deploy/up", g.project, g.net)
	g.up()
	leader := g.checkVoters()

	nodes := map[string]string{} // agent -> node ID
	for i, agent := range []string{"agent1", "agent2"} {
		progress("spawning a node on %s", agent)
		out := g.grid("server1", "node", "spawn", "-json", "-agent="+agent, fmt.Sprintf("-port=%d", 50061+i))
		var n api.Node
		if err := json.Unmarshal(out, &n); err != nil {
			t.Fatalf("grid node spawn -json: %v: %s", err, out)
		}
		if n.Status != "running" {
			t.Fatalf("node %s on %s is %s, want running", n.ID, agent, n.Status)
		}
		nodes[agent] = n.ID
	}
	g.checkIsolation()

	progress("stopping the leader's container (%s)", leader)
	g.compose("stop", leader)
	var other string
	for _, s := range []string{"server1", "server2", "server3"} {
		if s != leader {
			other = s
			break
		}
	}
	var newLeader string
	poll.WaitFor(t, electionTimeout, "a new leader", func() error {
		ps, err := g.tryPeers(other)
		if err != nil {
			return err
		}
		if newLeader = leaderOf(ps); newLeader == "" || newLeader == leader {
			return fmt.Errorf("%s sees leader %q", other, newLeader)
		}
		return nil
	})
	progress("%s leads now", newLeader)

	g.checkHistory(newLeader, nodes)

	// The volumes keep the grid: brought down and up again, with new containers
	// (the old leader's too), its servers find each other at their addresses, elect
	// a leader, and the agents run their nodes again.
	progress("bringing the grid down, keeping its volumes, and up again")
	g.compose("down", "--timeout=10")
	g.up()
	g.checkVoters()
	for agent, id := range nodes {
		poll.WaitFor(t, electionTimeout, "node "+id+" running again on "+agent, func() error {
			out, err := g.tryGrid("server1", "node", "status", "-json", id)
			if err != nil {
				return err
			}
			var ns []api.Node
			if err := json.Unmarshal(out, &ns); err != nil {
				return fmt.Errorf("grid node status -json: %v: %s", err, out)
			}
			if len(ns) != 1 || ns[0].Status != "running" {
				return fmt.Errorf("node %s: %+v", id, ns)
			}
			return nil
		})
	}
	g.checkHistory("server1", nodes)
}

// up runs deploy/up and reads the management token it made.
func (g *grid) up() {
	g.t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(g.dir, "up"))
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("deploy/up: %v", err)
	}
	progress("up in %s", time.Since(start).Round(time.Second))
	tok, err := os.ReadFile(filepath.Join(g.secrets, "management.token"))
	if err != nil {
		g.t.Fatal(err)
	}
	g.token = strings.TrimSpace(string(tok))
}

// checkVoters checks that list-peers shows the three servers as voters, and returns
// the leader's name.
func (g *grid) checkVoters() string {
	g.t.Helper()
	progress("checking that list-peers shows three voters")
	peers := g.peers("server1")
	var voters []string
	for _, p := range peers {
		if p.Voter {
			voters = append(voters, p.Node)
		}
	}
	slices.Sort(voters)
	if want := []string{"server1", "server2", "server3"}; !slices.Equal(voters, want) {
		g.t.Fatalf("voters %q, want %q (peers %+v)", voters, want, peers)
	}
	leader := leaderOf(peers)
	if leader == "" {
		g.t.Fatalf("no leader among %+v", peers)
	}
	return leader
}

// checkHistory waits until every event is shipped to the event store, then checks,
// through service, that the history has no gap, that both agents registered and
// that each node's spawn was requested and succeeded.
func (g *grid) checkHistory(service string, nodes map[string]string) {
	g.t.Helper()
	progress("checking the event history")
	// The leader ships what an old one had not: every event reaches the store.
	poll.WaitFor(g.t, shipTimeout, "every event shipped to the event store", func() error {
		out, err := g.tryGrid(service, "status", "-json")
		if err != nil {
			return err
		}
		var st api.Status
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("grid status -json: %v", err)
		}
		if !st.Events.StoreReachable || st.Events.Waiting != 0 || st.Events.ShippedSeq != st.Events.LastSeq {
			return fmt.Errorf("events: %+v", st.Events)
		}
		return nil
	})
	var evs []struct {
		Seq    uint64 `json:"seq"`
		Type   string `json:"type"`
		NodeID string `json:"node_id"`
		Agent  string `json:"agent_id"`
	}
	out := g.grid(service, "event", "list", "-json", "-asc", "-limit=10000")
	if err := json.Unmarshal(out, &evs); err != nil {
		g.t.Fatalf("grid event list -json: %v: %s", err, out)
	}
	seen := map[string]bool{} // "type node-or-agent"
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			g.t.Fatalf("event %d has seq %d: the history has a gap (%d events)", i+1, e.Seq, len(evs))
		}
		seen[e.Type+" "+e.NodeID] = true
		seen[e.Type+" agent "+e.Agent] = true
	}
	for _, agent := range []string{"agent1", "agent2"} {
		if !seen["agent_registered agent "+agent] {
			g.t.Errorf("no agent_registered event for %s in %d events", agent, len(evs))
		}
	}
	for agent, id := range nodes {
		for _, typ := range []string{"spawn_requested", "spawn_succeeded"} {
			if !seen[typ+" "+id] {
				g.t.Errorf("no %s event for node %s on %s in %d events", typ, id, agent, len(evs))
			}
		}
	}
	progress("%d events, seq 1-%d, all shipped", len(evs), len(evs))
}

// checkIsolation checks that the agents, which run unprivileged in their containers
// (cgroupfs read-only), say that their nodes run without cgroups, and why, rather
// than pretend to limit them.
func (g *grid) checkIsolation() {
	g.t.Helper()
	for _, agent := range []string{"agent1", "agent2"} {
		out := g.grid("server1", "agent", "status", "-json", agent)
		var as []api.Agent
		if err := json.Unmarshal(out, &as); err != nil || len(as) != 1 {
			g.t.Fatalf("grid agent status -json %s: %v: %s", agent, err, out)
		}
		iso := as[0].Isolation
		if !strings.HasPrefix(iso, "none: ") || len(iso) <= len("none: ") {
			g.t.Fatalf("%s reports isolation %q; an unprivileged container cannot make cgroups: want \"none: \" and why", agent, iso)
		}
		progress("%s isolation: %s", agent, iso)
	}
}

// newGrid prepares a grid under a project name of its own and registers its
// teardown, which also runs if the test is interrupted.
func newGrid(t *testing.T) *grid {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
	}
	image := os.Getenv("GRID_IMAGE")
	if image == "" {
		image = "grid:dev"
	}
	if out, err := exec.Command("docker", "image", "inspect", image).CombinedOutput(); err != nil {
		t.Fatalf("no image %s (make image builds it): %v: %s", image, err, firstLine(out))
	}
	g := &grid{t: t, dir: dir, project: fmt.Sprintf("grid-test-%d", os.Getpid())}
	g.net = freeNet(t)
	// Not t.TempDir: the grid user of the containers owns the files in it. Nor under
	// $TMPDIR: the Docker engine mounts the directory by its path in the engine's
	// mount namespace, which need not be the test's (a test run with its own /tmp
	// would hand the containers an empty directory). The repository's own directory
	// is seen alike by both.
	if g.secrets, err = os.MkdirTemp(dir, ".test-secrets-*"); err != nil {
		t.Fatal(err)
	}
	g.env = append(os.Environ(),
		"GRID_IMAGE="+image,
		"GRID_SECRETS="+g.secrets,
		"COMPOSE_PROJECT_NAME="+g.project,
		"GRID_NET="+g.net,
		// Any free host port: the test reaches the servers with docker exec, and
		// must not collide with a grid of make compose-up.
		"GRID_HTTP_PUBLISH=127.0.0.1:",
	)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			progress("interrupted: removing the grid")
			g.teardown()
			os.Exit(1)
		case <-done:
		}
	}()
	t.Cleanup(func() {
		close(done)
		signal.Stop(sigs)
		if t.Failed() {
			g.dumpLogs()
		}
		g.teardown()
		g.checkGone()
	})
	return g
}

// freeNet picks a /24 of 10.213.0.0/16 for the grid's network that no Docker
// network has, other than make compose-up's 10.213.0.0/24, starting at one that
// depends on the process, so that tests running at once start apart.
func freeNet(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("docker", "network", "ls", "-q").Output()
	if err != nil {
		t.Fatalf("docker network ls: %v", err)
	}
	used := map[string]bool{}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		out, err := exec.Command("docker", append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...).Output()
		if err != nil {
			t.Fatalf("docker network inspect: %v", err)
		}
		for _, subnet := range strings.Fields(string(out)) {
			used[subnet] = true
		}
	}
	first := os.Getpid()%254 + 1
	for i := range 254 {
		net := fmt.Sprintf("10.213.%d", (first+i)%254+1)
		if !used[net+".0/24"] {
			return net
		}
	}
	t.Fatal("no free /24 in 10.213.0.0/16 for the grid's network")
	return ""
}

// teardown removes the grid's containers, network and volumes, and its secrets.
func (g *grid) teardown() { g.teardownOnce.Do(g.remove) }

func (g *grid) remove() {
	progress("removing the containers, network and volumes of %s", g.project)
	cmd := exec.Command(filepath.Join(g.dir, "compose"), "down", "--volumes", "--remove-orphans", "--timeout=10")
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		progress("docker-compose down: %v", err)
	}
	if err := os.RemoveAll(g.secrets); err != nil {
		progress("remove %s: %v", g.secrets, err)
	}
}

// checkGone fails the test if anything labelled with the project is left.
func (g *grid) checkGone() {
	label := "label=com.docker.compose.project=" + g.project
	for _, kind := range [][]string{{"ps", "-a"}, {"network", "ls"}, {"volume", "ls"}} {
		args := append(kind, "-q", "--filter", label)
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			g.t.Errorf("docker %s: %v", strings.Join(args, " "), err)
		} else if s := strings.TrimSpace(string(out)); s != "" {
			g.t.Errorf("left behind by docker-compose down (docker %s): %s", strings.Join(kind, " "), strings.Fields(s))
		}
	}
}

// dumpLogs writes the end of every container's log to stderr, for a failure.
func (g *grid) dumpLogs() {
	cmd := exec.Command(filepath.Join(g.dir, "compose"), "logs", "--no-color", "--tail=40")
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, os.Stderr, os.Stderr
	_ = cmd.Run()
}

// compose runs deploy/compose with args, failing the test if it fails.
func (g *grid) compose(args ...string) []byte {
	g.t.Helper()
	out, err := g.tryCompose(args...)
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

func (g *grid) tryCompose(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(g.dir, "compose"), args...)
	cmd.Env = g.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("deploy/compose %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// grid runs the CLI in service's container with the management token.
func (g *grid) grid(service string, args ...string) []byte {
	g.t.Helper()
	out, err := g.tryGrid(service, args...)
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

func (g *grid) tryGrid(service string, args ...string) ([]byte, error) {
	id, err := g.tryCompose("ps", "-q", service)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("docker", append([]string{"exec", "-e", "GRID_TOKEN=" + g.token, strings.TrimSpace(string(id)), "grid"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("grid %s (in %s): %v: %s", strings.Join(args, " "), service, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// peers is `grid operator raft list-peers` as service sees it.
func (g *grid) peers(service string) []api.RaftServer {
	g.t.Helper()
	ps, err := g.tryPeers(service)
	if err != nil {
		g.t.Fatal(err)
	}
	return ps
}

func (g *grid) tryPeers(service string) ([]api.RaftServer, error) {
	out, err := g.tryGrid(service, "operator", "raft", "list-peers", "-json")
	if err != nil {
		return nil, err
	}
	var ps []api.RaftServer
	if err := json.Unmarshal(out, &ps); err != nil {
		return nil, fmt.Errorf("list-peers -json: %v: %s", err, out)
	}
	return ps, nil
}

// leaderOf is the name of the leader among ps, "" if none.
func leaderOf(ps []api.RaftServer) string {
	for _, p := range ps {
		if p.Leader {
			return p.Node
		}
	}
	return ""
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
