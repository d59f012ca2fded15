package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/gossip"
)

// Autopilot (hashicorp/raft-autopilot) runs on the leader. It judges every server's
// health from the Raft stats each one reports (RaftState in rpc.go), promotes a new
// server from non-voter to voter once it has been healthy for the stabilization
// time, and removes dead servers from the Raft configuration without ever leaving
// fewer voters than a quorum needs (autopilot's own rules: at most (voters-1)/2 at
// once, never below MinQuorum).
//
// Grid adds one rule on top (promoter.FilterFailedServerRemovals): a failed server is
// removed only once a replacement has joined, or after DeadServerCleanupAfter.
// Removing it at once, as Consul does, would shrink the quorum on every crash; a
// server that is only restarting would come back as a non-voter and wait out the
// stabilization time.

// autopilotOpTimeout bounds autopilot's reads of the Raft configuration and its
// leadership transfers; its changes of the configuration take membershipTimeout.
const autopilotOpTimeout = 10 * time.Second

// setupAutopilot makes the server's autopilot; leaderLoop starts and stops it.
func (s *Server) setupAutopilot() {
	s.pilot = &pilot{s: s, failedSince: map[raft.ServerID]time.Time{}, joinedAt: map[raft.ServerID]time.Time{},
		removing: map[raft.ServerID]bool{}, reasons: map[raft.ServerID]string{}}
	ac := s.config.Autopilot
	s.autopilot = autopilot.New(&autopilotRaft{s: s}, s.pilot,
		autopilot.WithLogger(s.logs.leader),
		autopilot.WithUpdateInterval(ac.UpdateInterval),
		autopilot.WithReconcileInterval(ac.ReconcileInterval),
		autopilot.WithPromoter(&promoter{pilot: s.pilot}))
}

// runAutopilot runs autopilot while ctx (the leadership) lasts. It first writes the
// configuration from this server's flags unless the replicated state has one.
func (s *Server) runAutopilot(ctx context.Context) {
	seed := fsmAutopilotConfig(s.config.Autopilot)
	actx, cancel := context.WithTimeout(ctx, s.config.ApplyTimeout)
	if _, err := s.Apply(actx, &fsm.AutopilotSetConfig{Config: seed, IfAbsent: true}); err != nil {
		// Not fatal: until a configuration is stored autopilot uses the flags.
		s.logs.leader.Warn("store the initial autopilot configuration", "error", err)
	}
	cancel()
	s.autopilot.Start(ctx)
	<-ctx.Done()
	<-s.autopilot.Stop()
}

// fsmAutopilotConfig is the replicated form of the flags' autopilot settings.
func fsmAutopilotConfig(c AutopilotConfig) fsm.AutopilotConfig {
	return fsm.AutopilotConfig{
		CleanupDeadServers:      c.CleanupDeadServers,
		LastContactThreshold:    c.LastContactThreshold,
		MaxTrailingLogs:         c.MaxTrailingLogs,
		MinQuorum:               c.MinQuorum,
		ServerStabilizationTime: c.ServerStabilizationTime,
		DeadServerCleanupAfter:  c.DeadServerCleanupAfter,
	}
}

// AutopilotConfig returns the autopilot configuration in force: the replicated one,
// or this server's flags while none is stored.
func (s *Server) AutopilotConfig() (fsm.AutopilotConfig, error) {
	c, err := s.State().AutopilotConfig()
	if err != nil {
		return fsm.AutopilotConfig{}, err
	}
	if c == nil {
		return fsmAutopilotConfig(s.config.Autopilot), nil
	}
	return *c, nil
}

// addServer adds a server that proved it is one (verifyServerPeer) to Raft as a
// non-voter, for autopilot to promote once it is stable. A stale entry at the same
// address (a server whose data dir was wiped) is removed first, if quorum allows.
func (s *Server) addServer(m gossip.Member) error {
	id := raft.ServerID(m.Tags.ID)
	err := s.autopilot.AddServer(&autopilot.Server{
		ID:          id,
		Name:        m.Name,
		Address:     raft.ServerAddress(m.HostPort(m.Tags.RaftPort)),
		NodeStatus:  autopilot.NodeAlive,
		Version:     m.Tags.Version,
		RaftVersion: raft.ProtocolVersionMax,
	})
	if err == nil {
		s.pilot.joined(id)
	}
	return err
}

// pilot is Grid's side of autopilot (autopilot.ApplicationIntegration): what the
// servers are, how to reach them, and how to remove a dead one.
type pilot struct {
	s *Server

	mu sync.Mutex
	// failedSince is when this leader first saw each server not alive in gossip.
	failedSince map[raft.ServerID]time.Time
	// joinedAt is when this leader added each server to Raft: a server that joined
	// after another failed is its replacement.
	joinedAt map[raft.ServerID]time.Time
	// removing holds the servers whose removal is under way.
	removing map[raft.ServerID]bool
	// reasons says why each server that may be removed may be, for the log.
	reasons map[raft.ServerID]string
	// healthy is the grid's health at the last state, to log its changes.
	healthy *bool
}

// reset forgets what an earlier leadership saw: failures count from now.
func (p *pilot) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.failedSince)
	clear(p.joinedAt)
	p.healthy = nil
}

func (p *pilot) joined(id raft.ServerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.joinedAt[id]; !ok {
		p.joinedAt[id] = time.Now()
	}
}

func (p *pilot) setReason(id raft.ServerID, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reasons[id] = why
}

// AutopilotConfig implements autopilot.ApplicationIntegration.
func (p *pilot) AutopilotConfig() *autopilot.Config {
	c, err := p.s.AutopilotConfig()
	if err != nil {
		p.s.logs.leader.Error("read the autopilot configuration", "error", err)
		return nil
	}
	return &autopilot.Config{
		CleanupDeadServers:      c.CleanupDeadServers,
		LastContactThreshold:    c.LastContactThreshold,
		MaxTrailingLogs:         c.MaxTrailingLogs,
		MinQuorum:               c.MinQuorum,
		ServerStabilizationTime: c.ServerStabilizationTime,
		Ext:                     c.DeadServerCleanupAfter,
	}
}

// NotifyState implements autopilot.ApplicationIntegration: it logs when the grid
// turns healthy or unhealthy.
func (p *pilot) NotifyState(st *autopilot.State) {
	p.mu.Lock()
	changed := p.healthy == nil || *p.healthy != st.Healthy
	h := st.Healthy
	p.healthy = &h
	p.mu.Unlock()
	if !changed {
		return
	}
	var unhealthy []string
	for id, srv := range st.Servers {
		if !srv.Health.Healthy {
			unhealthy = append(unhealthy, fmt.Sprintf("%s (%s)", srv.Server.Name, id))
		}
	}
	if st.Healthy {
		p.s.logs.leader.Info("autopilot: every server is healthy", "failure_tolerance", st.FailureTolerance)
	} else {
		p.s.logs.leader.Warn("autopilot: servers are unhealthy", "unhealthy", unhealthy, "failure_tolerance", st.FailureTolerance)
	}
}

// KnownServers implements autopilot.ApplicationIntegration: every server gossip
// knows, failed and left ones included, and every server of the Raft configuration
// that gossip does not know, as unknown. Reporting the latter, rather than leaving
// them out, keeps them under the same removal rules as failed ones: autopilot would
// remove a server it is not told of at once, and a new leader whose gossip has not
// heard of every server yet would then remove healthy ones.
func (p *pilot) KnownServers() map[raft.ServerID]*autopilot.Server {
	_, leaderID := p.s.raft.LeaderWithID()
	out := map[raft.ServerID]*autopilot.Server{}
	for _, m := range p.s.members.List() {
		if m.Tags.Role != RoleServer || m.Tags.ID == "" {
			continue
		}
		id := raft.ServerID(m.Tags.ID)
		if old, ok := out[id]; ok && old.NodeStatus == autopilot.NodeAlive {
			continue // two names claim the ID: the alive one speaks for it
		}
		out[id] = &autopilot.Server{
			ID:          id,
			Name:        m.Name,
			Address:     raft.ServerAddress(m.HostPort(m.Tags.RaftPort)),
			NodeStatus:  nodeStatus(m.Status),
			Version:     m.Tags.Version,
			RaftVersion: raft.ProtocolVersionMax,
			IsLeader:    id == leaderID,
			// Every server may vote: autopilot counts potential voters by this
			// when it weighs a removal against quorum.
			NodeType: autopilot.NodeVoter,
		}
	}
	ctx, cancel := context.WithTimeout(p.s.ctx, autopilotOpTimeout)
	defer cancel()
	f := p.s.raft.GetConfiguration()
	if err := waitFuture(ctx, p.s.ctx, f); err == nil {
		for _, srv := range f.Configuration().Servers {
			if _, ok := out[srv.ID]; !ok {
				out[srv.ID] = &autopilot.Server{ID: srv.ID, Address: srv.Address, NodeStatus: autopilot.NodeUnknown,
					RaftVersion: raft.ProtocolVersionMax, IsLeader: srv.ID == leaderID, NodeType: autopilot.NodeVoter}
			}
		}
	}
	p.trackFailures(out)
	return out
}

func nodeStatus(gossipStatus string) autopilot.NodeStatus {
	switch gossipStatus {
	case StatusAlive:
		return autopilot.NodeAlive
	case StatusFailed:
		return autopilot.NodeFailed
	case StatusLeft:
		return autopilot.NodeLeft
	}
	return autopilot.NodeUnknown
}

// trackFailures records when each server was first seen not alive, and forgets
// servers that are alive again.
func (p *pilot) trackFailures(known map[raft.ServerID]*autopilot.Server) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, srv := range known {
		if srv.NodeStatus == autopilot.NodeAlive {
			delete(p.failedSince, id)
		} else if _, ok := p.failedSince[id]; !ok {
			p.failedSince[id] = now
		}
	}
}

// mayRemove reports whether a failed server is due for removal, and why: a server
// that joined after it failed and is alive in st replaces it (unless gossip does not
// know the failed one at all: this may be a new leader that has not heard of it
// yet), or it has been failed for cleanupAfter (0: never by time).
func (p *pilot) mayRemove(srv *autopilot.Server, st *autopilot.State, cleanupAfter time.Duration) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	since, ok := p.failedSince[srv.ID]
	if !ok {
		return false, ""
	}
	if srv.NodeStatus != autopilot.NodeUnknown && st != nil {
		for id, at := range p.joinedAt {
			other, ok := st.Servers[id]
			if id != srv.ID && at.After(since) && ok && other.Server.NodeStatus == autopilot.NodeAlive {
				return true, "replaced by " + string(id)
			}
		}
	}
	if cleanupAfter > 0 && time.Since(since) >= cleanupAfter {
		return true, fmt.Sprintf("failed for over %s", cleanupAfter)
	}
	return false, ""
}

// FetchServerStats implements autopilot.ApplicationIntegration: it asks every server
// for its Raft stats, at once. A server that does not answer before ctx ends is left
// out, and autopilot counts it unhealthy.
func (p *pilot) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[raft.ServerID]*autopilot.ServerStats{}
	)
	for id, srv := range servers {
		if srv.NodeStatus != autopilot.NodeAlive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := p.s.serverStats(ctx, id)
			if err != nil {
				p.s.logs.leader.Debug("autopilot: fetch raft stats", "server", srv.Name, "id", id, "error", err)
				return
			}
			mu.Lock()
			out[id] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// serverStats returns the Raft stats of the server with id: its own without a call.
func (s *Server) serverStats(ctx context.Context, id raft.ServerID) (*autopilot.ServerStats, error) {
	if string(id) == s.id {
		contact, term, index := s.raftStats()
		return &autopilot.ServerStats{LastContact: contact, LastTerm: term, LastIndex: index}, nil
	}
	m, ok := s.members.ServerByID(string(id))
	if !ok {
		return nil, fmt.Errorf("gossip does not know server %s", id)
	}
	st, err := s.peerRaftStateCtx(ctx, m)
	if err != nil {
		return nil, err
	}
	return &autopilot.ServerStats{LastContact: time.Duration(st.GetLastContactNs()), LastTerm: st.GetLastTerm(), LastIndex: st.GetLastIndex()}, nil
}

// raftStats is what this server tells autopilot of itself: how long since it last
// heard from the leader (0 on the leader, -1 if never), and the term and index of
// its last log entry.
func (s *Server) raftStats() (contact time.Duration, term, index uint64) {
	if s.raft.State() != raft.Leader {
		contact = -1
		if last := s.raft.LastContact(); !last.IsZero() {
			contact = time.Since(last)
		}
	}
	st := s.raft.Stats()
	_, _ = fmt.Sscan(st["last_log_term"], &term)
	_, _ = fmt.Sscan(st["last_log_index"], &index)
	return contact, term, index
}

// RemoveFailedServer implements autopilot.ApplicationIntegration. Autopilot has
// checked that quorum allows the removal; it must not block, so the removal runs on.
func (p *pilot) RemoveFailedServer(srv *autopilot.Server) {
	p.mu.Lock()
	if p.removing[srv.ID] {
		p.mu.Unlock()
		return
	}
	p.removing[srv.ID] = true
	why := p.reasons[srv.ID]
	p.mu.Unlock()
	p.s.goRun(func() {
		defer func() {
			p.mu.Lock()
			delete(p.removing, srv.ID)
			delete(p.failedSince, srv.ID)
			delete(p.reasons, srv.ID)
			p.mu.Unlock()
		}()
		log := p.s.logs.leader
		log.Info("autopilot: removing dead server from raft", "server", srv.Name, "id", srv.ID, "address", srv.Address, "status", srv.NodeStatus, "reason", why)
		if err := p.s.removeVoter(p.s.ctx, srv.ID); err != nil {
			log.Error("autopilot: remove dead server", "server", srv.Name, "id", srv.ID, "error", err)
		}
	})
}

// promoter is autopilot's StablePromoter with Grid's rule on dead servers.
type promoter struct {
	autopilot.StablePromoter
	pilot *pilot
}

// FilterFailedServerRemovals keeps the failed servers that are due for removal
// (pilot.mayRemove). Stale servers, in Raft but unknown to Grid, cannot occur:
// KnownServers reports every one.
func (p *promoter) FilterFailedServerRemovals(c *autopilot.Config, st *autopilot.State, failed *autopilot.FailedServers) *autopilot.FailedServers {
	cleanupAfter, _ := c.Ext.(time.Duration)
	keep := func(in []*autopilot.Server) []*autopilot.Server {
		var out []*autopilot.Server
		for _, srv := range in {
			if ok, why := p.pilot.mayRemove(srv, st, cleanupAfter); ok {
				p.pilot.setReason(srv.ID, why)
				out = append(out, srv)
			}
		}
		return out
	}
	return &autopilot.FailedServers{
		StaleNonVoters:  failed.StaleNonVoters,
		StaleVoters:     failed.StaleVoters,
		FailedNonVoters: keep(failed.FailedNonVoters),
		FailedVoters:    keep(failed.FailedVoters),
	}
}

// autopilotRaft is the Raft that autopilot drives, with every wait bounded, and a
// barrier after each change of the configuration (see changeMembership).
type autopilotRaft struct {
	s *Server
}

var _ autopilot.Raft = (*autopilotRaft)(nil)

// doneFuture is a future that is already resolved.
type doneFuture struct {
	err   error
	index uint64
	conf  raft.Configuration
}

func (f doneFuture) Error() error                      { return f.err }
func (f doneFuture) Index() uint64                     { return f.index }
func (f doneFuture) Configuration() raft.Configuration { return f.conf }

// change makes one change of the configuration and waits for it (changeMembership
// bounds the wait): autopilot waits on the future at once anyway.
func (r *autopilotRaft) change(f func() raft.IndexFuture) raft.IndexFuture {
	var fut raft.IndexFuture
	err := r.s.changeMembership(r.s.ctx, func() raft.IndexFuture {
		fut = f()
		return fut
	})
	if err != nil {
		return doneFuture{err: err}
	}
	return doneFuture{index: fut.Index()}
}

func (r *autopilotRaft) AddNonvoter(id raft.ServerID, addr raft.ServerAddress, prev uint64, _ time.Duration) raft.IndexFuture {
	return r.change(func() raft.IndexFuture { return r.s.raft.AddNonvoter(id, addr, prev, 0) })
}

func (r *autopilotRaft) AddVoter(id raft.ServerID, addr raft.ServerAddress, prev uint64, _ time.Duration) raft.IndexFuture {
	return r.change(func() raft.IndexFuture { return r.s.raft.AddVoter(id, addr, prev, 0) })
}

func (r *autopilotRaft) DemoteVoter(id raft.ServerID, prev uint64, _ time.Duration) raft.IndexFuture {
	return r.change(func() raft.IndexFuture { return r.s.raft.DemoteVoter(id, prev, 0) })
}

func (r *autopilotRaft) RemoveServer(id raft.ServerID, prev uint64, _ time.Duration) raft.IndexFuture {
	return r.change(func() raft.IndexFuture { return r.s.raft.RemoveServer(id, prev, 0) })
}

func (r *autopilotRaft) GetConfiguration() raft.ConfigurationFuture {
	ctx, cancel := context.WithTimeout(r.s.ctx, autopilotOpTimeout)
	defer cancel()
	f := r.s.raft.GetConfiguration()
	if err := waitFuture(ctx, r.s.ctx, f); err != nil {
		return doneFuture{err: err}
	}
	return doneFuture{index: f.Index(), conf: f.Configuration()}
}

func (r *autopilotRaft) LeadershipTransferToServer(id raft.ServerID, addr raft.ServerAddress) raft.Future {
	ctx, cancel := context.WithTimeout(r.s.ctx, autopilotOpTimeout)
	defer cancel()
	return doneFuture{err: waitFuture(ctx, r.s.ctx, r.s.raft.LeadershipTransferToServer(id, addr))}
}

func (r *autopilotRaft) LastIndex() uint64          { return r.s.raft.LastIndex() }
func (r *autopilotRaft) Leader() raft.ServerAddress { return r.s.raft.Leader() }
func (r *autopilotRaft) Stats() map[string]string   { return r.s.raft.Stats() }
func (r *autopilotRaft) State() raft.RaftState      { return r.s.raft.State() }
