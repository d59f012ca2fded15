//go:build linux

// Package e2e runs the built grid binary as real processes on loopback addresses and
// checks what an operator would see through the CLI. Like agents, the tests run on
// Linux only: they run agents, and look at processes through /proc.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
)

// gridBin is the binary under test, built once by TestMain.
var gridBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grid-e2e-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Others may run it too: the partition test runs servers under uids of their own.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gridBin = filepath.Join(dir, "grid")
	// A binary built with -race sleeps a second at exit by default, for reports of
	// races still in progress; every CLI call would cost that. A race is reported
	// when it is found, and the exit code still says so.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	if err := gridtest.BuildGrid(gridBin, "-race"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The tests use fixed addresses (127.0.0.11-13, 127.0.0.21-22, 127.0.0.91-95 and
	// default ports): two e2e runs on one machine (two checkouts, say) would join
	// each other's grids. Take turns.
	unlock, err := e2eLock()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	unlock()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eLock waits for, and takes, the machine-wide lock of the e2e tests.
func e2eLock() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "grid-e2e.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		fmt.Fprintf(os.Stderr, "waiting for another e2e run to finish (lock %s)\n", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	return func() { f.Close() }, nil
}

// proc is one running grid process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *gridtest.SyncBuffer
	done chan struct{}
	err  error
}

// start runs grid with args; the process is killed when the test ends.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startArgv(t, name, append([]string{gridBin}, args...))
}

// startArgv runs argv, a command that runs grid in the end (such as through
// `ip netns exec`, which execs it in the same process); the process is killed when
// the test ends.
func startArgv(t testing.TB, name string, argv []string) *proc {
	t.Helper()
	p := &proc{name: name, out: &gridtest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends sig and returns the exit code, or fails after the timeout.
func (p *proc) stop(t testing.TB, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s of %v", p.name, timeout, sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// grid runs a client command and returns its stdout, stderr and exit code.
func grid(args ...string) (string, string, int) {
	return gridVia(nil, args...)
}

// gridVia runs a client command through the command prefix (nil for none, or such
// as `ip netns exec NAME`) and returns its stdout, stderr and exit code.
func gridVia(prefix []string, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	argv := append(append(append([]string{}, prefix...), gridBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "GRID_ADDR=")
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

// gridJSON runs a client command with -json and decodes its output into out.
func gridJSON(out any, args ...string) error {
	return gridJSONVia(nil, out, args...)
}

// gridJSONVia is gridJSON through a command prefix, as gridVia.
func gridJSONVia(prefix []string, out any, args ...string) error {
	// -json goes before the first flag, so that it precedes any positional argument.
	at := len(args)
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			at = i
			break
		}
	}
	withJSON := append(append(append([]string{}, args[:at]...), "-json"), args[at:]...)
	stdout, stderr, code := gridVia(prefix, withJSON...)
	if code != 0 {
		return fmt.Errorf("grid %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		return fmt.Errorf("grid %s: decode %q: %w", strings.Join(args, " "), stdout, err)
	}
	return nil
}

// cliPoll is how the tests wait: most conditions run grid commands, which are
// processes, so they are checked less often than gridtest's default.
var cliPoll = gridtest.Poller{Interval: 50 * time.Millisecond}

// statusValue returns the value of one "Key = value" line of `grid status`, whose
// keys are padded to the longest; "" when there is no such line.
func statusValue(out, key string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s+= (.*)$`)
	if m := re.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}
