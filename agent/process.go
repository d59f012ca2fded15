package agent

import (
	"os/exec"
	"strconv"
	"syscall"
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
	// startTime is the process's start time (on Linux from /proc/<pid>/stat), which
	// with the command line tells the process apart from a later one that reuses its
	// pid.
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
	if start, err := processStartTime(p.pid); err == nil {
		p.startTime = start
	}
	go func() {
		_ = cmd.Wait()
		p.exit = exitOf(cmd.ProcessState)
		close(p.done)
	}()
	return p, nil
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
