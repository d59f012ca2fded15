package gridtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder stands in for a test, keeping a failure instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failure string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	r := &fatalRecorder{TB: t}
	checks := 0
	WaitFor(r, 10*time.Second, "three checks", func() error {
		if checks++; checks < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if r.failure != "" || checks != 3 {
		t.Fatalf("failure %q after %d checks; want none after 3", r.failure, checks)
	}
}

func TestWaitForFailsWithTheLastError(t *testing.T) {
	r := &fatalRecorder{TB: t}
	checks := 0
	Poller{Interval: time.Millisecond}.WaitFor(r, 30*time.Millisecond, "the impossible", func() error {
		checks++
		return fmt.Errorf("check %d failed", checks)
	})
	want := fmt.Sprintf("timed out after 30ms waiting for the impossible: check %d failed", checks)
	if r.failure != want {
		t.Fatalf("failure %q, want %q", r.failure, want)
	}
	if checks < 2 {
		t.Errorf("%d checks; want one at the start and one at the deadline at least", checks)
	}
}

func TestWaitUntil(t *testing.T) {
	r := &fatalRecorder{TB: t}
	WaitUntil(r, 10*time.Second, "true", func() bool { return true })
	if r.failure != "" {
		t.Fatalf("failed on a true condition: %s", r.failure)
	}
	Poller{Interval: time.Millisecond}.WaitUntil(r, 0, "false", func() bool { return false })
	if !strings.HasPrefix(r.failure, "timed out after 0s waiting for false") {
		t.Fatalf("failure %q", r.failure)
	}
}
