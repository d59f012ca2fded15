//go:build !linux

package agent

import (
	"github.com/sutragrid/grid/cgroup"

	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// Agents run on Linux only: taking back the nodes a restarted agent left running
// needs /proc and pidfds. Elsewhere the package builds, so that the grid binary and
// its other commands do, but New refuses to start, and nothing below is reached.

// CheckPlatform returns an error if agents cannot run on this system.
func CheckPlatform() error {
	return fmt.Errorf("agents run on Linux, not %s", runtime.GOOS)
}

func lockDir(string) (*os.File, error) { return nil, CheckPlatform() }

func setOwnProcessGroup(*exec.Cmd) {}

func processStartTime(int) (uint64, error) { return 0, CheckPlatform() }

func exitOf(ps *os.ProcessState) exitStatus {
	if ps == nil {
		return exitUnknown
	}
	return exitStatus{Code: ps.ExitCode()}
}

func adoptProc(int, uint64, string, <-chan struct{}) (*proc, error) {
	return nil, CheckPlatform()
}

func bootID() string { return "" }

func intoGroup(*exec.Cmd, *cgroup.Group) (bool, func()) { return false, func() {} }
