package command

import (
	"strings"
	"testing"
)

// TestMainReportsUnknownCommands runs the CLI as main does: a command line that names
// no command fails like any other mistake, with exit code 1 and an Error: line on
// stderr, and the help it asks for still succeeds.
func TestMainReportsUnknownCommands(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdoutHas  string
		stderrIs   string // whole stderr when set
		stderrHas  string
		emptyOut   bool
		emptyError bool
	}{
		{args: []string{"bogus"}, code: 1, emptyOut: true,
			stderrIs: "Error: unknown command \"bogus\"\nRun 'grid -help' for usage.\n"},
		{args: []string{"bogus", "-json"}, code: 1, emptyOut: true,
			stderrIs: "Error: unknown command \"bogus\"\nRun 'grid -help' for usage.\n"},
		{args: []string{"node", "bogus"}, code: 1, emptyOut: true,
			stderrIs: "Error: unknown command \"node bogus\"\nRun 'grid node -help' for usage.\n"},
		{args: []string{"operator", "raft", "bogus"}, code: 1, emptyOut: true,
			stderrIs: "Error: unknown command \"operator raft bogus\"\nRun 'grid operator raft -help' for usage.\n"},
		// No command at all: the list of commands, as for a parent command without one.
		{args: nil, code: 1, emptyOut: true, stderrHas: "Usage: grid [--version] [--help] <command> [<args>]"},
		{args: []string{"-help"}, code: 0, stdoutHas: "Available commands are:", emptyError: true},
		{args: []string{"node", "-help"}, code: 0, stdoutHas: "Usage: grid node ", emptyError: true},
		{args: []string{"version"}, code: 0, stdoutHas: "Grid v", emptyError: true},
		{args: []string{"members", "-bogus"}, code: 1, emptyOut: true,
			stderrIs: "Error: flag provided but not defined: -bogus\nRun 'grid members -help' for usage.\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			isolateEnv(t)
			var stdout, stderr strings.Builder
			code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if tt.emptyOut && stdout.Len() > 0 {
				t.Errorf("stdout: %q, want nothing", stdout.String())
			}
			if tt.emptyError && stderr.Len() > 0 {
				t.Errorf("stderr: %q, want nothing", stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdoutHas) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.stdoutHas)
			}
			if tt.stderrIs != "" && stderr.String() != tt.stderrIs {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderrIs)
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderrHas)
			}
		})
	}
}
