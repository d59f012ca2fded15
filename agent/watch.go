package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
)

// run watches a running node until it is stopped, fails, or the agent shuts down,
// restarting it after each unexpected exit. With recoverFirst the node is not running
// yet: it was found dead on adoption and is restarted at once.
func (s *supervisor) run(n *node, recoverFirst bool) {
	defer s.wg.Done()
	if recoverFirst {
		if !s.recover(n, n.lostPid, exitUnknown, false, "the node exited while the agent was not running", true) {
			return
		}
	}
	for {
		s.mu.Lock()
		p := n.proc
		s.mu.Unlock()
		select {
		case <-n.stopCh:
			s.finishStop(n, p, exitUnknown)
			return
		case <-s.ctx.Done():
			return
		case <-p.done:
		}
		// An exit racing a stop request is the stop's doing.
		select {
		case <-n.stopCh:
			s.finishStop(n, p, exitUnknown)
			return
		default:
		}
		msg, oom := "", s.oomKilled(n, p)
		if p.exit.Code > 0 || oom {
			msg = s.exitError(n, p, "unexpectedly").Error()
		}
		s.logger.Warn("node exited unexpectedly", "node_id", n.spec.ID, "pid", p.pid, "exit", p.exit.String(), "oom_killed", oom)
		if oom {
			s.metrics.nodeOOMKilled()
		}
		if !s.recover(n, p.pid, p.exit, oom, msg, false) {
			return
		}
	}
}

// recover handles an unexpected exit of n's process pid (oom: the kernel killed it
// for its memory): it reports the crash, then
// restarts the node within its restart policy, reporting each failed restart as
// another crash, until a restart passes its health check (true) or the policy gives
// up, the node is stopped, or the agent shuts down (false). immediate skips the first
// delay.
func (s *supervisor) recover(n *node, pid int, exit exitStatus, oom bool, msg string, immediate bool) bool {
	for {
		now := s.now()
		s.mu.Lock()
		n.proc, n.running = nil, false
		n.history = n.spec.Policy.Trim(now, n.history)
		delay, ok := n.spec.Policy.Next(now, n.history, s.jitter())
		restarts, recent := n.restarts, len(n.history)
		s.persistLocked()
		s.mu.Unlock()
		if immediate {
			delay, immediate = 0, false
		}
		s.send(&gridpb.NodeReport{NodeId: n.spec.ID, Event: gridpb.NodeEvent_NODE_EVENT_CRASHED, Pid: int32(pid),
			ExitCode: int32(exit.Code), Signal: exit.Signal, Restarts: int32(restarts), Restarting: ok, Error: msg, OomKilled: oom})
		if !ok {
			reason := fmt.Sprintf("gave up restarting node %s: %d restart(s) within %s already; last exit: %s", n.spec.ID, recent, n.spec.Policy.Interval, exit)
			s.logger.Error("node failed", "node_id", n.spec.ID, "restarts", restarts, "reason", reason)
			n.stopped = exit
			s.remove(n)
			s.send(&gridpb.NodeReport{NodeId: n.spec.ID, Event: gridpb.NodeEvent_NODE_EVENT_FAILED, Pid: int32(pid),
				ExitCode: int32(exit.Code), Signal: exit.Signal, Restarts: int32(restarts), Error: reason})
			return false
		}
		s.logger.Info("restarting node", "node_id", n.spec.ID, "delay", delay, "restarts", restarts)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-n.stopCh:
			t.Stop()
			s.finishStop(n, nil, exit)
			return false
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
		s.mu.Lock()
		n.restarts++
		n.history = append(n.history, s.now())
		restarts = n.restarts
		s.mu.Unlock()

		ctx, cancel := context.WithCancel(context.Background())
		stopWatch := make(chan struct{})
		go func() {
			select {
			case <-n.stopCh:
				cancel()
			case <-stopWatch:
			}
		}()
		p, err := s.launch(ctx, n)
		close(stopWatch)
		cancel()
		switch {
		case err == nil:
			s.logger.Info("node restarted", "node_id", n.spec.ID, "pid", p.pid, "restarts", restarts)
			s.metrics.nodeRestarted()
			s.send(&gridpb.NodeReport{NodeId: n.spec.ID, Event: gridpb.NodeEvent_NODE_EVENT_RESTARTED, Pid: int32(p.pid), Restarts: int32(restarts)})
			return true
		case errors.Is(err, errDetached):
			return false
		case errors.Is(err, errAborted):
			last := exitUnknown
			if p != nil {
				last = p.exit
			}
			s.finishStop(n, nil, last)
			return false
		}
		s.logger.Warn("node restart failed", "node_id", n.spec.ID, "error", err)
		pid, exit, oom, msg = 0, exitUnknown, false, err.Error()
		if p != nil {
			pid, exit, oom = p.pid, p.exit, s.oomKilled(n, p)
		}
	}
}

// finishStop completes a stop request: it stops p, if the node has a process, and
// forgets the node. last is how the node ended if it has no process.
func (s *supervisor) finishStop(n *node, p *proc, last exitStatus) {
	n.stopped = last
	if p != nil {
		n.stopped = s.kill(p, s.killTimeoutOf(n))
	}
	s.logger.Info("node stopped", "node_id", n.spec.ID, "exit", n.stopped.String())
	s.remove(n)
}

// remove forgets a node that is no longer run, with its cgroup, and wakes who waits
// for it.
func (s *supervisor) remove(n *node) {
	s.removeGroup(n)
	s.mu.Lock()
	if s.nodes[n.spec.ID] == n {
		delete(s.nodes, n.spec.ID)
	}
	n.proc, n.running = nil, false
	s.persistLocked()
	s.mu.Unlock()
	close(n.done)
}
