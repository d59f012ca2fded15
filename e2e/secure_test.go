//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
)

// devSecureBind is the address of TestDevSecure's grid dev: no other e2e test uses it.
const devSecureBind = "127.0.0.8"

// gridEnv runs a client command with env (KEY=VALUE) in place of the test's own GRID_
// variables, and returns its stdout, stderr and exit code.
func gridEnv(env []string, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(gridBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRID_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return stdout.String(), stderr.String(), code
}

// exportsIn returns the KEY=VALUE pairs of the `export` lines of out.
func exportsIn(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
	}
	return vars
}

// without returns vars as KEY=VALUE pairs, leaving out the keys named.
func without(vars map[string]string, keys ...string) []string {
	var env []string
	for k, v := range vars {
		left := false
		for _, drop := range keys {
			left = left || k == drop
		}
		if !left {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// TestDevSecure runs `grid dev -secure` and uses the grid it makes with the exports it
// prints: grid status works with them, and is refused without the token (403) or
// without the client certificate.
func TestDevSecure(t *testing.T) {
	for _, p := range devTCPPorts {
		addr := net.JoinHostPort(devSecureBind, strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("grid dev -secure needs TCP %s, which is not free (%v): skipping", addr, err)
		}
		ln.Close()
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() { killProcessesMentioning(tmp) })
	dev := start(t, "grid dev -secure", "dev", "-secure", "-bind="+devSecureBind)

	cliPoll.WaitFor(t, 60*time.Second, "grid dev -secure to print its exports", func() error {
		select {
		case <-dev.done:
			t.Fatalf("grid dev -secure exited: %v", dev.err)
		default:
		}
		if !strings.Contains(dev.out.String(), "export GRID_TOKEN=") {
			return fmt.Errorf("no exports yet")
		}
		return nil
	})
	vars := exportsIn(dev.out.String())
	for _, k := range []string{api.AddressEnv, api.CACertEnv, api.ClientCertEnv, api.ClientKeyEnv, api.TokenEnv} {
		if vars[k] == "" {
			t.Fatalf("grid dev -secure exported no %s: %v", k, vars)
		}
	}
	if want := "https://" + devSecureBind + ":7000"; vars[api.AddressEnv] != want {
		t.Errorf("GRID_ADDR=%s, want %s", vars[api.AddressEnv], want)
	}

	env := without(vars)
	cliPoll.WaitFor(t, 30*time.Second, "grid status with the exports", func() error {
		stdout, stderr, code := gridEnv(env, "status")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		if !strings.HasPrefix(statusValue(stdout, "Leader"), "dev ") || !strings.HasPrefix(statusValue(stdout, "  "+devSecureBind+":50052"), "in-sync") ||
			!strings.Contains(stdout, "1 total: 1 healthy") {
			return fmt.Errorf("grid status:\n%s", stdout)
		}
		return nil
	})

	// What the banner suggests works too: a spawn (through the agent, over TLS, with
	// its own token) and a question.
	stdout, stderr, code := gridEnv(env, "node", "spawn", "-agent=dev-agent", "-port=50061")
	if code != 0 || !strings.Contains(stdout, "is running on dev-agent at "+devSecureBind+":50061") {
		t.Errorf("grid node spawn: exit %d:\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = gridEnv(env, "ask", "how many nodes are running")
	if code != 0 || !strings.Contains(stdout, "running") {
		t.Errorf("grid ask: exit %d:\n%s%s", code, stdout, stderr)
	}

	_, stderr, code = gridEnv(without(vars, api.TokenEnv), "status")
	if code == 0 || !strings.Contains(stderr, "HTTP 403") || !strings.Contains(stderr, "needs operator read") {
		t.Errorf("grid status without GRID_TOKEN: exit %d, stderr %q; want a 403", code, stderr)
	}
	_, stderr, code = gridEnv(without(vars, api.ClientCertEnv, api.ClientKeyEnv), "status")
	if code == 0 || !strings.Contains(stderr, "the server requires a client certificate") {
		t.Errorf("grid status without the client certificate: exit %d, stderr %q; want a refusal", code, stderr)
	}

	if code := dev.stop(t, syscall.SIGINT, 90*time.Second); code != 0 {
		t.Fatalf("grid dev -secure exited %d after SIGINT, want 0", code)
	}
	if left := processesMentioning(tmp); len(left) > 0 {
		t.Errorf("processes left running after grid dev -secure exited:\n%s", strings.Join(left, "\n"))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("grid dev -secure left %d entries in $TMPDIR, want its directory removed: %v", len(entries), entries)
	}
}

// waitExit waits for p to exit and returns its exit code.
func waitExit(t *testing.T, p *proc, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s:\n%s", p.name, timeout, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestInsecure: a server on 0.0.0.0 without TLS, gossip encryption and ACLs refuses
// to start, with one error line naming what is missing and -insecure, and exits 1;
// with -insecure it starts and warns of what is off. An agent refuses as well.
func TestInsecure(t *testing.T) {
	ports := func() []string {
		return []string{
			"-http-port=" + strconv.Itoa(gridtest.FreePort(t)),
			"-rpc-port=" + strconv.Itoa(gridtest.FreePort(t)),
			"-raft-port=" + strconv.Itoa(gridtest.FreePort(t)),
			"-gossip-port=" + strconv.Itoa(gridtest.FreePort(t)),
		}
	}
	const wantErr = "Error: start server: refusing to run on 0.0.0.0, which is not a loopback address, " +
		"without TLS (-ca-file, -cert-file, -key-file), gossip encryption (-encrypt) and ACLs (-acl-enabled): " +
		"turn them on, or give -insecure to run without them"

	args := append([]string{"server", "-bind=0.0.0.0", "-data-dir=" + t.TempDir(), "-bootstrap-expect=1"}, ports()...)
	refused := start(t, "grid server (refused)", args...)
	if code := waitExit(t, refused, 30*time.Second); code != 1 {
		t.Errorf("grid server -bind=0.0.0.0 exited %d, want 1", code)
	}
	if out := strings.TrimSpace(refused.out.String()); out != wantErr {
		t.Errorf("grid server -bind=0.0.0.0 printed\n%s\nwant the one line\n%s", out, wantErr)
	}

	args = append([]string{"server", "-bind=0.0.0.0", "-data-dir=" + t.TempDir(), "-bootstrap-expect=1", "-insecure"}, ports()...)
	srv := start(t, "grid server -insecure", args...)
	cliPoll.WaitFor(t, 30*time.Second, "the insecure server to start", func() error {
		select {
		case <-srv.done:
			t.Fatalf("grid server -insecure exited: %v\n%s", srv.err, srv.out.String())
		default:
		}
		if !strings.Contains(srv.out.String(), "server started") {
			return fmt.Errorf("not started yet")
		}
		return nil
	})
	const wantWarn = "[WARN]  server: running insecure (-insecure) on 0.0.0.0, which is not a loopback address: " +
		"without TLS (-ca-file, -cert-file, -key-file), gossip encryption (-encrypt) and ACLs (-acl-enabled)"
	if !strings.Contains(srv.out.String(), wantWarn) {
		t.Errorf("grid server -insecure did not log\n%s\nit printed:\n%s", wantWarn, srv.out.String())
	}
	if code := srv.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("grid server -insecure exited %d after SIGTERM, want 0", code)
	}

	agent := start(t, "grid agent (refused)", "agent", "-bind=0.0.0.0", "-data-dir="+t.TempDir(), "-join=127.0.0.1:1",
		"-rpc-port="+strconv.Itoa(gridtest.FreePort(t)), "-gossip-port="+strconv.Itoa(gridtest.FreePort(t)))
	if code := waitExit(t, agent, 30*time.Second); code != 1 {
		t.Errorf("grid agent -bind=0.0.0.0 exited %d, want 1", code)
	}
	const wantAgentErr = "Error: start agent: refusing to run on 0.0.0.0, which is not a loopback address, " +
		"without TLS (-ca-file, -cert-file, -key-file) and gossip encryption (-encrypt): turn them on, or give -insecure to run without them"
	if out := strings.TrimSpace(agent.out.String()); out != wantAgentErr {
		t.Errorf("grid agent -bind=0.0.0.0 printed\n%s\nwant the one line\n%s", out, wantAgentErr)
	}
}
