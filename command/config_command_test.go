package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sutragrid/grid/agent"
)

// TestConfigFileRefused: a command given a file that is not right exits 1 with the
// file, line and key on stderr, and starts nothing: the data dir the file names is
// not even created.
func TestConfigFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		content string // {data} is the data dir
		args    []string
		want    []string // on stderr, after "{file}" for those that start with ":"
	}{
		{"syntax error", "server", "data_dir = \"{data}\"\nbind = \"127.0.0.71\n", nil, []string{":2: Invalid multi-line string"}},
		{"unknown key", "server", "data_dir = \"{data}\"\nboostrap_expect = 3\n", nil, []string{`:2: Unsupported argument: An argument named "boostrap_expect" is not expected here. Did you mean "bootstrap_expect"?`}},
		{"wrong type", "server", "data_dir = \"{data}\"\nbootstrap_expect = \"three\"\n", nil, []string{`:2: bootstrap_expect: wants a whole number, not a string ("three")`}},
		{"bad value", "server", "data_dir = \"{data}\"\nretry_interval = \"soon\"\n", nil, []string{`:2: retry_interval: invalid value "soon"`}},
		{"unknown key in a block", "server", "data_dir = \"{data}\"\ntls {\n  ca = \"x\"\n}\n", nil, []string{`:3: Unsupported argument: An argument named "ca" is not expected here.`}},
		{"twice", "server", "data_dir = \"{data}\"\nacl_enabled = true\nacl { enabled = true }\n", nil, []string{`:3: acl.enabled: set twice in this file, also as acl_enabled at line 2`}},
		{"conflicting keys", "server", "data_dir = \"{data}\"\ntls {\n  verify_https_client = true\n}\n", nil, []string{"-verify-https-client needs TLS"}},
		{"conflicting thresholds", "server", "data_dir = \"{data}\"\nbind = \"127.0.0.71\"\nagent {\n  degraded_after = \"1m\"\n  offline_after = \"30s\"\n}\n", nil,
			[]string{"agent-offline-after (30s) must not be shorter than agent-degraded-after (1m0s)"}},
		{"bad log level", "server", "data_dir = \"{data}\"\nlog { level = \"loud\" }\n", nil, []string{`unknown log level "loud"`}},
		{"config in a file", "server", "data_dir = \"{data}\"\nconfig = \"/etc/grid\"\n", nil, []string{":2: config: the files to read are named on the command line only"}},
		{"agent wrong type", "agent", "data_dir = \"{data}\"\nmax_nodes = true\n", nil, []string{":2: max_nodes: wants a whole number, not a bool (true)"}},
		{"agent file value checked like the flag", "agent", "data_dir = \"{data}\"\nmax_nodes = 0\n", nil, []string{"-max-nodes must be at least 1"}},
		{"storage unknown key", "storage", "data_dir = \"{data}\"\nretension = \"720h\"\n", nil, []string{`:2: Unsupported argument: An argument named "retension" is not expected here. Did you mean "retention"?`}},
		{"storage callers without TLS", "storage", "data_dir = \"{data}\"\ntls { callers = \"agent\" }\n", nil, []string{"-callers needs TLS"}},
		{"flag after the file still checked", "server", "data_dir = \"{data}\"\n", []string{"-bootstrap-expect=x"}, []string{`invalid value "x" for flag -bootstrap-expect`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cmd == "agent" && agent.CheckPlatform() != nil {
				t.Skip(agent.CheckPlatform())
			}
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			file := filepath.Join(dir, "grid.hcl")
			if err := os.WriteFile(file, []byte(strings.ReplaceAll(tt.content, "{data}", data)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runCommand(t, tt.cmd, append([]string{"-config=" + file}, tt.args...)...)
			var want []string
			for _, w := range tt.want {
				if strings.HasPrefix(w, ":") {
					w = file + w
				}
				want = append(want, w)
			}
			exitCode(1)(t, r)
			noStdout()(t, r)
			stderrHas(append(want, "Error: ")...)(t, r)
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data dir exists after a refused configuration (%v)", err)
			}
		})
	}
}
