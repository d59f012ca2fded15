package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
)

// storeProbeTimeout bounds the health check of the event store that GET /v1/status
// makes.
const storeProbeTimeout = 2 * time.Second

// handleStatus answers GET /v1/status: the cluster at a glance. It runs on the leader
// (see leaderOnly), which alone knows how the shipper fares.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	out, err := s.status(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// status gathers the summary from one consistent view of the replicated state, the
// Raft configuration and the shipper, and probes the event store.
func (s *Server) status(ctx context.Context) (*api.Status, error) {
	out := &api.Status{}

	addr, id := s.raft.LeaderWithID()
	out.Leader = api.StatusLeader{ID: string(id), Address: string(addr)}
	if m, ok := s.members.ServerByID(string(id)); ok {
		out.Leader.Name = m.Name
	} else if string(id) == s.id {
		out.Leader.Name = s.config.NodeName
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	out.Servers = len(f.Configuration().Servers)

	state := s.fsm.State()
	agents, err := state.Agents()
	if err != nil {
		return nil, err
	}
	agentStatus := map[string]fsm.AgentStatus{}
	for _, a := range agents {
		agentStatus[a.Name] = a.Status
		out.Agents.Total++
		switch a.Status {
		case fsm.AgentHealthy:
			out.Agents.Healthy++
		case fsm.AgentDegraded:
			out.Agents.Degraded++
		case fsm.AgentOffline:
			out.Agents.Offline++
		}
	}
	nodes, err := state.Nodes("")
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		out.Nodes.Total++
		// As apiNode shows it: an active node whose agent is offline or gone is lost.
		if as, ok := agentStatus[n.Agent]; n.Status.Active() && (!ok || as == fsm.AgentOffline) {
			out.Nodes.Lost++
			continue
		}
		switch n.Status {
		case fsm.NodeStatusPending:
			out.Nodes.Pending++
		case fsm.NodeStatusRunning:
			out.Nodes.Running++
		case fsm.NodeStatusRestarting:
			out.Nodes.Restarting++
		case fsm.NodeStatusStopping:
			out.Nodes.Stopping++
		case fsm.NodeStatusStopped:
			out.Nodes.Stopped++
		case fsm.NodeStatusFailed:
			out.Nodes.Failed++
		}
	}

	meta, err := state.EventMeta()
	if err != nil {
		return nil, fmt.Errorf("read event counters: %w", err)
	}
	// The FSM keeps the health its last cluster event announced. With no agent left
	// there is no health to announce (no event says so), and the last one would be
	// stale: the summary says none.
	if out.Agents.Total > 0 {
		out.ClusterHealth = meta.ClusterHealth
	}
	ev := &out.Events
	ev.LastSeq, ev.ShippedSeq = meta.LastSeq, meta.ShippedSeq
	if meta.LastSeq > meta.ShippedSeq {
		ev.Waiting = meta.LastSeq - meta.ShippedSeq
	}
	ev.OutboxLimit = s.config.EventOutboxLimit
	ev.OverLimit = ev.Waiting > ev.OutboxLimit
	s.storesStatus(ctx, meta, ev)
	return out, nil
}

// storesStatus fills in each event store's state, from its replicated cursor, what
// the shipper last saw of it, and a probe of its health made now.
func (s *Server) storesStatus(ctx context.Context, meta fsm.EventMeta, ev *api.StatusEvents) {
	ev.Stores = make([]api.EventStoreStatus, len(meta.Stores))
	var wg sync.WaitGroup
	for i, c := range meta.Stores {
		out := &ev.Stores[i]
		*out = api.EventStoreStatus{Name: c.Key(), Node: c.Node, AckedSeq: c.Acked, Lag: meta.LastSeq - min(c.Acked, meta.LastSeq),
			HoldsOutbox: c.Complete(meta.ShippedSeq) && !c.Released, Released: c.Released,
			Fault: c.Fault, FaultAt: c.FaultAt, LostFrom: c.LostFrom, LostTo: c.LostTo}
		out.Address, _ = s.storeAddr(c)
		st, _ := s.stores.get(c.Key())
		out.LastError, out.DownSince, out.LastShipped, out.BackfillFrom = st.LastError, st.DownSince, st.LastShipped, st.Backfilling
		wg.Add(1)
		go func() {
			defer wg.Done()
			reachable := out.Address != "" && s.probeEventStore(ctx, out.Address) == nil
			switch {
			case c.Faulty:
				out.State = api.StoreFaulty
			case !reachable || !st.DownSince.IsZero():
				out.State = api.StoreDown
			case !c.Complete(meta.ShippedSeq):
				out.State = api.StoreCatchingUp
			default:
				out.State = api.StoreInSync
			}
		}()
	}
	wg.Wait()
	var addrs []string
	for _, st := range ev.Stores {
		addrs = append(addrs, st.Address)
		ev.StoreReachable = ev.StoreReachable || st.State != api.StoreDown
		if ev.LastError == "" && st.LastError != "" {
			ev.LastError = st.Name + ": " + st.LastError
		}
		if st.LastShipped.After(ev.LastShipped) {
			ev.LastShipped = st.LastShipped
		}
	}
	ev.EventStore = strings.Join(addrs, ",")
}

// probeEventStore asks the event store's gRPC health service whether it serves.
func (s *Server) probeEventStore(ctx context.Context, addr string) error {
	conn, err := s.storeConns.Get(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storeProbeTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("event store is %s", resp.GetStatus())
	}
	return nil
}
