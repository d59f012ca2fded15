package command

import (
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/version"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		checks []check
	}{
		{"text", nil, []check{exitCode(0), noStderr(), stdoutIs("Grid v" + version.String())}},
		{"json", []string{"-json"}, []check{exitCode(0), noStderr(), jsonIs(`{"version":"` + version.String() + `"}`)}},
		{"argument", []string{"now"}, []check{usageFails("version", `unexpected argument "now"`)}},
		{"unknown flag", []string{"-address=http://127.0.0.1:7000"}, []check{usageFails("version", "flag provided but not defined: -address")}},
		{"help", []string{"-help"}, []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCommand(t, "version", tt.args...)
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}
}

func TestVersionUsesBuildVariables(t *testing.T) {
	v, p, g := version.Version, version.Prerelease, version.GitCommit
	t.Cleanup(func() { version.Version, version.Prerelease, version.GitCommit = v, p, g })
	version.Version, version.Prerelease, version.GitCommit = "1.2.3", "", "abc1234"
	r := runCommand(t, "version")
	stdoutIs("Grid v1.2.3 (abc1234)")(t, r)
	r = runCommand(t, "version", "-json")
	jsonIs(`{"version":"1.2.3 (abc1234)"}`)(t, r)
}
