//go:build linux

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
)

func TestIsNodeCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"/usr/bin/grid", "storage", "-bind=127.0.0.1", "-port=1", "-node-id=n1"}, true},
		{[]string{"/usr/bin/grid", "storage", "-node-id=n10"}, false},
		{[]string{"/usr/bin/grid", "server", "-node-id=n1"}, false},
		{[]string{"/usr/bin/grid"}, false},
		{[]string{"/usr/bin/grid", "storage", "-data-dir=/x/-node-id=n1"}, false},
	} {
		if got := isNodeCommand(tc.args, "n1"); got != tc.want {
			t.Errorf("isNodeCommand(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestCheckNodeProcess(t *testing.T) {
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.state == 0 || self.startTime == 0 {
		t.Fatalf("stat of self = %+v", self)
	}
	// A process whose command name holds spaces and parentheses still parses.
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd) (name")
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	st, err := readProcStat(cmd.Process.Pid)
	if err != nil || st.startTime == 0 {
		t.Fatalf("stat of %q = %+v, %v", odd, st, err)
	}

	for _, tc := range []struct {
		name      string
		pid       int
		startTime uint64
		ok        bool
	}{
		{"no pid", 0, 0, false},
		{"a live process that is not a node", os.Getpid(), self.startTime, false},
		{"a gone process", 1 << 30, 1, false},
		{"another start time", cmd.Process.Pid, st.startTime + 1, false},
	} {
		if err := checkNodeProcess(tc.pid, tc.startTime, "n1"); (err == nil) != tc.ok {
			t.Errorf("%s: checkNodeProcess = %v", tc.name, err)
		}
	}
}

func TestAdoptedProcessExitIsSeen(t *testing.T) {
	// A real storage node that this test starts, then adopts as an agent would.
	cmd := exec.Command(gridBinary, "storage", "-port=0", "-data-dir="+t.TempDir(), "-node-id=n1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	st, err := readProcStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Right after exec the new command line may not be readable yet.
	gridtest.WaitUntil(t, 10*time.Second, "the command line", func() bool { return checkNodeProcess(cmd.Process.Pid, st.startTime, "n1") == nil })
	if _, err := adoptProc(cmd.Process.Pid, st.startTime, "n2", nil); err == nil {
		t.Fatal("adopted a process with another node's ID")
	}
	stop := make(chan struct{})
	defer close(stop)
	p, err := adoptProc(cmd.Process.Pid, st.startTime, "n1", stop)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // this test is the parent: it reaps the node, as init would an adopted one
	<-p.done
	if p.exit != exitUnknown {
		t.Fatalf("exit = %+v, want unknown", p.exit)
	}
}
