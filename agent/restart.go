package agent

import (
	"fmt"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
)

// maxPolicyMs bounds the policy's durations in a request.
const maxPolicyMs = int64(restart.MaxDuration / time.Millisecond)

// policyFromProto reads a request's policy. An absent policy is the default;
// otherwise fields are taken as given (Attempts 0 means never restart, Delay 0
// restarts at once: the servers send policies with their defaults filled in), except
// that a zero Interval or MaxDelay takes its default, and MaxDelay is raised to Delay
// if below it.
func policyFromProto(p *gridpb.RestartPolicy) (restart.Policy, error) {
	if p == nil {
		return restart.Default(), nil
	}
	if p.GetAttempts() < 0 || p.GetIntervalMs() < 0 || p.GetDelayMs() < 0 || p.GetMaxDelayMs() < 0 {
		return restart.Policy{}, fmt.Errorf("restart policy fields must not be negative")
	}
	for _, ms := range []int64{p.GetIntervalMs(), p.GetDelayMs(), p.GetMaxDelayMs()} {
		if ms > maxPolicyMs {
			return restart.Policy{}, fmt.Errorf("restart policy durations must be under a year, got %dms", ms)
		}
	}
	r := restart.Policy{
		Attempts: int(p.GetAttempts()),
		Interval: time.Duration(p.GetIntervalMs()) * time.Millisecond,
		Delay:    time.Duration(p.GetDelayMs()) * time.Millisecond,
		MaxDelay: time.Duration(p.GetMaxDelayMs()) * time.Millisecond,
	}
	if r.Interval == 0 {
		r.Interval = restart.DefaultInterval
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = restart.DefaultMaxDelay
	}
	r.MaxDelay = max(r.MaxDelay, r.Delay)
	return r, nil
}
