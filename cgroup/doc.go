// Package cgroup runs each storage node in a Linux control group of its own: a hard
// memory limit the kernel enforces, an optional CPU limit, the node's whole process
// tree kept together so that stopping the node stops everything it started, and a
// count of the kernel's out-of-memory kills, so that a node killed for its memory is
// reported as such.
//
// The agent opens a Host once, at start. Open finds which cgroup version the machine
// uses (v2, the unified hierarchy, where the host has it; v1 otherwise) and the
// agent's own cgroup, and checks that a group can be made under it. Every node's
// group is made under the agent's own cgroup, as systemd delegation expects: the
// agent never moves a process out of the tree it was started in. Where cgroups cannot
// be used (no permission, a container without them, -cgroups=off) the Host says why,
// and the agent runs nodes without them; nothing pretends to limit.
//
// The reading and writing of cgroup files is github.com/opencontainers/cgroups (runc's
// own), for v1 (package fs) and v2 (package fs2); this package only decides where the
// groups go and what goes in them.
//
// Files:
//
//   - cgroup.go: Host, Group and Limits, the package's interface.
//   - cgroup_linux.go: finding the version and the agent's cgroup, and the groups.
//   - cgroup_other.go: elsewhere there are no cgroups.
package cgroup
