package server

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/gossip"
	gridpb "github.com/sutragrid/grid/proto"
)

// bootstrapLoop waits until gossip shows BootstrapExpect servers and then bootstraps
// Raft with all of them. Every one of them does the same with the same configuration,
// which Raft accepts, so there is no race to win. A server that had Raft state at start,
// or that was told to expect no one, never bootstraps.
func (s *Server) bootstrapLoop() {
	if s.config.BootstrapExpect == 0 || s.hadState {
		return
	}
	changed := s.members.Subscribe(nil)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	warned := map[string]bool{}
	for {
		if s.tryBootstrap(warned) {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// tryBootstrap makes one attempt and reports whether the loop is done.
func (s *Server) tryBootstrap(warned map[string]bool) bool {
	log := s.logs.bootstrap
	if cfg := s.raft.GetConfiguration(); cfg.Error() == nil && len(cfg.Configuration().Servers) > 0 {
		return true // a leader added us, or we bootstrapped already
	}
	expect := s.config.BootstrapExpect
	var peers []gossip.Member
	for _, m := range s.members.AliveServers() {
		if m.Tags.BootstrapExpect == 0 {
			continue // a server that only joins is added by the leader later
		}
		if m.Tags.BootstrapExpect != expect {
			if !warned[m.Name] {
				log.Error("refusing to bootstrap: a server expects a different cluster size",
					"peer", m.Name, "peer_bootstrap_expect", m.Tags.BootstrapExpect, "bootstrap_expect", expect)
				warned[m.Name] = true
			}
			return false
		}
		if m.Tags.ID != s.id {
			if err := s.verifyServerPeer(s.ctx, m); err != nil {
				s.strangers.refuse(log, "not counting a gossip member with the server role towards the bootstrap", m, err)
				continue
			}
		}
		peers = append(peers, m)
	}
	if len(peers) < expect {
		return false
	}
	for _, m := range peers {
		if m.Tags.ID == s.id {
			continue
		}
		st, err := s.peerRaftState(m)
		if err != nil {
			log.Warn("cannot ask a peer for its raft state; will retry", "peer", m.Name, "error", err)
			return false
		}
		if len(st.GetPeers()) > 0 {
			log.Info("a peer already belongs to a cluster; not bootstrapping, waiting for its leader to add this server", "peer", m.Name)
			return true
		}
	}
	conf := raft.Configuration{}
	for _, m := range peers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(m.Tags.ID),
			Address:  raft.ServerAddress(m.HostPort(m.Tags.RaftPort)),
		})
	}
	sort.Slice(conf.Servers, func(i, j int) bool { return conf.Servers[i].ID < conf.Servers[j].ID })
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		log.Error("bootstrap failed; will retry", "error", err)
		return false
	}
	names := make([]string, 0, len(peers))
	for _, m := range peers {
		names = append(names, m.Name)
	}
	log.Info("bootstrapped raft cluster", "servers", names)
	return true
}

// peerRaftState asks another server over gRPC whether it belongs to a cluster.
func (s *Server) peerRaftState(m gossip.Member) (*gridpb.RaftStateResponse, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	return s.peerRaftStateCtx(ctx, m)
}

// peerRaftStateCtx asks another server for its Raft state, within ctx.
func (s *Server) peerRaftStateCtx(ctx context.Context, m gossip.Member) (*gridpb.RaftStateResponse, error) {
	conn, err := s.conns.Get(m.HostPort(m.Tags.RPCPort))
	if err != nil {
		return nil, err
	}
	return gridpb.NewInternalClient(conn).RaftState(ctx, &gridpb.RaftStateRequest{})
}
