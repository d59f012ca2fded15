package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestSetThresholds: thresholds swapped while the server runs judge the agents from
// the next check on, and an invalid set changes nothing.
func TestSetThresholds(t *testing.T) {
	c := newClusterWith(t, 1, func(cfg *Config) {
		cfg.HeartbeatInterval, cfg.AgentDegradedAfter, cfg.AgentOfflineAfter = time.Hour, time.Hour, time.Hour
	})
	s := c.leader()
	if _, err := serversClient(t, s).Register(context.Background(), &gridpb.RegisterRequest{Name: "agent-001", Address: "x:1"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c.servers, "agent-001", fsm.AgentHealthy)

	for _, tc := range []struct {
		name string
		th   Thresholds
		err  string
	}{
		{"zero interval", Thresholds{0, time.Second, time.Second}, "heartbeat-interval must be positive"},
		{"negative degraded", Thresholds{time.Second, -time.Second, time.Second}, "agent-degraded-after must be positive"},
		{"offline before degraded", Thresholds{time.Second, 2 * time.Second, time.Second}, "must not be shorter than agent-degraded-after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetThresholds(tc.th)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("SetThresholds(%+v) = %v, want an error with %q", tc.th, err, tc.err)
			}
			if got := s.Thresholds(); got != (Thresholds{time.Hour, time.Hour, time.Hour}) {
				t.Fatalf("thresholds after a refused set: %+v", got)
			}
		})
	}

	// From an hour to fractions of a second: the agent, silent since it registered,
	// goes offline without a restart (at once, if it has been silent longer than the
	// new offline threshold); and new registrations learn the new interval.
	fast := Thresholds{HeartbeatInterval: 50 * time.Millisecond, AgentDegradedAfter: 300 * time.Millisecond, AgentOfflineAfter: 600 * time.Millisecond}
	if err := s.SetThresholds(fast); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c.servers, "agent-001", fsm.AgentOffline)
	resp, err := serversClient(t, s).Register(context.Background(), &gridpb.RegisterRequest{Name: "agent-002", Address: "x:2"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetHeartbeatIntervalMs() != 50 {
		t.Errorf("heartbeat interval %dms after the change, want 50", resp.GetHeartbeatIntervalMs())
	}
}
