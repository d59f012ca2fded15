package server

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// monitorLeadership starts the leader loop when this server gains leadership and
// stops it when it loses it.
func (s *Server) monitorLeadership() {
	var (
		leading *leadership
	)
	defer func() { leading.stop() }()
	for {
		select {
		case <-s.ctx.Done():
			return
		case isLeader := <-s.leaderCh:
			if isLeader && leading == nil {
				leading = s.startLeading()
			} else if !isLeader {
				leading.stop()
				leading = nil
			}
		}
	}
}

// leadership is a running leader loop.
type leadership struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Server) startLeading() *leadership {
	ctx, cancel := context.WithCancel(s.ctx)
	l := &leadership{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		s.leaderLoop(ctx)
	}()
	return l
}

// stop ends the leader loop and waits for it; it does nothing on nil.
func (l *leadership) stop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}

// leaderLoop runs while this server leads: it waits until the FSM has applied every
// entry of earlier terms, then keeps the Raft configuration in step with gossip.
func (s *Server) leaderLoop(ctx context.Context) {
	log := s.logs.leader
	log.Info("gained leadership")
	defer log.Info("lost leadership")
	defer s.leaderReady.Store(false)
	for waitFuture(ctx, s.ctx, s.raft.Barrier(time.Minute)) != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	s.leaderReady.Store(true)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Before reconcileServers may add a server: what it records counts for autopilot.
	s.pilot.reset()
	nodes := newReconciler(ctx, s)
	s.nodeOrders.Store(nodes)
	defer s.nodeOrders.Store(nil)
	for _, loop := range []func(){func() { s.watchHeartbeats(ctx) }, func() { s.runShipper(ctx) }, nodes.run, func() { s.runAutopilot(ctx) }} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop()
		}()
	}
	changed := s.members.Subscribe(nil)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		s.reconcileServers(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// membershipTimeout bounds one change of the Raft configuration, and the barrier
// after it.
const membershipTimeout = 30 * time.Second

// reconcileServers adds every alive server that gossip knows and Raft does not, once
// it has proved, with TLS, that it holds a server certificate (verifyServerPeer). It
// joins as a non-voter: autopilot promotes it once it has been healthy for the
// stabilization time, and removes failed servers (autopilot.go). A server whose data
// dir was wiped comes back with a new ID at its old address: autopilot removes the
// stale entry first, if quorum allows.
func (s *Server) reconcileServers(ctx context.Context) {
	log := s.logs.leader
	cctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	f := s.raft.GetConfiguration()
	err := waitFuture(cctx, s.ctx, f)
	cancel()
	if err != nil {
		return
	}
	byID := map[raft.ServerID]raft.ServerAddress{}
	for _, srv := range f.Configuration().Servers {
		byID[srv.ID] = srv.Address
	}
	for _, m := range s.members.AliveServers() {
		id, addr := raft.ServerID(m.Tags.ID), raft.ServerAddress(m.HostPort(m.Tags.RaftPort))
		if cur, ok := byID[id]; ok && cur == addr {
			continue
		}
		if err := s.verifyServerPeer(ctx, m); err != nil {
			s.strangers.refuse(log, "refusing to add a gossip member with the server role to raft", m, err)
			continue
		}
		log.Info("adding server to raft as a non-voter", "server", m.Name, "id", id, "address", addr)
		if err := s.addServer(m); err != nil {
			log.Error("add server to raft", "server", m.Name, "error", err)
		}
	}
}

// removeVoter removes a server from the Raft configuration; see changeMembership.
func (s *Server) removeVoter(ctx context.Context, id raft.ServerID) error {
	return s.changeMembership(ctx, func() raft.IndexFuture { return s.raft.RemoveServer(id, 0, 0) })
}

// changeMembership makes one change of the Raft configuration and then commits a
// barrier. Raft refuses to snapshot until its FSM has applied an entry past the latest
// configuration entry, and a configuration entry is not one the FSM applies: in a grid
// with no writes, every snapshot, Raft's own and the operator's, would fail until the
// next write. The barrier is such an entry, on every server once it is committed.
func (s *Server) changeMembership(ctx context.Context, change func() raft.IndexFuture) error {
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	if err := waitFuture(ctx, s.ctx, change()); err != nil {
		return err
	}
	if err := waitFuture(ctx, s.ctx, s.raft.Barrier(membershipTimeout)); err != nil {
		// The change stands; a new leader's first barrier, or the next write, lets
		// snapshots through again.
		s.logs.leader.Warn("barrier after a raft configuration change", "error", err)
	}
	return nil
}
