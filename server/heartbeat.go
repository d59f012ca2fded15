package server

import (
	"context"
	"sync"
	"time"

	"github.com/sutragrid/grid/fsm"
)

// heartbeats holds, on the leader only, when each agent was last heard from. It lives
// in memory, not in Raft: a heartbeat changes nothing replicated unless it changes an
// agent's status, and that alone goes through Raft.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
	// sampled is when each agent's last agent_heartbeat event was recorded.
	sampled map[string]time.Time
	// heard is when each agent was really last heard from; last may instead hold the
	// start of a grace period, which is no heartbeat.
	heard map[string]time.Time
}

func newHeartbeats() *heartbeats {
	return &heartbeats{last: map[string]time.Time{}, sampled: map[string]time.Time{}, heard: map[string]time.Time{}}
}

// sample reports whether a heartbeat at now should become an agent_heartbeat event,
// at most one per agent per interval, and if so notes it.
func (h *heartbeats) sample(name string, now time.Time, interval time.Duration) bool {
	if interval <= 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.sampled[name]) < interval {
		return false
	}
	h.sampled[name] = now
	return true
}

func (h *heartbeats) touch(name string, at time.Time) {
	h.mu.Lock()
	h.last[name] = at
	h.mu.Unlock()
}

// heardFrom records a heartbeat (or a registration) from an agent.
func (h *heartbeats) heardFrom(name string, at time.Time) {
	h.mu.Lock()
	h.last[name], h.heard[name] = at, at
	h.mu.Unlock()
}

// lastHeard returns when the agent was really last heard from by this leader.
func (h *heartbeats) lastHeard(name string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heard[name]
}

func (h *heartbeats) get(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.last[name]
	return t, ok
}

func (h *heartbeats) forget(name string) {
	h.mu.Lock()
	delete(h.last, name)
	delete(h.sampled, name)
	delete(h.heard, name)
	h.mu.Unlock()
}

// reset forgets every agent, so that each gets a full grace period from the next check:
// a new leader does not know when the old one last heard from them.
func (h *heartbeats) reset() {
	h.mu.Lock()
	h.last, h.heard = map[string]time.Time{}, map[string]time.Time{}
	h.mu.Unlock()
}

// watchHeartbeats runs on the leader: it marks silent agents degraded, then offline.
// Recovery is applied by the heartbeat itself (see serversEndpoint.Heartbeat).
func (s *Server) watchHeartbeats(ctx context.Context) {
	s.heartbeats.reset()
	every := s.Thresholds().checkEvery()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkHeartbeats(ctx, time.Now())
			// The thresholds may have been reloaded (SIGHUP): follow their pace.
			if e := s.Thresholds().checkEvery(); e != every {
				every = e
				tick.Reset(every)
			}
		}
	}
}

// checkHeartbeats applies the status every agent should have by the time it was
// last heard from.
func (s *Server) checkHeartbeats(ctx context.Context, now time.Time) {
	agents, err := s.fsm.State().Agents()
	if err != nil {
		s.logger.Error("list agents", "error", err)
		return
	}
	th := s.Thresholds()
	for _, a := range agents {
		last, ok := s.heartbeats.get(a.Name)
		if !ok {
			s.heartbeats.touch(a.Name, now) // grace period starts now
			continue
		}
		var want fsm.AgentStatus
		switch silent := now.Sub(last); {
		case silent >= th.AgentOfflineAfter:
			want = fsm.AgentOffline
		case silent >= th.AgentDegradedAfter:
			want = fsm.AgentDegraded
		default:
			continue
		}
		if a.Status == want || (a.Status == fsm.AgentOffline && want == fsm.AgentDegraded) {
			continue
		}
		s.logs.heartbeat.Warn("agent missed its heartbeats", "agent", a.Name, "status", want, "last_heartbeat", last)
		if _, err := s.Apply(ctx, &fsm.SetAgentStatus{Name: a.Name, Status: want, LastSeen: last}); err != nil && ctx.Err() == nil {
			s.logger.Error("record agent status", "agent", a.Name, "status", want, "error", err)
		}
	}
}
