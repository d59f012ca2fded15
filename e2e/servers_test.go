//go:build linux

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peer is one entry of `grid operator raft list-peers -json`.
type peer struct {
	Node    string `json:"node"`
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	Voter   bool   `json:"voter"`
}

// serverCluster is three `grid server` processes on 127.0.0.11-13 with default ports.
type serverCluster struct {
	t     testing.TB
	dir   string
	procs map[string]*proc // by IP
	// extra flags for every server
	extra []string
	// own, if set, gives the flags of one server only: its certificate.
	own func(ip string) []string
	// bin, if set, is the grid binary the servers run instead of the tests' own
	// (built with -race): benchmarks run one built without it.
	bin string
}

var serverIPs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

func (c *serverCluster) start(ip string) {
	args := append([]string{"server",
		"-bind=" + ip, "-name=server-" + ip,
		"-data-dir=" + filepath.Join(c.dir, ip),
		"-bootstrap-expect=3", "-join=127.0.0.11", "-retry-interval=200ms",
		"-log-level=debug"}, c.extra...)
	if c.own != nil {
		args = append(args, c.own(ip)...)
	}
	bin := gridBin
	if c.bin != "" {
		bin = c.bin
	}
	c.procs[ip] = startArgv(c.t, "server "+ip, append([]string{bin}, args...))
}

func address(ip string) string { return "-address=http://" + ip + ":7000" }

// stablePeers waits until the server at ip reports three voters, one of them the
// leader (and not the one named by notLeader), and returns the list.
func (c *serverCluster) stablePeers(ip, notLeader string, timeout time.Duration) []peer {
	c.t.Helper()
	var peers []peer
	cliPoll.WaitFor(c.t, timeout, "three voters and a leader on "+ip, func() error {
		peers = nil
		if err := gridJSON(&peers, "operator", "raft", "list-peers", address(ip)); err != nil {
			return err
		}
		voters, leaders := 0, 0
		for _, p := range peers {
			if p.Voter {
				voters++
			}
			if p.State == "leader" {
				if p.ID == notLeader {
					return fmt.Errorf("old leader %s still reported", p.ID)
				}
				leaders++
			}
		}
		if voters != 3 || leaders != 1 {
			return fmt.Errorf("%d voters and %d leaders: %+v", voters, leaders, peers)
		}
		return nil
	})
	return peers
}

func leaderOf(peers []peer) peer {
	for _, p := range peers {
		if p.State == "leader" {
			return p
		}
	}
	return peer{}
}

func TestThreeServersFailoverAndRejoin(t *testing.T) {
	c := &serverCluster{t: t, dir: t.TempDir(), procs: map[string]*proc{}}
	// Reverse order: the server everyone joins comes up last.
	for i := len(serverIPs) - 1; i >= 0; i-- {
		c.start(serverIPs[i])
	}
	peers := c.stablePeers("127.0.0.12", "", 30*time.Second)
	old := leaderOf(peers)
	var oldIP string
	for _, ip := range serverIPs {
		if old.Address == ip+":7002" {
			oldIP = ip
		}
	}
	if oldIP == "" {
		t.Fatalf("leader %+v is not one of ours", old)
	}

	// Members agree: three alive servers, one leader.
	var members []struct {
		Name, Status, Role string
		Leader             bool
	}
	if err := gridJSON(&members, "members", address("127.0.0.13")); err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("members: %+v", members)
	}

	// kill -9 the leader: another server leads.
	c.procs[oldIP].kill()
	var other string
	for _, ip := range serverIPs {
		if ip != oldIP {
			other = ip
			break
		}
	}
	var newLeader peer
	cliPoll.WaitFor(t, 30*time.Second, "a new leader", func() error {
		var ps []peer
		if err := gridJSON(&ps, "operator", "raft", "list-peers", address(other)); err != nil {
			return err
		}
		newLeader = leaderOf(ps)
		if newLeader.ID == "" || newLeader.ID == old.ID {
			return fmt.Errorf("leader is %q", newLeader.ID)
		}
		return nil
	})
	t.Logf("leader moved from %s to %s", old.Node, newLeader.Node)

	// Restart the killed server with its data dir: it rejoins as a voter and, from its
	// own point of view too, the cluster has three voters and a leader.
	c.start(oldIP)
	peers = c.stablePeers(oldIP, "", 30*time.Second)
	for _, p := range peers {
		if p.ID == old.ID && !p.Voter {
			t.Errorf("rejoined server is not a voter: %+v", p)
		}
	}
	out, _, code := grid("operator", "raft", "list-peers", address(oldIP))
	if code != 0 {
		t.Fatalf("list-peers exit %d", code)
	}
	t.Logf("list-peers after rejoin:\n%s", out)

	// SIGTERM and SIGINT: each server leaves gracefully and exits 0.
	for i, ip := range serverIPs {
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGINT
		}
		if code := c.procs[ip].stop(t, sig, 30*time.Second); code != 0 {
			t.Errorf("server %s exited %d after %v", ip, code, sig)
		}
	}
}

func TestClientErrorsAndExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no server", []string{"members", "-address=http://127.0.0.19:7000"}, "connection refused"},
		{"bad address", []string{"operator", "raft", "list-peers", "-address=ftp://x"}, "scheme"},
		{"bad flag", []string{"members", "-bogus"}, "bogus"},
		{"remove-peer without a peer", []string{"operator", "raft", "remove-peer", "-address=http://127.0.0.19:7000"}, "peer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := grid(tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			if !contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestJoinGivesUpAfterRetryMax(t *testing.T) {
	p := start(t, "lonely server", "server", "-bind=127.0.0.14", "-data-dir="+t.TempDir(),
		"-join=127.0.0.15", "-retry-interval=50ms", "-retry-max=3")
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("server still running after exhausting -retry-max")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if out := p.out.String(); !strings.Contains(out, "after 3 attempts") {
		t.Fatalf("output does not say why it stopped:\n%s", out)
	}
}
