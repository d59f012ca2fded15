//go:build linux

package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sutragrid/grid/internal/gridtest"
)

// gridBin is the binary under test, built once by TestMain when the tests can run.
var gridBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips: no build, no lock
	}
	dir, err := os.MkdirTemp("", "grid-chaos-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	gridBin = filepath.Join(dir, "grid")
	// Without -race: ten processes and the nodes they spawn share two cores, and the
	// race detector's cost would starve Raft's timers into elections no real grid
	// sees. CHAOS_RACE=1 builds with it anyway.
	var flags []string
	if os.Getenv("CHAOS_RACE") == "1" {
		flags = append(flags, "-race")
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	if err := gridtest.BuildGrid(gridBin, flags...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The namespaces, the bridge and the addresses are fixed: two runs on one machine
	// would tear down each other's. The e2e tests' lock makes them, and e2e, take turns.
	unlock, err := lockMachine()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	return m.Run()
}

// lockMachine waits for, and takes, the machine-wide lock of the e2e tests
// (e2e/e2e_test.go: the same file).
func lockMachine() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "grid-e2e.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		fmt.Fprintf(os.Stderr, "waiting for another e2e or chaos run to finish (lock %s)\n", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	return func() { f.Close() }, nil
}
