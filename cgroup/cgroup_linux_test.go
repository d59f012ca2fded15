package cgroup

import (
	"bufio"
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

// The test binary doubles as the processes put in groups: with helperEnv set it runs
// the helper named there instead of the tests.
const helperEnv = "GRID_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "alloc":
		// Wait to be in the group, then touch 256 MiB, a page at a time.
		bufio.NewReader(os.Stdin).ReadString('\n')
		var keep [][]byte
		for range 256 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
		os.Exit(0)
	case "spin":
		bufio.NewReader(os.Stdin).ReadString('\n')
		for {
		}
	case "parent":
		// Start a child that outlives nothing on its own, print its pid, and wait.
		bufio.NewReader(os.Stdin).ReadString('\n')
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := child.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(child.Process.Pid)
		select {}
	case "sleep":
		select {}
	}
	os.Exit(2)
}

// host returns the machine's cgroups, skipping the test where there are none.
func host(t *testing.T) *Host {
	t.Helper()
	h := Open()
	if !h.Available() {
		t.Skipf("no cgroups here: %s", h)
	}
	return h
}

// group makes a group for the test, removed at its end.
func group(t *testing.T, h *Host, lim Limits) *Group {
	t.Helper()
	name := fmt.Sprintf("grid-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	g, err := h.Create(name, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	return g
}

// helper starts the test binary as helper name inside g; the returned writer lets it
// go on, and its stdout is read through the scanner.
func helper(t *testing.T, g *Group, name string) (*exec.Cmd, func(), *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if fd, closeFD, err := g.DirFD(); err == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		defer closeFD()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if cmd.SysProcAttr == nil {
		if err := g.Add(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	return cmd, func() { stdin.Write([]byte("go\n")) }, bufio.NewScanner(stdout)
}

func TestHostSaysWhatItUses(t *testing.T) {
	h := host(t)
	want := fmt.Sprintf("cgroup v%d under %s", h.Version, h.Parent)
	if h.String() != want || h.Reason != "" {
		t.Fatalf("String() = %q, Reason %q; want %q", h, h.Reason, want)
	}
	off := Off("disabled by -cgroups=off")
	if off.Available() || off.String() != "none: disabled by -cgroups=off" {
		t.Fatalf("Off: available %v, %q", off.Available(), off)
	}
	if _, err := off.Create("x", Limits{}); err == nil {
		t.Fatal("Create on a Host without cgroups succeeded")
	}
}

func TestMemoryLimitKillsAndIsCounted(t *testing.T) {
	h := host(t)
	g := group(t, h, Limits{MemoryBytes: 64 << 20})
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOMKills of a new group = %d, %v; want 0", n, err)
	}
	cmd, start, out := helper(t, g, "alloc")
	start()
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		out.Scan()
		t.Fatalf("a process touching 256 MiB under a 64 MiB limit ended with %v (%q); want SIGKILL", err, out.Text())
	}
	if n, err := g.OOMKills(); err != nil || n != 1 {
		t.Fatalf("OOMKills = %d, %v; want 1", n, err)
	}
}

func TestUnlimitedGroupDoesNotKill(t *testing.T) {
	h := host(t)
	g := group(t, h, Limits{})
	cmd, start, out := helper(t, g, "alloc")
	start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	_ = out
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOMKills = %d, %v; want 0", n, err)
	}
}

func TestKillAllTakesTheWholeTree(t *testing.T) {
	h := host(t)
	g := group(t, h, Limits{})
	cmd, start, out := helper(t, g, "parent")
	start()
	if !out.Scan() {
		t.Fatal("the helper printed no child pid")
	}
	child, err := strconv.Atoi(out.Text())
	if err != nil {
		t.Fatalf("helper: %q", out.Text())
	}
	pids, err := g.Pids()
	if err != nil || len(pids) != 2 {
		t.Fatalf("Pids = %v, %v; want the helper %d and its child %d", pids, err, cmd.Process.Pid, child)
	}
	if err := g.KillAll(); err != nil {
		t.Fatal(err)
	}
	if pids, err := g.Pids(); err != nil || len(pids) != 0 {
		t.Fatalf("after KillAll Pids = %v, %v", pids, err)
	}
	// The child, reparented away from the test, is gone too.
	if err := syscall.Kill(child, 0); err == nil {
		if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "stat")); !strings.Contains(string(b), ") Z ") {
			t.Fatalf("child %d still runs", child)
		}
	}
}

func TestCPULimitThrottles(t *testing.T) {
	h := host(t)
	g := group(t, h, Limits{CPUCores: 0.1})
	cmd, start, _ := helper(t, g, "spin")
	start()
	time.Sleep(time.Second)
	used := cpuTime(t, cmd.Process.Pid)
	// A tenth of a core for a second is 0.1s; a spinning process without the limit
	// would take close to the second.
	if used > 400*time.Millisecond {
		t.Fatalf("a process spinning for 1s under a 0.1-core limit used %s of CPU", used)
	}
}

// cpuTime reads a process's user and system time from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func TestLookupAndRemove(t *testing.T) {
	h := host(t)
	name := fmt.Sprintf("grid-test-%d-lookup", os.Getpid())
	if _, err := h.Lookup(name); err == nil {
		t.Fatal("Lookup found a group that was never made")
	}
	g, err := h.Create(name, Limits{MemoryBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Lookup(name); err != nil {
		t.Fatalf("Lookup of a group just made: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Lookup(name); err == nil {
		t.Fatal("Lookup found a removed group")
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if _, err := h.Create(bad, Limits{}); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
}
