//go:build linux

package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestServerReloadsOnSIGHUP runs `grid server -config=DIR` in this process, on
// 127.0.0.71, and changes its files under it: SIGHUP applies the log level and the
// heartbeat interval (which the next agent to register is told), logs a changed key
// that needs a restart, and after a file that is not right changes nothing.
func TestServerReloadsOnSIGHUP(t *testing.T) {
	// The test process takes SIGHUP and SIGTERM too: a signal sent before the server
	// has asked for it must not kill the test (the server gets it as well).
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(sigs)
	old := logStderr
	logStderr = io.Discard // the log file has it all
	defer func() { logStderr = old }()

	dir := t.TempDir()
	confDir := filepath.Join(dir, "conf.d")
	logPath := filepath.Join(dir, "grid.log")
	server := fmt.Sprintf(`
bind             = "127.0.0.71"
data_dir         = %q
bootstrap_expect = 1
log {
  level = "%%s"
  file  = %q
}
heartbeat_interval = "%%s"
agent {
  degraded_after = "1h"
  offline_after  = "1h"
}
`, filepath.Join(dir, "data"), logPath)
	writeFiles(t, confDir, map[string]string{
		"10-server.hcl": fmt.Sprintf(server, "warn", "5s"),
		"20-name.json":  `{"name": "reload-test"}`,
	})

	done := make(chan result, 1)
	go func() { done <- runCommand(t, "server", "-config="+confDir) }()
	stopped := false
	stop := func() result {
		t.Helper()
		stopped = true
		for {
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			select {
			case r := <-done:
				return r
			case <-time.After(time.Second): // until the server has asked for SIGTERM
			}
		}
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()

	conn, err := grpc.NewClient("127.0.0.71:7001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	servers := gridpb.NewServersClient(conn)
	interval := func(agent string) time.Duration {
		t.Helper()
		var d time.Duration
		gridtest.WaitFor(t, 30*time.Second, "a registration with the server", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := servers.Register(ctx, &gridpb.RegisterRequest{Name: agent, Address: "127.0.0.72:8001"})
			if err != nil {
				return err
			}
			d = time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond
			return nil
		})
		return d
	}
	if d := interval("agent-001"); d != 5*time.Second {
		t.Fatalf("heartbeat interval %s at start, want 5s", d)
	}
	logged := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	if strings.Contains(logged(), "[INFO]") {
		t.Fatalf("INFO lines at log level warn:\n%s", logged())
	}
	// hangup sends SIGHUP until the log holds want: the first may come before the
	// server has asked for it.
	hangup := func(want ...string) {
		t.Helper()
		gridtest.Poller{Interval: 200 * time.Millisecond}.WaitFor(t, 30*time.Second, "the reload in the log", func() error {
			_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
			for _, w := range want {
				if !strings.Contains(logged(), w) {
					return fmt.Errorf("no %q in the log:\n%s", w, logged())
				}
			}
			return nil
		})
	}

	writeFiles(t, confDir, map[string]string{
		"10-server.hcl": fmt.Sprintf(server, "info", "2s"),
		"20-name.json":  `{"name": "renamed"}`,
	})
	hangup("[INFO]  server: configuration reloaded: log_level=info heartbeat_interval=2s",
		"[WARN]  server: configuration changed where a restart is needed; left as it is until then: keys=name")
	if d := interval("agent-002"); d != 2*time.Second {
		t.Errorf("heartbeat interval %s after the reload, want 2s", d)
	}

	// A bad file: logged, and nothing changes, the log level included.
	writeFiles(t, confDir, map[string]string{"10-server.hcl": fmt.Sprintf(server, "error", "3s") + "\nbogus = 1\n"})
	hangup(`[ERROR] server: configuration reload failed; nothing changed: error="` + filepath.Join(confDir, "10-server.hcl") + `:15: Unsupported argument`)
	if d := interval("agent-003"); d != 2*time.Second {
		t.Errorf("heartbeat interval %s after a bad file, want 2s still", d)
	}

	r := stop()
	if r.code != 0 {
		t.Errorf("exit code %d, stderr %q", r.code, r.stderr)
	}
	// Still at info after the bad file: the shutdown says so.
	if !strings.Contains(logged(), "[INFO]  server: shutting down") {
		t.Errorf("no INFO line of the shutdown:\n%s", logged())
	}
}

// TestStorageReloadsOnSIGHUP runs `grid storage -config=FILE` in this process, with
// JSON logs to a file, and raises its log level with SIGHUP.
func TestStorageReloadsOnSIGHUP(t *testing.T) {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(sigs)
	old := logStderr
	logStderr = io.Discard
	defer func() { logStderr = old }()

	dir := t.TempDir()
	logPath := filepath.Join(dir, "storage.log")
	conf := `{"data_dir": %q, "bind": "127.0.0.72", "port": 0, "log": {"level": %q, "json": true, "file": %q}}`
	file := filepath.Join(dir, "storage.json")
	write := func(level string) {
		if err := os.WriteFile(file, []byte(fmt.Sprintf(conf, filepath.Join(dir, "data"), level, logPath)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("info")
	done := make(chan result, 1)
	go func() { done <- runCommand(t, "storage", "-config="+file) }()
	stopped := false
	stop := func() result {
		stopped = true
		for {
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			select {
			case r := <-done:
				return r
			case <-time.After(time.Second):
			}
		}
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	logged := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	// Once it has read its file, which the first log line shows.
	gridtest.WaitUntil(t, 30*time.Second, "the storage node's first log line", func() bool { return logged() != "" })
	write("debug")
	reloaded := func() bool {
		for _, line := range strings.Split(logged(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil && e["@message"] == "configuration reloaded" && e["log_level"] == "debug" {
				return true
			}
		}
		return false
	}
	gridtest.Poller{Interval: 200 * time.Millisecond}.WaitFor(t, 30*time.Second, "the reload in the log", func() error {
		_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
		select {
		case r := <-done:
			stopped = true
			t.Fatalf("grid storage exited %d: %s", r.code, r.stderr)
		default:
		}
		if !reloaded() {
			return fmt.Errorf("no configuration reloaded with log_level debug in the log:\n%s", logged())
		}
		return nil
	})
	if r := stop(); r.code != 0 {
		t.Errorf("exit code %d, stderr %q", r.code, r.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(logged()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("a log line that is not JSON: %q", line)
		}
	}
}

// TestHangupBeforeServe: a SIGHUP that comes while the process starts, before it can
// reload, neither stops it nor is lost: the reload runs once it can.
func TestHangupBeforeServe(t *testing.T) {
	hup := catchHangups(true)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloads := make(chan struct{}, 4)
	stop := hup.serve(func() error { reloads <- struct{}{}; return nil })
	defer stop()
	select {
	case <-reloads:
	case <-time.After(30 * time.Second):
		t.Fatal("no reload for the SIGHUP taken before serve")
	}
	if catchHangups(false) != nil {
		t.Error("catchHangups(false) takes SIGHUP")
	}
}
