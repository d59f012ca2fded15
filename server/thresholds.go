package server

import (
	"fmt"
	"time"
)

// Thresholds are the heartbeat settings that may change while the server runs
// (SIGHUP reloads them from the configuration files): how often agents are asked to
// heartbeat, and how long an agent may stay silent before it is marked degraded, then
// offline. They change together, so that the checker never sees a degraded threshold
// above the offline one.
type Thresholds struct {
	HeartbeatInterval  time.Duration
	AgentDegradedAfter time.Duration
	AgentOfflineAfter  time.Duration
}

// Validate checks the thresholds as SetThresholds does, for callers that must know
// before they change anything.
func (t Thresholds) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"heartbeat-interval", t.HeartbeatInterval}, {"agent-degraded-after", t.AgentDegradedAfter}, {"agent-offline-after", t.AgentOfflineAfter}} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, got %s", d.name, d.v)
		}
	}
	if t.AgentOfflineAfter < t.AgentDegradedAfter {
		return fmt.Errorf("agent-offline-after (%s) must not be shorter than agent-degraded-after (%s)", t.AgentOfflineAfter, t.AgentDegradedAfter)
	}
	return nil
}

// Thresholds returns the heartbeat thresholds in force.
func (s *Server) Thresholds() Thresholds {
	return *s.thresholds.Load()
}

// SetThresholds replaces the heartbeat thresholds, all or none: an invalid set (a
// threshold not positive, offline before degraded) is refused and changes nothing.
// The leader's checker judges agents by the new thresholds from its next check on;
// a new heartbeat interval reaches each agent when it next registers (at start, or
// with a new leader), since agents learn it from their registration.
func (s *Server) SetThresholds(t Thresholds) error {
	if err := t.Validate(); err != nil {
		return err
	}
	s.thresholds.Store(&t)
	return nil
}

// checkEvery is how often the leader checks the agents' heartbeats: a fifth of the
// degraded threshold, so that an agent is marked within a fifth of it of the moment
// it crosses it, between 10ms (tests use short thresholds) and 1s.
func (t Thresholds) checkEvery() time.Duration {
	return min(max(t.AgentDegradedAfter/5, 10*time.Millisecond), time.Second)
}
