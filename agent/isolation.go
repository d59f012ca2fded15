package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/cgroup"
)

// Isolation: each node runs in a cgroup of its own (package cgroup), made when the
// node is first started, kept across its restarts (so its OOM kills add up), and
// removed, with anything still running in it, when the node is stopped or given up.

// openCgroups finds the cgroups the agent can use and says once, in its log, what it
// found: a node's memory limit is only as hard as this.
func openCgroups(cfg *Config, logger hclog.Logger) *cgroup.Host {
	h := cgroup.Off("disabled by -disable-cgroups")
	if !cfg.DisableCgroups {
		h = cgroup.Open()
	}
	if h.Available() {
		logger.Info("nodes run in cgroups of their own", "isolation", h.String())
	} else {
		logger.Warn("nodes run without cgroups: memory limits are only the Go runtime's soft limit in each node, and CPU limits are not enforced",
			"reason", h.Reason)
	}
	return h
}

// groupName names node id's cgroup. The hash of the agent's data dir keeps apart the
// groups of agents that share a cgroup (several agents on one host, or in one test).
func (s *supervisor) groupName(id string) string {
	sum := sha256.Sum256([]byte(s.dataDirResolved))
	return "grid-" + hex.EncodeToString(sum[:4]) + "-" + id
}

// limitsOf are the limits spec asks for.
func limitsOf(spec nodeSpec) cgroup.Limits {
	return cgroup.Limits{MemoryBytes: int64(spec.MemoryLimitMB) << 20, CPUCores: spec.CPULimit}
}

// prepareGroup makes n's cgroup if it has none yet, kills whatever a crashed process
// left in it, and notes its OOM count, before a process of n starts.
func (s *supervisor) prepareGroup(n *node) error {
	if !s.cgroups.Available() {
		return nil
	}
	s.mu.Lock()
	g := n.group
	s.mu.Unlock()
	if g == nil {
		var err error
		if g, err = s.cgroups.Create(s.groupName(n.spec.ID), limitsOf(n.spec)); err != nil {
			return err
		}
	} else if err := g.KillAll(); err != nil {
		return fmt.Errorf("cgroup %s: %w", g.Name, err)
	}
	base, err := g.OOMKills()
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", g.Name, err)
	}
	s.mu.Lock()
	n.group, n.oomBase = g, base
	s.mu.Unlock()
	return nil
}

// joinGroup moves a process just started into g (cgroup v1): a storage node does
// not fork, so nothing it starts can escape in the moment before. A process that
// cannot be moved is killed: a node must not run unlimited when a limit was promised.
func joinGroup(p *proc, g *cgroup.Group) error {
	if err := g.Add(p.pid); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil // it exited already; its exit tells why
		}
		_ = p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("cgroup %s: %w", g.Name, err)
	}
	return nil
}

// oomKilled reports whether the kernel killed n's last process for its memory.
func (s *supervisor) oomKilled(n *node, p *proc) bool {
	s.mu.Lock()
	g, base := n.group, n.oomBase
	s.mu.Unlock()
	if g == nil || p.exit.Signal != "SIGKILL" {
		return false
	}
	count, err := g.OOMKills()
	return err == nil && count > base
}

// removeGroup removes n's cgroup, killing what is left in it: stopping a node stops
// everything it started.
func (s *supervisor) removeGroup(n *node) {
	s.mu.Lock()
	g := n.group
	n.group = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	if err := g.Remove(); err != nil {
		s.logger.Warn("cannot remove the node's cgroup", "node_id", n.spec.ID, "cgroup", g.Name, "error", err)
	}
}

// adoptGroup takes back the cgroup a node ran in before the agent restarted.
func (s *supervisor) adoptGroup(n *node, name string) {
	if name == "" || !s.cgroups.Available() {
		return
	}
	g, err := s.cgroups.Lookup(name)
	if err != nil {
		s.logger.Warn("the cgroup of an adopted node is gone; it gets a new one when it restarts", "node_id", n.spec.ID, "cgroup", name, "error", err)
		return
	}
	base, err := g.OOMKills()
	if err != nil {
		s.logger.Warn("cannot read the cgroup of an adopted node", "node_id", n.spec.ID, "cgroup", name, "error", err)
	}
	n.group, n.oomBase = g, base
}
