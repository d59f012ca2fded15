//go:build linux

package cgroup

import (
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkGroupSteps measures what a node's isolation adds to its start: an agent
// creates the node's group with its limits, reads its OOM count, and moves the new
// process in (cgroup v1) before it waits for the node's health; and what removing it
// at the node's stop costs. It skips where this process cannot make groups.
func BenchmarkGroupSteps(b *testing.B) {
	h := Open()
	if !h.Available() {
		b.Skip(h.Reason)
	}
	var create, oom, add, remove time.Duration
	timed := func(d *time.Duration, f func() error) {
		t := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*d += time.Since(t)
	}
	for i := 0; i < b.N; i++ {
		var g *Group
		timed(&create, func() (err error) {
			g, err = h.Create(fmt.Sprintf("grid-bench-%d", i), Limits{MemoryBytes: 128 << 20})
			return err
		})
		timed(&oom, func() error { _, err := g.OOMKills(); return err })
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		timed(&add, func() error { return g.Add(cmd.Process.Pid) })
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		timed(&remove, g.Remove)
	}
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(perOp(create), "create-ms")
	b.ReportMetric(perOp(oom), "oom-count-ms")
	b.ReportMetric(perOp(add), "add-ms")
	b.ReportMetric(perOp(remove), "remove-ms")
}
