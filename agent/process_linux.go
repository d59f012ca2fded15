package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sutragrid/grid/cgroup"
)

// What agents need of Linux: /proc tells a process's start time and command line, so
// that an agent that restarts can take back the nodes it left running; pidfds let it
// signal them without racing pid reuse; flock keeps a second agent off its data dir.

// CheckPlatform returns an error if agents cannot run on this system. On Linux they
// can.
func CheckPlatform() error { return nil }

// lockWait is how long lockDir waits for a lock held a moment longer than its
// holder: a process forked by the previous agent (a node starting) holds a copy of
// the lock's descriptor from fork until exec, which closes it.
const lockWait = time.Second

// lockDir takes an exclusive lock on dir, or says who holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("data dir %s is in use by another agent: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setOwnProcessGroup makes cmd's process lead a process group of its own, so that a
// Ctrl-C meant for the agent does not reach it.
func setOwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// intoGroup sets cmd to start inside g where the kernel can (cgroup v2). It returns
// whether it did, and what to release once cmd has started.
func intoGroup(cmd *exec.Cmd, g *cgroup.Group) (bool, func()) {
	if g == nil {
		return false, func() {}
	}
	fd, release, err := g.DirFD()
	if err != nil {
		return false, func() {}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	return true, release
}

// processStartTime returns when the process pid started, in clock ticks since boot.
func processStartTime(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	return st.startTime, err
}

// exitOf says how a child ended, naming a signal that killed it as in "SIGKILL".
func exitOf(ps *os.ProcessState) exitStatus {
	if ps == nil {
		return exitUnknown
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitStatus{Code: -1, Signal: unix.SignalName(ws.Signal())}
	}
	return exitStatus{Code: ps.ExitCode()}
}

// adoptPollInterval is how often an adopted process is checked on: the stop channel
// when watching through a pidfd, /proc where pidfds are not supported.
const adoptPollInterval = 250 * time.Millisecond

// adoptProc takes over watching the process pid, which the agent started before it
// restarted, if it is still the storage node nodeID that started at startTime.
// Watching stops when stop is closed.
func adoptProc(pid int, startTime uint64, nodeID string, stop <-chan struct{}) (*proc, error) {
	// Open the pidfd before checking who the pid is: if the check then passes, the
	// pidfd refers to that very process, and signals through it cannot reach another.
	fd, fdErr := unix.PidfdOpen(pid, 0)
	if err := checkNodeProcess(pid, startTime, nodeID); err != nil {
		if fdErr == nil {
			unix.Close(fd)
		}
		return nil, err
	}
	p := &proc{pid: pid, startTime: startTime, done: make(chan struct{}), exit: exitUnknown}
	if fdErr == nil {
		// The pidfd is closed when watching ends; the mutex keeps a late signal from
		// going to whatever file reuses the descriptor number.
		var mu sync.Mutex
		closed := false
		p.release = func() {
			mu.Lock()
			defer mu.Unlock()
			if !closed {
				closed = true
				unix.Close(fd)
			}
		}
		p.signalFn = func(sig syscall.Signal) error {
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return fmt.Errorf("pid %d is no longer watched", pid)
			}
			return unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		go watchPidfd(p, fd, stop)
		return p, nil
	}
	// No pidfds (a kernel before 5.3): check /proc, and re-check before signalling.
	p.release = func() {}
	p.signalFn = func(sig syscall.Signal) error {
		if err := checkNodeProcess(pid, startTime, nodeID); err != nil {
			return nil // it is gone already
		}
		return syscall.Kill(pid, sig)
	}
	go watchProc(p, nodeID, stop)
	return p, nil
}

// watchPidfd closes p.done once the pidfd polls readable, which it does when the
// process exits.
func watchPidfd(p *proc, fd int, stop <-chan struct{}) {
	defer p.release()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(adoptPollInterval/time.Millisecond))
		if n > 0 {
			close(p.done)
			return
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Cannot poll: fall back to /proc.
			watchProc(p, "", stop)
			return
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// watchProc closes p.done once the process is gone from /proc or is a zombie.
func watchProc(p *proc, nodeID string, stop <-chan struct{}) {
	t := time.NewTicker(adoptPollInterval)
	defer t.Stop()
	for {
		st, err := readProcStat(p.pid)
		if err != nil || st.state == 'Z' || st.startTime != p.startTime {
			close(p.done)
			return
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// procStat is what the agent reads from /proc/<pid>/stat.
type procStat struct {
	state     byte
	startTime uint64
}

// readProcStat parses /proc/<pid>/stat. The command name, field 2, is in parentheses
// and may itself hold spaces and parentheses, so fields are counted after the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return procStat{state: f[0][0], startTime: start}, nil
}

// checkNodeProcess returns nil if pid is alive, started at startTime, and runs the
// storage node nodeID; otherwise it says why not. Pids are reused, so a live pid alone
// proves nothing.
func checkNodeProcess(pid int, startTime uint64, nodeID string) error {
	if pid <= 0 {
		return fmt.Errorf("no pid")
	}
	st, err := readProcStat(pid)
	if err != nil {
		return fmt.Errorf("pid %d is gone", pid)
	}
	if st.state == 'Z' {
		return fmt.Errorf("pid %d has exited", pid)
	}
	if st.startTime != startTime {
		return fmt.Errorf("pid %d is another process now (started at %d, not %d)", pid, st.startTime, startTime)
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return fmt.Errorf("pid %d is gone", pid)
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if !isNodeCommand(args, nodeID) {
		return fmt.Errorf("pid %d is not storage node %s (%q)", pid, nodeID, strings.Join(args, " "))
	}
	return nil
}

// bootID identifies the current boot of the machine: after a reboot every recorded
// pid is stale, whatever its start time.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
