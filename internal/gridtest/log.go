package gridtest

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Logger returns a debug-level logger named name whose output is kept in a buffer and
// shown only if the test fails, so that passing runs stay quiet; with GRID_TEST_LOG=1
// in the environment it writes to stderr as it goes. It never logs through t, so
// a goroutine that logs after the test has ended cannot make it panic.
func Logger(t testing.TB, name string) hclog.Logger {
	var out io.Writer = os.Stderr
	if os.Getenv("GRID_TEST_LOG") == "" {
		buf := &SyncBuffer{}
		out = buf
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of %s:\n%s", name, buf.String())
			}
		})
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: out})
}

// SyncBuffer is a bytes.Buffer that goroutines may write to while the test reads it,
// such as a logger's output or a child process's stdout and stderr.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
