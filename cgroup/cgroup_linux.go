package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"golang.org/x/sys/unix"
)

// unifiedRoot is where the v2 hierarchy is mounted.
const unifiedRoot = "/sys/fs/cgroup"

// agentLeaf is the child of its own cgroup that an agent moves itself into on cgroup
// v2, where a cgroup whose children have controllers may hold no process itself.
const agentLeaf = "grid-agent"

// cpuPeriod is the CFS period CPU limits are expressed in: 100ms, the kernel's default.
const cpuPeriod = 100_000 // µs

// Open finds the cgroups this process can make node groups in. It never fails: a
// Host that cannot make groups says why.
func Open() *Host {
	if cgroups.IsCgroup2UnifiedMode() {
		return openV2()
	}
	return openV1()
}

// probeName is a group made and removed at once to prove that groups can be made.
func probeName() string { return "grid-probe-" + strconv.Itoa(os.Getpid()) }

// --- cgroup v1 ---

// openV1 uses the agent's own cgroup in each v1 hierarchy (as /proc/self/cgroup
// says): node groups are made under it in every hierarchy, limits set in memory and
// cpu, and freezer used to kill a group's processes together.
func openV1() *Host {
	own, err := cgroups.GetOwnCgroup("memory")
	if err != nil {
		return unavailable("no cgroup v2, and no cgroup v1 memory controller: %v", err)
	}
	h := &Host{Version: 1, Parent: own, impl: v1Host{}}
	if err := probe(h); err != nil {
		return unavailable("cannot make a cgroup v1 group under %s: %v", own, err)
	}
	return h
}

type v1Host struct{}

// v1Mu serializes the library's v1 Apply and Set: they keep package state (blkio's
// file names, found on first use) without a lock, as runc, their first user, calls
// them from one goroutine.
var v1Mu sync.Mutex

func (v1Host) group(name string, lim Limits, create bool) (groupImpl, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	res := resources(lim)
	// A relative path puts the group under this process's own cgroup in every
	// hierarchy.
	m, err := fs.NewManager(&cgroups.Cgroup{Path: name, Resources: res}, nil)
	if err != nil {
		return nil, err
	}
	if m.Path("memory") == "" {
		return nil, errors.New("no memory hierarchy")
	}
	if !create {
		if !cgroups.PathExists(m.Path("memory")) {
			return nil, os.ErrNotExist
		}
		return &v1Group{m: m}, nil
	}
	v1Mu.Lock()
	defer v1Mu.Unlock()
	if err := m.Apply(-1); err != nil { // -1: make the groups, move no process
		return nil, err
	}
	g := &v1Group{m: m}
	if lim.MemoryBytes > 0 && cgroups.PathExists(filepath.Join(m.Path("memory"), "memory.memsw.limit_in_bytes")) {
		res.MemorySwap = lim.MemoryBytes // no swap past the limit either
	}
	if err := m.Set(res); err != nil {
		_ = g.remove()
		return nil, err
	}
	return g, nil
}

type v1Group struct{ m *fs.Manager }

func (g *v1Group) add(pid int) error {
	v1Mu.Lock()
	defer v1Mu.Unlock()
	return g.m.Apply(pid)
}

func (g *v1Group) dirFD() (int, func(), error) {
	return -1, nil, errors.New("cgroup v1 cannot start a process inside a group")
}

func (g *v1Group) oomKills() (uint64, error) { return g.m.OOMKillCount() }

func (g *v1Group) pids() ([]int, error) { return cgroups.GetAllPids(g.m.Path("memory")) }

func (g *v1Group) killAll() error {
	return killAll(g.pids, func(st cgroups.FreezerState) error {
		if g.m.Path("freezer") == "" {
			return nil // without a freezer, kill them in turn
		}
		return g.m.Freeze(st)
	}, "")
}

func (g *v1Group) remove() error { return g.m.Destroy() }

// --- cgroup v2 ---

// openV2 uses the agent's own cgroup, as systemd's Delegate=yes hands it over: node
// groups are made as its children, and the agent moves itself into a leaf child,
// grid-agent, because a cgroup whose children use controllers holds no process.
func openV2() *Host {
	own, err := ownV2()
	if err != nil {
		return unavailable("cgroup v2: %v", err)
	}
	dir := filepath.Join(unifiedRoot, own)
	if filepath.Base(dir) == agentLeaf {
		// An agent in this process moved it already.
		dir, own = filepath.Dir(dir), filepath.Dir(own)
	}
	ctrls, err := cgroups.ReadFile(dir, "cgroup.controllers")
	if err != nil {
		return unavailable("cgroup v2: %v", err)
	}
	have := strings.Fields(ctrls)
	if !slices.Contains(have, "memory") {
		return unavailable("cgroup v2: the memory controller is not delegated to %s (it has %q)", own, strings.TrimSpace(ctrls))
	}
	if err := enableV2(dir, have); err != nil {
		return unavailable("cgroup v2: %v", err)
	}
	h := &Host{Version: 2, Parent: own, impl: v2Host{dir: dir}}
	if err := probe(h); err != nil {
		return unavailable("cannot make a cgroup v2 group under %s: %v", own, err)
	}
	return h
}

// ownV2 returns this process's cgroup in the unified hierarchy.
func ownV2() (string, error) {
	m, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	own, ok := m[""]
	if !ok {
		return "", errors.New("/proc/self/cgroup has no unified entry")
	}
	return own, nil
}

// enableV2 turns on the memory and cpu controllers for dir's children. If dir holds
// processes (this one, and the processes that share its cgroup), the kernel refuses
// (EBUSY) unless dir is a root: the agent then moves itself into its leaf, and if
// others remain, gives up.
func enableV2(dir string, have []string) error {
	want := "+memory"
	if slices.Contains(have, "cpu") {
		want += " +cpu"
	}
	err := cgroups.WriteFile(dir, "cgroup.subtree_control", want)
	if err == nil || !errors.Is(err, unix.EBUSY) {
		return err
	}
	leaf := filepath.Join(dir, agentLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	if err := cgroups.WriteCgroupProc(leaf, os.Getpid()); err != nil {
		return fmt.Errorf("move the agent into %s: %w", leaf, err)
	}
	if err := cgroups.WriteFile(dir, "cgroup.subtree_control", want); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("%s holds other processes than the agent: give the agent a cgroup of its own (with systemd, Delegate=yes)", dir)
		}
		return err
	}
	return nil
}

type v2Host struct{ dir string }

func (h v2Host) group(name string, lim Limits, create bool) (groupImpl, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(h.dir, name)
	res := resources(lim)
	m, err := fs2.NewManager(&cgroups.Cgroup{Path: name, Resources: res}, dir)
	if err != nil {
		return nil, err
	}
	if !create {
		if !m.Exists() {
			return nil, os.ErrNotExist
		}
		return &v2Group{m: m, dir: dir}, nil
	}
	// The group is made here rather than by the manager's Apply, which would turn
	// on every controller in every cgroup from the root down: the agent changes
	// nothing above its own cgroup.
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, err
	}
	g := &v2Group{m: m, dir: dir}
	if lim.MemoryBytes > 0 {
		res.MemorySwap = lim.MemoryBytes // no swap past the limit either
	}
	if err := m.Set(res); err != nil {
		_ = g.remove()
		return nil, err
	}
	return g, nil
}

type v2Group struct {
	m   *fs2.Manager
	dir string
}

func (g *v2Group) add(pid int) error { return cgroups.WriteCgroupProc(g.dir, pid) }

func (g *v2Group) dirFD() (int, func(), error) {
	fd, err := unix.Open(g.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	return fd, func() { unix.Close(fd) }, nil
}

func (g *v2Group) oomKills() (uint64, error) { return g.m.OOMKillCount() }

func (g *v2Group) pids() ([]int, error) { return cgroups.GetAllPids(g.dir) }

func (g *v2Group) killAll() error { return killAll(g.pids, g.m.Freeze, g.dir) }

func (g *v2Group) remove() error { return g.m.Destroy() }

// --- both ---

// resources turns lim into the library's terms; devices are left as they are.
func resources(lim Limits) *cgroups.Resources {
	r := &cgroups.Resources{SkipDevices: true, Memory: lim.MemoryBytes}
	if lim.CPUCores > 0 {
		r.CpuPeriod = cpuPeriod
		r.CpuQuota = max(int64(lim.CPUCores*cpuPeriod), 1000) // the kernel's least is 1ms
	}
	return r
}

// probe makes a group under h and removes it.
func probe(h *Host) error {
	g, err := h.impl.group(probeName(), Limits{}, true)
	if err != nil {
		return err
	}
	return g.remove()
}

// killWait bounds how long KillAll waits for killed processes to be gone.
const killWait = 10 * time.Second

// killAll kills every process pids lists: with cgroup.kill where the kernel has it
// (v2, Linux 5.14), otherwise frozen, killed one by one, and thawed, so that none
// forks a process the list missed.
func killAll(pids func() ([]int, error), freeze func(cgroups.FreezerState) error, v2dir string) error {
	list, err := pids()
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if len(list) == 0 {
		return nil
	}
	if v2dir != "" && cgroups.WriteFile(v2dir, "cgroup.kill", "1") == nil {
		return waitEmpty(pids)
	}
	if err := freeze(cgroups.Frozen); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	if list, err = pids(); err == nil {
		for _, pid := range list {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if terr := freeze(cgroups.Thawed); terr != nil && err == nil {
		err = fmt.Errorf("thaw: %w", terr)
	}
	if err != nil {
		return err
	}
	return waitEmpty(pids)
}

// waitEmpty waits until pids lists no process.
func waitEmpty(pids func() ([]int, error)) error {
	deadline := time.Now().Add(killWait)
	for {
		list, err := pids()
		if err != nil || len(list) == 0 {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still run after SIGKILL", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkName keeps a group a direct child of the parent.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("bad group name %q", name)
	}
	return nil
}
