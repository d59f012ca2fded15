package agent

import (
	"fmt"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
)

// RestartPolicy says how the agent restarts a node that exits without being asked to:
// at most Attempts restarts within any window of Interval, the first after Delay and
// each next one after twice the previous, never more than MaxDelay, plus up to a
// quarter at random so that nodes that crashed together do not restart in lockstep.
// When a restart would exceed Attempts the agent gives up and the node has failed.
type RestartPolicy struct {
	Attempts int
	Interval time.Duration
	Delay    time.Duration
	MaxDelay time.Duration
}

// DefaultRestartPolicy applies when a StartNode request carries no policy.
var DefaultRestartPolicy = RestartPolicy{
	Attempts: 3,
	Interval: 30 * time.Minute,
	Delay:    5 * time.Second,
	MaxDelay: 5 * time.Minute,
}

// maxPolicyMs bounds the policy's durations, which keeps the backoff arithmetic far
// from overflow.
const maxPolicyMs = int64(365 * 24 * time.Hour / time.Millisecond)

// policyFromProto reads a request's policy. An absent or all-zero policy is the
// default; otherwise fields are taken as given (Attempts 0 means never restart, Delay 0
// restarts at once), except that a zero Interval or MaxDelay takes its default, and
// MaxDelay is raised to Delay if below it.
func policyFromProto(p *gridpb.RestartPolicy) (RestartPolicy, error) {
	if p == nil || (p.GetAttempts() == 0 && p.GetIntervalMs() == 0 && p.GetDelayMs() == 0 && p.GetMaxDelayMs() == 0) {
		return DefaultRestartPolicy, nil
	}
	if p.GetAttempts() < 0 || p.GetIntervalMs() < 0 || p.GetDelayMs() < 0 || p.GetMaxDelayMs() < 0 {
		return RestartPolicy{}, fmt.Errorf("restart policy fields must not be negative")
	}
	for _, ms := range []int64{p.GetIntervalMs(), p.GetDelayMs(), p.GetMaxDelayMs()} {
		if ms > maxPolicyMs {
			return RestartPolicy{}, fmt.Errorf("restart policy durations must be under a year, got %dms", ms)
		}
	}
	r := RestartPolicy{
		Attempts: int(p.GetAttempts()),
		Interval: time.Duration(p.GetIntervalMs()) * time.Millisecond,
		Delay:    time.Duration(p.GetDelayMs()) * time.Millisecond,
		MaxDelay: time.Duration(p.GetMaxDelayMs()) * time.Millisecond,
	}
	if r.Interval == 0 {
		r.Interval = DefaultRestartPolicy.Interval
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultRestartPolicy.MaxDelay
	}
	r.MaxDelay = max(r.MaxDelay, r.Delay)
	return r, nil
}

// recent returns the restarts in history that fall within the policy's window ending
// at now.
func (p RestartPolicy) recent(now time.Time, history []time.Time) int {
	n := 0
	for _, t := range history {
		if now.Sub(t) < p.Interval {
			n++
		}
	}
	return n
}

// next decides the restart after an exit at now, given the times of earlier restarts:
// whether to restart at all, and after what delay. jitter, in [0, 1), picks the random
// part of the delay.
func (p RestartPolicy) next(now time.Time, history []time.Time, jitter float64) (time.Duration, bool) {
	n := p.recent(now, history)
	if n >= p.Attempts {
		return 0, false
	}
	d := p.Delay
	for i := 0; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	d += time.Duration(jitter * float64(d) / 4)
	return min(d, p.MaxDelay), true
}

// trim drops the restarts that no longer count, so a node that runs for months does
// not keep (and persist) an ever longer history.
func (p RestartPolicy) trim(now time.Time, history []time.Time) []time.Time {
	out := history[:0]
	for _, t := range history {
		if now.Sub(t) < p.Interval {
			out = append(out, t)
		}
	}
	return out
}
