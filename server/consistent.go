package server

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// A leader answers a read from its own state, and that state is current only while
// it still leads: a leader cut off from the others by a partition, or paused (a
// SIGSTOP, a long GC), goes on believing it leads until its lease runs out, while
// the others may already have elected a new leader and committed writes it has not
// seen. So before it answers a read that is not ?stale, the leader confirms it
// still leads, as Raft's reads must (§6.4 of Ongaro's thesis): VerifyLeader has a
// quorum of the servers acknowledge it as leader of its current term. And a new
// leader waits until its FSM has applied every entry of earlier terms (the leader
// loop's first barrier), without which it could miss a write its predecessor
// acknowledged.
//
// One gap remains, in hashicorp/raft itself: VerifyLeader also counts a follower's
// answer to an append sent before the verification began. A follower grants no
// vote to another candidate for a heartbeat timeout after it last heard from this
// leader, so such an answer proves the leadership unless it waited longer than
// that to be read: a leader paused for longer than a heartbeat timeout with
// answers in its socket buffers could still count them once it resumes.

// verifyLeaderTimeout bounds a leader's confirmation that it still leads. Raft
// answers within about one round of heartbeats while the leader has a quorum, and
// with an error once its lease runs out without one; the bound only keeps a read
// from waiting on a Raft that is stuck or shutting down.
const verifyLeaderTimeout = 5 * time.Second

// confirmLeader returns nil if this server is the leader and its state holds every
// write committed before the call; otherwise an error wrapping ErrNoLeader.
func (s *Server) confirmLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, verifyLeaderTimeout)
	defer cancel()
	if err := s.waitLeaderReady(ctx); err != nil {
		return err
	}
	if err := waitFuture(ctx, s.ctx, s.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("%w: could not confirm this server still leads: %v", ErrNoLeader, err)
	}
	return nil
}

// waitLeaderReady waits while this server leads until its leader loop has seen the
// FSM apply every entry of earlier terms, which takes a moment after an election.
func (s *Server) waitLeaderReady(ctx context.Context) error {
	for !s.leaderReady.Load() {
		if !s.IsLeader() {
			return fmt.Errorf("%w: this server is no longer the leader", ErrNoLeader)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: this server has not yet applied its predecessor's log: %v", ErrNoLeader, ctx.Err())
		case <-s.ctx.Done():
			return raft.ErrRaftShutdown
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
