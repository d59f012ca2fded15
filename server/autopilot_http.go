package server

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
)

// The autopilot endpoints: its configuration, from the replicated state, and the
// servers' health, which only the leader's autopilot knows.

func (s *Server) handleAutopilotGetConfig(w http.ResponseWriter, r *http.Request) {
	c, err := s.AutopilotConfig()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, apiAutopilotConfig(c))
}

func (s *Server) handleAutopilotSetConfig(w http.ResponseWriter, r *http.Request) {
	var in api.AutopilotConfiguration
	if !decodeBody(w, r, "autopilot configuration", &in) {
		return
	}
	cmd := &fsm.AutopilotSetConfig{Config: fsm.AutopilotConfig{
		CleanupDeadServers:      in.CleanupDeadServers,
		DeadServerCleanupAfter:  time.Duration(in.DeadServerCleanupAfter),
		LastContactThreshold:    time.Duration(in.LastContactThreshold),
		MaxTrailingLogs:         in.MaxTrailingLogs,
		MinQuorum:               in.MinQuorum,
		ServerStabilizationTime: time.Duration(in.ServerStabilizationTime),
	}}
	if v := r.URL.Query().Get("cas"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("cas must be a Raft index, got %q", v))
			return
		}
		cmd.CAS, cmd.Index = true, idx
	}
	if _, err := s.Apply(r.Context(), cmd); err != nil {
		code := statusOf(err)
		if cmd.CAS && errors.Is(err, fsm.ErrRejected) {
			code = http.StatusConflict
		}
		writeError(w, code, fmt.Errorf("set the autopilot configuration: %w", err))
		return
	}
	// This is the leader (the route is), whose state holds the write once Apply
	// returns.
	c, err := s.AutopilotConfig()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	s.logs.leader.Info("autopilot configuration changed", "modify_index", c.ModifyIndex)
	writeJSON(w, http.StatusOK, apiAutopilotConfig(c))
}

func apiAutopilotConfig(c fsm.AutopilotConfig) api.AutopilotConfiguration {
	return api.AutopilotConfiguration{
		CleanupDeadServers:      c.CleanupDeadServers,
		DeadServerCleanupAfter:  api.Duration(c.DeadServerCleanupAfter),
		LastContactThreshold:    api.Duration(c.LastContactThreshold),
		MaxTrailingLogs:         c.MaxTrailingLogs,
		MinQuorum:               c.MinQuorum,
		ServerStabilizationTime: api.Duration(c.ServerStabilizationTime),
		CreateIndex:             c.CreateIndex,
		ModifyIndex:             c.ModifyIndex,
	}
}

func (s *Server) handleAutopilotHealth(w http.ResponseWriter, r *http.Request) {
	st := s.autopilot.GetState()
	if st == nil || len(st.Servers) == 0 {
		// Autopilot gathers its first state as the leader loop starts it.
		writeUnavailable(w, errors.New("autopilot has not judged the servers yet; try again in a moment"))
		return
	}
	writeJSON(w, http.StatusOK, apiAutopilotHealth(st))
}

func apiAutopilotHealth(st *autopilot.State) api.AutopilotHealth {
	out := api.AutopilotHealth{
		Healthy:          st.Healthy,
		FailureTolerance: st.FailureTolerance,
		Leader:           string(st.Leader),
		Voters:           []string{},
		Servers:          []api.AutopilotServer{},
	}
	for _, id := range st.Voters {
		out.Voters = append(out.Voters, string(id))
	}
	for _, srv := range st.Servers {
		out.Servers = append(out.Servers, api.AutopilotServer{
			ID:          string(srv.Server.ID),
			Name:        srv.Server.Name,
			Address:     string(srv.Server.Address),
			SerfStatus:  string(srv.Server.NodeStatus),
			Version:     srv.Server.Version,
			Leader:      srv.State == autopilot.RaftLeader,
			Voter:       srv.HasVotingRights(),
			RaftState:   string(srv.State),
			LastContact: api.Duration(srv.Stats.LastContact),
			LastTerm:    srv.Stats.LastTerm,
			LastIndex:   srv.Stats.LastIndex,
			Healthy:     srv.Health.Healthy,
			StableSince: srv.Health.StableSince.UTC(),
		})
	}
	sort.Slice(out.Servers, func(i, j int) bool {
		a, b := out.Servers[i], out.Servers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return out
}
