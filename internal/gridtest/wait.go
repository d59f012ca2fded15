package gridtest

import (
	"errors"
	"testing"
	"time"
)

// PollInterval is how often WaitFor and WaitUntil look at their condition: often
// enough that a test goes on soon after it holds, rarely enough that the looking does
// not compete for the CPU with what it waits for.
const PollInterval = 20 * time.Millisecond

// WaitFor polls cond every PollInterval until it returns nil, and fails the test
// with cond's last error, which should say what is still missing, once timeout has
// passed. what names the condition in the failure.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	Poller{Interval: PollInterval}.WaitFor(t, timeout, what, cond)
}

// WaitUntil is WaitFor for a condition that holds or not, with no more to say.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Poller{Interval: PollInterval}.WaitUntil(t, timeout, what, cond)
}

// Poller waits for conditions that are checked at another pace than PollInterval:
// less often when a check is costly (it runs a process), more often when it is cheap
// and the test is short.
type Poller struct {
	Interval time.Duration
}

// WaitFor is WaitFor, polling every p.Interval.
func (p Poller) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := p.poll(timeout, cond); err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// WaitUntil is WaitUntil, polling every p.Interval.
func (p Poller) WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	held := func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}
	if p.poll(timeout, held) != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// poll returns nil once cond does, or cond's last error once timeout has passed.
// cond is checked at least once, and once more after the deadline, so that a
// condition that came true during the last sleep is not reported as a timeout.
func (p Poller) poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(p.Interval)
	}
}

// errNotYet stands for a false boolean condition.
var errNotYet = errors.New("the condition does not hold")

// Poll is WaitFor that returns cond's last error once timeout has passed instead of
// failing the test: for a wait whose timeout the test acts on.
func (p Poller) Poll(timeout time.Duration, cond func() error) error {
	return p.poll(timeout, cond)
}
