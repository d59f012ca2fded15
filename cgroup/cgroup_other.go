//go:build !linux

package cgroup

// Open says that there are no cgroups: they are Linux's.
func Open() *Host { return unavailable("cgroups are Linux's") }
