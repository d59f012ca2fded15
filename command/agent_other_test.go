//go:build !linux

package command

import (
	"runtime"
	"testing"
)

// Elsewhere than on Linux, grid agent and grid dev say at once that they cannot run
// here, whatever the flags; -help still works.
func TestAgentAndDevOnOtherSystems(t *testing.T) {
	r := runCommand(t, "agent", "-data-dir="+t.TempDir())
	exitCode(1)(t, r)
	noStdout()(t, r)
	stderrIs("Error: agents run on Linux, not "+runtime.GOOS)(t, r)

	r = runCommand(t, "agent")
	stderrIs("Error: agents run on Linux, not "+runtime.GOOS)(t, r)

	r = runCommand(t, "dev")
	exitCode(1)(t, r)
	stderrIs("Error: grid dev runs an agent, and agents run on Linux, not "+runtime.GOOS)(t, r)

	r = runCLI(t, "agent", "-help")
	exitCode(0)(t, r)
	stdoutHas("Usage: grid agent")(t, r)
}
