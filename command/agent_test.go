//go:build linux

package command

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/cli"
)

func TestAgentFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		checks []check
	}{
		{"no data dir", nil, []check{usageFails("agent", "-data-dir is required")}},
		{"argument", []string{"-data-dir=" + dir, "now"}, []check{usageFails("agent", `unexpected argument "now"`)}},
		{"unknown flag", []string{"-data-dir=" + dir, "-bootstrap-expect=3"}, []check{usageFails("agent", "flag provided but not defined: -bootstrap-expect")}},
		{"max nodes", []string{"-data-dir=" + dir, "-max-nodes=0"}, []check{usageFails("agent", "-max-nodes must be at least 1")}},
		{"heartbeat", []string{"-data-dir=" + dir, "-heartbeat-interval=0s"}, []check{usageFails("agent", "-heartbeat-interval must be positive")}},
		{"log level", []string{"-data-dir=" + dir, "-log-level=loud"}, []check{usageFails("agent", `unknown log level "loud"`)}},
		{"bad bind", []string{"-data-dir=" + filepath.Join(dir, "a"), "-bind=nowhere"}, []check{exitCode(1), noStdout(), stderrHas("Error: start agent:", `"nowhere" is not an IP address`)}},
		{"bad gossip key", []string{"-data-dir=" + filepath.Join(dir, "k"), "-encrypt=abc"}, []check{exitCode(1), noStdout(), stderrHas("Error: start agent:", "-encrypt: invalid gossip encryption key")}},
		{"bad http port", []string{"-data-dir=" + filepath.Join(dir, "h"), "-http-port=-2"}, []check{exitCode(1), noStdout(), stderrHas("Error: start agent:", "http port -2 is out of range (-1 turns it off)")}},
		{"help", []string{"-help"}, []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCommand(t, "agent", tt.args...)
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}
}
