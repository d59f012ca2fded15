//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
)

// Roles of the grid's processes.
const (
	roleServer = "server"
	roleAgent  = "agent"
	roleStore  = "store"
)

// storePort is the gRPC port of each event store, on its own address.
const storePort = 50052

// member is one grid process on its host, which may be stopped and started again
// with the same command line and data dir.
type member struct {
	host
	role    string
	args    []string
	dataDir string
	logPath string
	// fsDir is the tmpfs mounted for the store the nemesis fills ("" for others):
	// its data dir lies inside, next to where the filler goes.
	fsDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// cluster is the grid: its members by host name, and where their files go.
type cluster struct {
	t       testing.TB
	net     *network
	members map[string]*member
	servers []*member
	agents  []*member
	stores  []*member
	logDir  string
}

// running reports whether the member's process is up (paused counts as up).
func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// start runs the member's command in its namespace, appending its output to its
// log file. `ip netns exec` execs grid in the same process, so the pid is grid's.
func (c *cluster) start(m *member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		select {
		case <-m.done:
		default:
			return fmt.Errorf("%s is already running", m.name)
		}
	}
	out, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "==== chaos: start %s at %s\n", m.name, time.Now().Format(time.RFC3339Nano))
	argv := append(append(m.netnsExec(), gridBin), m.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

// signal sends sig to the member's process, if it runs.
func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("%s never started", m.name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", m.name, err)
	}
	return nil
}

// exited returns the channel closed when the current process has exited.
func (m *member) exited() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return m.done
}

// kill sends SIGKILL and waits for the process to be gone. A paused process dies
// of SIGKILL too.
func (c *cluster) kill(m *member) error {
	if !m.running() {
		return nil
	}
	if err := m.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-m.exited():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still runs 10s after SIGKILL", m.name)
	}
}

// stop sends SIGTERM and waits for a graceful exit, then kills.
func (c *cluster) stop(m *member) error {
	if !m.running() {
		return nil
	}
	_ = m.signal(syscall.SIGCONT) // a paused process cannot exit
	if err := m.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-m.exited():
		return nil
	case <-time.After(20 * time.Second):
		return c.kill(m)
	}
}

// pause and resume stop and continue the member's process (SIGSTOP, SIGCONT): it
// keeps its sockets but answers nothing, as a process stuck in a long GC pause or
// a VM frozen by its host.
func (c *cluster) pause(m *member) error  { return m.signal(syscall.SIGSTOP) }
func (c *cluster) resume(m *member) error { return m.signal(syscall.SIGCONT) }

// wipe removes what the member keeps in its data dir, while it is down: a disk
// replaced. The directory itself may be a mount point, so only its contents go.
func (c *cluster) wipe(m *member) error {
	if m.running() {
		return fmt.Errorf("wipe %s: it is running", m.name)
	}
	entries, err := os.ReadDir(m.dataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(m.dataDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// restart starts a member that is down; a paused one is continued instead.
func (c *cluster) restart(m *member) error {
	if m.running() {
		return c.resume(m)
	}
	return c.start(m)
}

// httpAddr is a server's HTTP API.
func (m *member) httpAddr() string { return "http://" + m.ip + ":7000" }

// client is an API client of the server with a short timeout: a call to a server
// that is down, paused or cut off must end soon, its outcome unknown.
func (m *member) client(timeout time.Duration) *api.Client {
	c, err := api.NewClient(&api.Config{Address: m.httpAddr(), HTTPClient: &http.Client{Timeout: timeout}})
	if err != nil {
		panic(err) // the address is ours and valid
	}
	return c
}

// leader returns the server that leads, as the servers that answer say: the Raft
// address (ip:7002) most of them name.
func (c *cluster) leader(ctx context.Context) (*member, error) {
	votes := map[string]int{}
	for _, s := range c.servers {
		if !s.running() {
			continue
		}
		addr, err := s.client(2 * time.Second).Leader(ctx)
		if err == nil && addr != "" {
			votes[addr]++
		}
	}
	best, n := "", 0
	for addr, v := range votes {
		if v > n {
			best, n = addr, v
		}
	}
	ip, _, _ := strings.Cut(best, ":")
	for _, s := range c.servers {
		if s.ip == ip && ip != "" {
			return s, nil
		}
	}
	return nil, errors.New("no server names a leader")
}

// followers are the running servers other than leader.
func (c *cluster) followers(leader *member) []*member {
	var out []*member
	for _, s := range c.servers {
		if s != leader && s.running() {
			out = append(out, s)
		}
	}
	return out
}

// hostsOf returns the hosts of members.
func hostsOf(ms []*member) []*host {
	out := make([]*host, len(ms))
	for i, m := range ms {
		out[i] = &m.host
	}
	return out
}

// logTails prints the end of every member's log, for a failed run.
func (c *cluster) logTails(lines int) {
	for _, group := range [][]*member{c.servers, c.agents, c.stores} {
		for _, m := range group {
			b, err := os.ReadFile(m.logPath)
			if err != nil {
				c.t.Logf("log of %s: %v", m.name, err)
				continue
			}
			all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(all) > lines {
				all = all[len(all)-lines:]
			}
			c.t.Logf("last %d lines of %s (%s):\n%s", len(all), m.name, m.logPath, strings.Join(all, "\n"))
		}
	}
}

// fullStore names the event store whose data dir is a small tmpfs, for the nemesis
// to fill; it is the one the servers ship to today (the last -event-store wins).
const fullStore = "e2"

// fullStoreReserveMB is that store's -disk-reserve-mb: below it, writes are refused.
const fullStoreReserveMB = 16

// newCluster makes the network and the members' command lines, and starts them all:
// five servers, three agents and two event stores, each on a host of its own.
func newCluster(t testing.TB, dir, logDir string) *cluster {
	t.Helper()
	c := &cluster{t: t, members: map[string]*member{}, logDir: logDir}
	var serverIPs, storeAddrs []string
	for i := 1; i <= 5; i++ {
		serverIPs = append(serverIPs, fmt.Sprintf("%s%d", subnet, 10+i))
	}
	for i := 1; i <= 2; i++ {
		storeAddrs = append(storeAddrs, fmt.Sprintf("%s%d:%d", subnet, 30+i, storePort))
	}
	add := func(role, name, ip string) *member {
		m := &member{host: host{name: name, ip: ip}, role: role, dataDir: filepath.Join(dir, name),
			logPath: filepath.Join(logDir, name+".log")}
		c.members[name] = m
		return m
	}
	for i, ip := range serverIPs {
		m := add(roleServer, fmt.Sprintf("s%d", i+1), ip)
		m.args = serverArgs(m, serverIPs, storeAddrs)
		c.servers = append(c.servers, m)
	}
	for i := 1; i <= 3; i++ {
		m := add(roleAgent, fmt.Sprintf("a%d", i), fmt.Sprintf("%s%d", subnet, 20+i))
		m.args = []string{"agent", "-bind=" + m.ip, "-name=" + m.name, "-data-dir=" + m.dataDir,
			"-retry-interval=1s", "-max-nodes=8", "-heartbeat-interval=1s", "-insecure"}
		for _, ip := range serverIPs {
			m.args = append(m.args, "-join="+ip)
		}
		c.agents = append(c.agents, m)
	}
	for i := 1; i <= 2; i++ {
		m := add(roleStore, fmt.Sprintf("e%d", i), fmt.Sprintf("%s%d", subnet, 30+i))
		var extra []string
		if m.name == fullStore {
			m.fsDir = filepath.Join(dir, m.name+"-fs")
			mountTmpfs(t, m.fsDir)
			m.dataDir = filepath.Join(m.fsDir, "data")
			extra = []string{fmt.Sprintf("-disk-reserve-mb=%d", fullStoreReserveMB)}
		}
		m.args = append([]string{"storage", "-bind=" + m.ip, fmt.Sprintf("-port=%d", storePort), "-data-dir=" + m.dataDir}, extra...)
		c.stores = append(c.stores, m)
	}
	var hosts []*host
	for _, g := range [][]*member{c.servers, c.agents, c.stores} {
		hosts = append(hosts, hostsOf(g)...)
	}
	c.net = newNetwork(t, hosts)
	t.Cleanup(c.killAll)
	for _, g := range [][]*member{c.stores, c.servers, c.agents} {
		for _, m := range g {
			if err := os.MkdirAll(m.dataDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := c.start(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// serverArgs is a server's command line: it joins every other server, and names
// both event stores. The flag takes the last value today; it is being made
// repeatable, and then both stores get every event.
func serverArgs(m *member, serverIPs, storeAddrs []string) []string {
	args := []string{"server", "-bind=" + m.ip, "-name=" + m.name, "-data-dir=" + m.dataDir,
		"-bootstrap-expect=5", "-retry-interval=1s", "-insecure",
		// Agents' failures show within seconds, not the defaults' half minute, so
		// that a short run sees agents go offline and come back.
		"-heartbeat-interval=1s", "-agent-degraded-after=5s", "-agent-offline-after=10s"}
	for _, ip := range serverIPs {
		if ip != m.ip {
			args = append(args, "-join="+ip)
		}
	}
	for _, a := range storeAddrs {
		args = append(args, "-event-store="+a)
	}
	return args
}

// mountTmpfs mounts a 64 MiB tmpfs on dir, for the nemesis to fill, as
// e2e/storage_bounds_test.go does.
func mountTmpfs(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// killAll kills every member and whatever else runs in the namespaces (the nodes
// the agents spawned), so that the network can go.
func (c *cluster) killAll() {
	for _, m := range c.members {
		_ = c.kill(m)
	}
	for _, m := range c.members {
		killNamespace(m.ns())
	}
}
