//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// member is one entry of `grid members -json`.
type member struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Role   string `json:"role"`
	Leader bool   `json:"leader"`
}

// gridView checks what the server at ip says through the CLI: every server in ips
// alive, three voters and one leader. It returns the leader's Raft ID.
func gridView(prefix []string, ip string, ips []string) (string, error) {
	var members []member
	if err := gridJSONVia(prefix, &members, "members", address(ip)); err != nil {
		return "", err
	}
	alive := map[string]bool{}
	for _, m := range members {
		if m.Status == "alive" {
			alive[m.Name] = true
		}
	}
	for _, want := range ips {
		if !alive["server-"+want] {
			return "", fmt.Errorf("%s sees server-%s not alive: %+v", ip, want, members)
		}
	}
	var peers []peer
	if err := gridJSONVia(prefix, &peers, "operator", "raft", "list-peers", address(ip)); err != nil {
		return "", err
	}
	voters, leaders, leader := 0, 0, ""
	for _, p := range peers {
		if p.Voter {
			voters++
		}
		if p.State == "leader" {
			leaders++
			leader = p.ID
		}
	}
	if voters != len(ips) || leaders != 1 {
		return "", fmt.Errorf("%s reports %d voters and %d leaders: %+v", ip, voters, leaders, peers)
	}
	return leader, nil
}

// waitForGrid waits until every server in ips sees every one of them alive, three
// voters and the same one leader, and returns the leader's Raft ID.
func waitForGrid(t *testing.T, prefix []string, ips []string, timeout time.Duration) string {
	t.Helper()
	var leader string
	cliPoll.WaitFor(t, timeout, "every server to see all alive and one leader", func() error {
		leaders := map[string]bool{}
		for _, ip := range ips {
			id, err := gridView(prefix, ip, ips)
			if err != nil {
				return err
			}
			leaders[id] = true
			leader = id
		}
		if len(leaders) != 1 {
			return fmt.Errorf("the servers name different leaders: %v", leaders)
		}
		return nil
	})
	return leader
}

// serverArgs is the command line of server-IP, joining join if it is set.
func serverArgs(dir, ip, join string, extra ...string) []string {
	args := []string{"server", "-bind=" + ip, "-name=server-" + ip,
		"-data-dir=" + filepath.Join(dir, ip), "-bootstrap-expect=3", "-log-level=debug"}
	if join != "" {
		args = append(args, "-join="+join)
	}
	return append(args, extra...)
}

// TestRestartedServerRejoinsFromSnapshot: the first server, started without -join,
// is stopped and started again with the same command. It rejoins the others from
// the gossip snapshot in its data dir, so the CLI works through it.
func TestRestartedServerRejoinsFromSnapshot(t *testing.T) {
	ips := []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}
	dir := t.TempDir()
	first := serverArgs(dir, ips[0], "")
	procs := map[string]*proc{ips[0]: start(t, "server "+ips[0], first...)}
	for _, ip := range ips[1:] {
		procs[ip] = start(t, "server "+ip, serverArgs(dir, ip, ips[0], "-retry-interval=200ms")...)
	}
	waitForGrid(t, nil, ips, 60*time.Second)

	// A graceful stop shows as left.
	if code := procs[ips[0]].stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("server %s exited %d after SIGTERM", ips[0], code)
	}
	cliPoll.WaitFor(t, 30*time.Second, "the others to see the first server left", func() error {
		var members []member
		if err := gridJSON(&members, "members", address(ips[1])); err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == "server-"+ips[0] && m.Status == "left" {
				return nil
			}
		}
		return fmt.Errorf("members %+v", members)
	})

	procs[ips[0]] = start(t, "server "+ips[0]+" again", first...)
	waitForGrid(t, nil, ips, 60*time.Second)
	cliPoll.WaitFor(t, 30*time.Second, "grid status through the restarted server", func() error {
		if _, stderr, code := grid("status", address(ips[0])); code != 0 {
			return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr))
		}
		return nil
	})
}

// TestServersStartedTogetherFormAGridAtOnce: servers started by a script in the same
// second, all joining the first one, which is not up yet when the others try. Their
// first join fails; the next comes a second later, not after -retry-interval.
func TestServersStartedTogetherFormAGridAtOnce(t *testing.T) {
	ips := []string{"127.0.0.44", "127.0.0.45", "127.0.0.46"}
	dir := t.TempDir()
	// A retry interval far longer than the test's deadline: only the backoff's
	// first, short retries can form the grid in time.
	var procs []*proc
	for _, ip := range ips[1:] {
		procs = append(procs, start(t, "server "+ip, serverArgs(dir, ip, ips[0], "-retry-interval=5m")...))
	}
	cliPoll.WaitFor(t, 30*time.Second, "the first join of the servers started early to fail", func() error {
		for _, p := range procs {
			if !strings.Contains(p.out.String(), "join failed, will retry") {
				return fmt.Errorf("%s has not failed a join yet", p.name)
			}
		}
		return nil
	})
	start(t, "server "+ips[0], serverArgs(dir, ips[0], "")...)
	began := time.Now()
	waitForGrid(t, nil, ips, 60*time.Second)
	t.Logf("grid formed %s after the first server started", time.Since(began).Round(time.Millisecond))
}

// netns is a network namespace that the test makes for itself, so that its iptables
// rules cut members off from each other without touching the machine's own network.
type netns struct{ name string }

// partitionUID is the first of the uids the partition test runs its servers
// under, one each: on loopback every connection comes from 127.0.0.1, so the
// owner of a socket is what tells whose packets they are.
const partitionUID = 64011

// newNetns makes a network namespace with loopback up, or skips the test if this
// machine cannot: it takes root, ip, iptables and setpriv (`make test-tools`
// installs them).
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: cutting a network takes root (a network namespace and iptables rules)")
	}
	for _, tool := range []string{"ip", "iptables", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is missing (make test-tools installs it)", tool)
		}
	}
	n := &netns{name: "grid-e2e-" + strconv.Itoa(os.Getpid())}
	_ = exec.Command("ip", "netns", "del", n.name).Run() // a leftover of a killed run
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot make a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Logf("delete network namespace %s: %v: %s", n.name, err, out)
		}
	})
	if err := n.run("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	if err := n.run("iptables", "-L", "OUTPUT"); err != nil {
		t.Skipf("skipped: iptables does not work here: %v", err)
	}
	return n
}

// exec is the prefix that runs a command in the namespace.
func (n *netns) exec() []string { return []string{"ip", "netns", "exec", n.name} }

// asUser is argv run in the namespace as uid (and gid) uid, with no other groups.
func (n *netns) asUser(uid int, argv ...string) []string {
	id := strconv.Itoa(uid)
	return append(append(n.exec(), "setpriv", "--reuid="+id, "--regid="+id, "--clear-groups"), argv...)
}

// run runs argv in the namespace.
func (n *netns) run(argv ...string) error {
	full := append(n.exec(), argv...)
	if out, err := exec.Command(full[0], full[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// TestPartitionHeals cuts the leader off from every other member for longer than
// memberlist gossips to the dead, then heals the network: without a restart, every
// server sees every other alive again and one leader, soon after.
func TestPartitionHeals(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	// t.TempDir's parent is private to root; the servers' uids must reach their
	// data dirs inside.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	uids := map[string]int{}
	procs := map[string]*proc{}
	for i, ip := range serverIPs {
		uids[ip] = partitionUID + i
		data := filepath.Join(dir, ip)
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(data, uids[ip], uids[ip]); err != nil {
			t.Fatal(err)
		}
		join := serverIPs[0]
		if i == 0 {
			join = ""
		}
		argv := append([]string{gridBin}, serverArgs(dir, ip, join, "-retry-interval=200ms")...)
		procs[ip] = startArgv(t, "server "+ip, ns.asUser(uids[ip], argv...))
	}
	leader := waitForGrid(t, ns.exec(), serverIPs, 60*time.Second)

	var cut string
	var others []string
	for _, ip := range serverIPs {
		var peers []peer
		if err := gridJSONVia(ns.exec(), &peers, "operator", "raft", "list-peers", address(ip)); err != nil {
			t.Fatal(err)
		}
		if l := leaderOf(peers); l.ID == leader && l.Address == ip+":7002" {
			cut = ip
		} else {
			others = append(others, ip)
		}
	}
	if cut == "" {
		t.Fatalf("leader %s is not one of ours", leader)
	}

	// Drop everything the leader's uid sends, and everything sent to its address.
	rules := [][]string{
		{"OUTPUT", "-m", "owner", "--uid-owner", strconv.Itoa(uids[cut]), "-j", "DROP"},
		{"OUTPUT", "-d", cut, "-j", "DROP"},
	}
	for _, r := range rules {
		if err := ns.run(append([]string{"iptables", "-A"}, r...)...); err != nil {
			t.Fatal(err)
		}
	}
	cutAt := time.Now()
	t.Logf("cut server-%s (the leader) off", cut)
	cliPoll.WaitFor(t, 60*time.Second, "the others to see the leader failed and elect another", func() error {
		for _, ip := range others {
			var members []member
			if err := gridJSONVia(ns.exec(), &members, "members", address(ip)); err != nil {
				return err
			}
			for _, m := range members {
				if m.Name == "server-"+cut && m.Status != "failed" {
					return fmt.Errorf("%s sees server-%s %s", ip, cut, m.Status)
				}
			}
			var peers []peer
			if err := gridJSONVia(ns.exec(), &peers, "operator", "raft", "list-peers", address(ip)); err != nil {
				return err
			}
			if l := leaderOf(peers); l.ID == "" || l.ID == leader {
				return fmt.Errorf("%s sees the leader as %q", ip, l.ID)
			}
		}
		return nil
	})

	// memberlist stops gossiping to a dead member after 30s; only serf's reconnect
	// brings the two sides back together after that.
	const partition = 50 * time.Second
	time.Sleep(time.Until(cutAt.Add(partition)))
	for _, r := range rules {
		if err := ns.run(append([]string{"iptables", "-D"}, r...)...); err != nil {
			t.Fatal(err)
		}
	}
	healed := time.Now()
	t.Logf("healed the network after %s", healed.Sub(cutAt).Round(time.Second))
	waitForGrid(t, ns.exec(), serverIPs, 90*time.Second)
	t.Logf("every server sees all alive and one leader %s after the network healed", time.Since(healed).Round(time.Millisecond))
	for ip, p := range procs {
		select {
		case <-p.done:
			t.Errorf("server %s exited: %v", ip, p.err)
		default:
		}
	}
}
