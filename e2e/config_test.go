//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigFiles runs a server and an agent from configuration files (a directory
// of HCL and JSON for the server, two files for the agent), on 127.0.0.73-74: the
// agent registers; after the agent dies, the servers' heartbeat thresholds, an hour
// in the files, are cut to seconds and SIGHUP applies them: the agent goes offline
// with no restart. A server given a file with a mistake exits 1 naming its file,
// line and key, and creates nothing.
func TestConfigFiles(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const common = `
bootstrap_expect   = 1
heartbeat_interval = "300ms"
agent {
  degraded_after = "%s"
  offline_after  = "%s"
}
log { level = "info" }
`
	write("server.d/00-common.hcl", fmt.Sprintf(common, "1h", "1h"))
	write("server.d/10-local.json", fmt.Sprintf(`{"bind": "127.0.0.73", "name": "cfg-server", "data_dir": %q}`, filepath.Join(dir, "server")))
	server := start(t, "cfg-server", "server", "-config="+filepath.Join(dir, "server.d"))

	write("agent.hcl", fmt.Sprintf(`
bind     = "127.0.0.74"
name     = "cfg-agent"
data_dir = %q
join     = ["127.0.0.73"]
retry { interval = "200ms" }
`, filepath.Join(dir, "agent")))
	write("agent-log.json", `{"log": {"level": "debug"}}`)
	agent := start(t, "cfg-agent", "agent", "-config="+filepath.Join(dir, "agent.hcl"), "-config="+filepath.Join(dir, "agent-log.json"))

	status := func() (string, error) {
		var as []agentView
		if err := gridJSON(&as, "agent", "status", address("127.0.0.73"), "cfg-agent"); err != nil {
			return "", err
		}
		if len(as) != 1 {
			return "", fmt.Errorf("agent status: %+v", as)
		}
		return as[0].Status, nil
	}
	waitStatus := func(want string) {
		t.Helper()
		cliPoll.WaitFor(t, 60*time.Second, "cfg-agent "+want, func() error {
			st, err := status()
			if err != nil {
				return err
			}
			if st != want {
				return fmt.Errorf("cfg-agent is %s", st)
			}
			return nil
		})
	}
	waitStatus("healthy")
	if !strings.Contains(agent.out.String(), "[DEBUG]") {
		t.Errorf("no DEBUG line from the agent, whose log level debug is in its second file")
	}

	// The agent dies; under thresholds of an hour it stays healthy. Cut them to
	// seconds in the common file, and SIGHUP the server.
	agent.kill()
	write("server.d/00-common.hcl", fmt.Sprintf(common, "1s", "2s"))
	if err := server.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	cliPoll.WaitFor(t, 30*time.Second, "the server to log the reload", func() error {
		if want := "configuration reloaded: agent_degraded_after=1s agent_offline_after=2s"; !strings.Contains(server.out.String(), want) {
			return fmt.Errorf("no %q in its log", want)
		}
		return nil
	})
	waitStatus("offline")

	// A mistake in a file: exit 1 with its file, line and key, and no data dir.
	bad := write("bad.hcl", fmt.Sprintf("data_dir = %q\nbind = \"127.0.0.75\"\nbootstrap_expect = \"one\"\n", filepath.Join(dir, "bad")))
	_, stderr, code := grid("server", "-config="+bad)
	if want := bad + `:3: bootstrap_expect: wants a whole number, not a string ("one")`; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("grid server with a bad file: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !os.IsNotExist(err) {
		t.Errorf("the bad file's data dir exists (%v)", err)
	}

	if code := server.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("server exit code %d", code)
	}
}
