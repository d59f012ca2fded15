package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exitStatus is how a process ended.
type exitStatus struct {
	// Code is the exit code, or -1 when a signal killed the process or the code is
	// unknown (an adopted process is not the agent's child, so it cannot be waited for).
	Code int
	// Signal names the signal that killed the process ("SIGKILL"), if one did.
	Signal string
}

var exitUnknown = exitStatus{Code: -1}

func (e exitStatus) String() string {
	switch {
	case e.Signal != "":
		return "killed by " + e.Signal
	case e.Code < 0:
		return "exited with an unknown code"
	}
	return "exited with code " + strconv.Itoa(e.Code)
}

// proc is one storage-node process the agent watches: a child it started, or a
// process it adopted after it restarted.
type proc struct {
	pid int
	// startTime is the process's start time from /proc/<pid>/stat, which with the
	// command line tells the process apart from a later one that reuses its pid.
	startTime uint64
	// done is closed once the process has exited; exit is valid from then on.
	done chan struct{}
	exit exitStatus
	// stderrFrom is the size of the node's stderr log when the process started: what
	// follows is its own.
	stderrFrom int64

	signalFn func(syscall.Signal) error
	// release frees what watching the process holds (an adopted process's pidfd).
	release func()
}

func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return p.signalFn(sig)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProc starts cmd and watches it until it exits. The child is waited for by a
// goroutine that outlives the agent's shutdown on purpose: in a process that goes on
// (tests) it reaps the child instead of leaving a zombie.
func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{}), signalFn: func(sig syscall.Signal) error { return cmd.Process.Signal(sig) }, release: func() {}}
	// The child cannot be reaped before Wait below, so its pid is still its own.
	if st, err := readProcStat(p.pid); err == nil {
		p.startTime = st.startTime
	}
	go func() {
		_ = cmd.Wait()
		p.exit = exitOf(cmd.ProcessState)
		close(p.done)
	}()
	return p, nil
}

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

// isNodeCommand reports whether args is the command line the agent starts node
// nodeID with.
func isNodeCommand(args []string, nodeID string) bool {
	if len(args) < 2 || args[1] != "storage" {
		return false
	}
	for _, a := range args[2:] {
		if a == "-node-id="+nodeID {
			return true
		}
	}
	return false
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
