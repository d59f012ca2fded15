//go:build linux

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The network's names and addresses are fixed and carry "gridchaos", which nothing
// else on a shared machine uses; the lock the test takes (main_test.go) keeps two
// runs from sharing them.
const (
	bridgeName = "gridchaos0"
	nsPrefix   = "gridchaos-"
	vethPrefix = "gchaos-"
	subnet     = "10.213.0."
	// hostIP is the bridge's own address in the machine's namespace: the test talks
	// to every process through it, and no partition cuts it off.
	hostIP = subnet + "1"
)

// host is one machine of the grid: a network namespace with one address.
type host struct {
	name string // s1, a2, e1: also the namespace's and the veth's suffix
	ip   string
}

func (h *host) ns() string   { return nsPrefix + h.name }
func (h *host) veth() string { return vethPrefix + h.name }

// netnsExec is the prefix that runs a command inside the host's namespace.
func (h *host) netnsExec() []string { return []string{"ip", "netns", "exec", h.ns()} }

// network is the bridge and the hosts on it.
type network struct {
	mu    sync.Mutex
	hosts map[string]*host
	// cut lists the hosts that have INPUT rules, for Heal.
	cut map[string]bool
}

// run runs a command and returns its error with its output.
func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeLeftovers kills what runs in namespaces of ours and deletes them, their
// veths and the bridge: what a run killed before its cleanup left behind, or what
// the last cleanup is still tearing down.
func removeLeftovers() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, nsPrefix) {
			killNamespace(name)
			_ = run("ip", "netns", "del", name)
		}
	}
	// A namespace goes, and its veths with it, only once its last process has
	// exited, after `ip netns del` returned: the host ends are deleted here rather
	// than waited for.
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		if strings.HasPrefix(name, vethPrefix) {
			_ = run("ip", "link", "del", name)
		}
	}
	_ = run("ip", "link", "del", bridgeName)
	for run(append([]string{"iptables", "-w", "-D"}, forwardRule...)...) == nil {
	}
}

// forwardRule is the machine's FORWARD rule that lets the bridge's packets through
// (newNetwork).
var forwardRule = []string{"FORWARD", "-i", bridgeName, "-o", bridgeName, "-j", "ACCEPT"}

// killNamespace sends SIGKILL to every process in the namespace, and waits a while
// for them to be gone: a namespace with processes in it outlives `ip netns del`.
func killNamespace(ns string) {
	for range 50 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, f := range pids {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNetwork makes the bridge and one namespace per host, joined by veth pairs, and
// removes them all when the test ends, whatever happened.
func newNetwork(t testing.TB, hosts []*host) *network {
	t.Helper()
	removeLeftovers()
	t.Cleanup(removeLeftovers)
	n := &network{hosts: map[string]*host{}, cut: map[string]bool{}}
	steps := [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", hostIP + "/24", "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatal(err)
		}
	}
	// Where br_netfilter is loaded (Docker loads it, and drops forwarded packets by
	// default), bridged packets pass the machine's FORWARD chain, and the bridge's
	// own nf_call_iptables cannot opt out of the machine-wide setting: one rule,
	// naming the test's bridge alone, lets them through.
	if err := run(append([]string{"iptables", "-w", "-I"}, forwardRule...)...); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := n.addHost(h); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// addHost makes the host's namespace with loopback up and its end of a veth pair
// holding its address, the other end on the bridge.
func (n *network) addHost(h *host) error {
	steps := [][]string{
		{"ip", "netns", "add", h.ns()},
		{"ip", "link", "add", h.veth(), "type", "veth", "peer", "name", "eth0", "netns", h.ns()},
		{"ip", "link", "set", h.veth(), "master", bridgeName, "up"},
		append(h.netnsExec(), "ip", "link", "set", "lo", "up"),
		append(h.netnsExec(), "ip", "addr", "add", h.ip+"/24", "dev", "eth0"),
		append(h.netnsExec(), "ip", "link", "set", "eth0", "up"),
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return fmt.Errorf("host %s: %w", h.name, err)
		}
	}
	n.mu.Lock()
	n.hosts[h.name] = h
	n.mu.Unlock()
	return nil
}

// Partition drops every packet between a host of a and a host of b, both ways,
// until Heal; the test's own address (hostIP) still reaches everyone.
//
// It drops with iptables in each host's INPUT chain rather than with blackhole or
// prohibit routes: a route fails the sender at once (EINVAL, EACCES), which no real
// network does, while a dropped packet just never arrives, so that connections time
// out and gossip marks members failed the way a cut cable would. Dropping on input
// alone, on both sides, cuts both directions without failing any local send.
func (n *network) Partition(a, b []*host) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	drop := func(at, from *host) error {
		n.cut[at.name] = true
		return run(append(at.netnsExec(), "iptables", "-w", "-A", "INPUT", "-s", from.ip, "-j", "DROP")...)
	}
	for _, x := range a {
		for _, y := range b {
			if err := drop(x, y); err != nil {
				return err
			}
			if err := drop(y, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal removes every cut. The namespaces are the test's own: their INPUT chains hold
// nothing else.
func (n *network) Heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name := range n.cut {
		if err := run(append(n.hosts[name].netnsExec(), "iptables", "-w", "-F", "INPUT")...); err != nil {
			return err
		}
		delete(n.cut, name)
	}
	return nil
}

// inNetns runs f on an OS thread that has entered the host's network namespace:
// sockets f opens belong to that namespace, and stay there after f returns. The
// thread goes back to the test's namespace; if it cannot, it is left locked, and
// so dies with the goroutine instead of serving others from the wrong namespace.
func inNetns(h *host, f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + h.ns())
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", h.ns(), err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave %s: %w", h.ns(), err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// requireNetns skips the test unless this machine lets it make namespaces, veths and
// iptables rules: it takes root, ip and iptables (`make test-tools` installs them).
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the chaos suite makes network namespaces and iptables rules, which takes root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is missing (make test-tools installs it)", tool)
		}
	}
	if err := run("ip", "netns", "list"); err != nil {
		t.Skipf("skipped: ip netns does not work here: %v", err)
	}
}
