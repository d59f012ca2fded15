package cgroup

import (
	"fmt"
	"strings"
)

// Limits are what a node's group enforces. A zero field sets no limit.
type Limits struct {
	// MemoryBytes is the most memory (RAM, and swap with it) the group's processes
	// may use together; past it the kernel kills one of them.
	MemoryBytes int64
	// CPUCores bounds the group's CPU time: 1.5 is one and a half cores' worth per
	// period.
	CPUCores float64
}

// Host is the machine's cgroups as the agent can use them: a version and the cgroup
// under which node groups are made, or why there are none.
type Host struct {
	// Version is 2 (the unified hierarchy) or 1, and 0 when cgroups are not used.
	Version int
	// Reason says why cgroups are not used; empty when they are.
	Reason string
	// Parent is the agent's own cgroup, under which node groups are made (as in
	// /proc/self/cgroup; in v1, the memory hierarchy's).
	Parent string

	impl hostImpl
}

// Available reports whether node groups can be made.
func (h *Host) Available() bool { return h != nil && h.Version > 0 }

// String says in a few words what is in use, for logs and `grid agent status`:
// "cgroup v1 under /grid.slice" or "none: <why>".
func (h *Host) String() string {
	if !h.Available() {
		if h == nil || h.Reason == "" {
			return "none"
		}
		return "none: " + h.Reason
	}
	return fmt.Sprintf("cgroup v%d under %s", h.Version, h.Parent)
}

// Off is the Host of an agent told not to use cgroups.
func Off(reason string) *Host { return &Host{Reason: reason} }

// unavailable is a Host that cannot make groups, and why.
func unavailable(format string, args ...any) *Host {
	return &Host{Reason: strings.TrimSpace(fmt.Sprintf(format, args...))}
}

// Group is one node's cgroup.
type Group struct {
	// Name is the group's name under the Host's parent.
	Name string
	impl groupImpl
}

// hostImpl and groupImpl are the platform's side; see cgroup_linux.go.
type hostImpl interface {
	group(name string, lim Limits, create bool) (groupImpl, error)
}

type groupImpl interface {
	add(pid int) error
	dirFD() (int, func(), error)
	oomKills() (uint64, error)
	pids() ([]int, error)
	killAll() error
	remove() error
}

// Create makes the group name (or takes it over if it exists) with the limits lim.
func (h *Host) Create(name string, lim Limits) (*Group, error) {
	if !h.Available() {
		return nil, fmt.Errorf("cgroups are not in use: %s", h.Reason)
	}
	g, err := h.impl.group(name, lim, true)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	return &Group{Name: name, impl: g}, nil
}

// Lookup returns the existing group name, as an agent that restarted finds the group
// of a node it adopts, with its limits as they were set.
func (h *Host) Lookup(name string) (*Group, error) {
	if !h.Available() {
		return nil, fmt.Errorf("cgroups are not in use: %s", h.Reason)
	}
	g, err := h.impl.group(name, Limits{}, false)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	return &Group{Name: name, impl: g}, nil
}

// Add moves process pid into the group (with cgroup v1, right after it started:
// see DirFD for starting a process inside the group at once, on v2).
func (g *Group) Add(pid int) error { return g.impl.add(pid) }

// DirFD opens the group's directory, for starting a process inside the group at
// once (syscall.SysProcAttr.CgroupFD, clone3's CLONE_INTO_CGROUP). It fails on cgroup
// v1, which has no such thing; close releases the descriptor.
func (g *Group) DirFD() (fd int, close func(), err error) { return g.impl.dirFD() }

// OOMKills counts the processes of the group the kernel has killed for going past
// its memory limit, since the group was made.
func (g *Group) OOMKills() (uint64, error) { return g.impl.oomKills() }

// Pids lists the processes in the group.
func (g *Group) Pids() ([]int, error) { return g.impl.pids() }

// KillAll kills every process in the group with SIGKILL, the group frozen meanwhile
// so that none can fork past it, and returns once they are gone.
func (g *Group) KillAll() error { return g.impl.killAll() }

// Remove kills what is left in the group and removes it.
func (g *Group) Remove() error {
	if err := g.impl.killAll(); err != nil {
		return err
	}
	return g.impl.remove()
}
