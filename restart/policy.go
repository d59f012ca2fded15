// Package restart is the restart policy of storage nodes, defined once: the servers
// record it with each node, and the agent that runs the node applies it when the node
// exits without being asked to.
//
// A policy allows at most Attempts restarts within any window of Interval; the first
// comes after Delay, each next one after twice the previous, never more than MaxDelay,
// plus up to a quarter at random, so that nodes that crashed together do not restart
// in lockstep. When a restart would exceed Attempts the node has failed. Attempts 0
// means the node is never restarted.
package restart

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of a policy's fields.
const (
	DefaultAttempts = 3
	DefaultInterval = 30 * time.Minute
	DefaultDelay    = 5 * time.Second
	DefaultMaxDelay = 5 * time.Minute
	// MaxDuration bounds each duration, which keeps the backoff arithmetic far from
	// overflow.
	MaxDuration = 365 * 24 * time.Hour
)

// Policy says how a node that exits on its own is restarted. Its JSON form is part of
// the Raft log and snapshots: never rename a field.
type Policy struct {
	Attempts int           `json:"attempts"`
	Interval time.Duration `json:"interval"`
	Delay    time.Duration `json:"delay"`
	MaxDelay time.Duration `json:"max_delay"`
}

// Default is the policy of a node spawned without one.
func Default() Policy {
	return Policy{Attempts: DefaultAttempts, Interval: DefaultInterval, Delay: DefaultDelay, MaxDelay: DefaultMaxDelay}
}

// WithDefaults fills zero durations with their defaults and raises MaxDelay to Delay.
// Attempts is taken as it is: 0 means no restart.
func (p Policy) WithDefaults() Policy {
	if p.Interval == 0 {
		p.Interval = DefaultInterval
	}
	if p.Delay == 0 {
		p.Delay = DefaultDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(DefaultMaxDelay, p.Delay)
	}
	return p
}

// Validate rejects negative values, durations of a year or more, and a Delay over a
// MaxDelay that is set.
func (p Policy) Validate() error {
	if p.Attempts < 0 || p.Interval < 0 || p.Delay < 0 || p.MaxDelay < 0 {
		return errors.New("restart policy values must not be negative")
	}
	for _, d := range []time.Duration{p.Interval, p.Delay, p.MaxDelay} {
		if d >= MaxDuration {
			return fmt.Errorf("restart policy durations must be under %s, got %s", MaxDuration, d)
		}
	}
	if p.MaxDelay != 0 && p.Delay > p.MaxDelay {
		return fmt.Errorf("restart delay %s exceeds max delay %s", p.Delay, p.MaxDelay)
	}
	return nil
}

// Recent returns the restarts in history that fall within the window ending at now.
func (p Policy) Recent(now time.Time, history []time.Time) int {
	n := 0
	for _, t := range history {
		if now.Sub(t) < p.Interval {
			n++
		}
	}
	return n
}

// Next decides the restart after an exit at now, given the times of earlier restarts:
// whether to restart at all, and after what delay. jitter, in [0, 1), picks the random
// part of the delay.
func (p Policy) Next(now time.Time, history []time.Time, jitter float64) (time.Duration, bool) {
	n := p.Recent(now, history)
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

// Trim drops the restarts that no longer count, so a node that runs for months does
// not keep (and persist) an ever longer history.
func (p Policy) Trim(now time.Time, history []time.Time) []time.Time {
	out := history[:0]
	for _, t := range history {
		if now.Sub(t) < p.Interval {
			out = append(out, t)
		}
	}
	return out
}
