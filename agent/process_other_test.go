//go:build !linux

package agent

import (
	"runtime"
	"testing"
)

func TestNewRefusesToRunOffLinux(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	a, err := New(cfg)
	if err == nil {
		a.Shutdown()
		t.Fatal("an agent started on " + runtime.GOOS)
	}
	if want := "agents run on Linux, not " + runtime.GOOS; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
