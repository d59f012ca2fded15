package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/ui"
)

// How a route is served:
//   - local: by the server asked, about itself (its view of Raft and gossip).
//   - read: by the leader, once it has confirmed that it still leads, so that the
//     read sees every write completed before it (consistent.go); unless the request
//     says ?stale: then by the server asked, from its own state, which may lag.
//     Either way the answer says how fresh it is (X-Grid-Known-Leader,
//     X-Grid-Last-Contact), as Consul's reads do.
//   - leader: by the leader: writes, and what only the leader knows.
//
// A follower forwards what the leader must answer over the internal gRPC service
// (forward.go).
type routeMode int

const (
	local routeMode = iota
	read
	leader
)

// startHTTP serves the HTTP API on the HTTP listener.
func (s *Server) startHTTP() {
	mux := http.NewServeMux()
	handle := func(pattern string, mode routeMode, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		mux.HandleFunc(pattern, s.metrics.http.Wrap(pattern, auth.HTTP(s.config.Authorizer, pattern, refuse, s.route(mode, h))))
	}
	handle("GET /v1/status", leader, s.handleStatus)
	handle("GET /v1/status/leader", local, s.handleLeader)
	handle("GET /v1/status/peers", local, s.handlePeers)
	handle("GET /v1/operator/raft/configuration", local, s.handleRaftConfiguration)
	handle("DELETE /v1/operator/raft/peer", leader, s.handleRemovePeer)
	// Autopilot: its configuration is replicated; only the leader's autopilot knows
	// the servers' health (autopilot_http.go).
	handle("GET /v1/operator/autopilot/configuration", read, s.handleAutopilotGetConfig)
	handle("PUT /v1/operator/autopilot/configuration", leader, s.handleAutopilotSetConfig)
	handle("GET /v1/operator/autopilot/health", leader, s.handleAutopilotHealth)
	handle("GET /v1/members", local, s.handleMembers)
	// Metrics: this server's own, whichever server is asked (metrics.go).
	handle("GET /v1/metrics", local, s.metrics.reg.Handler(s.logs.http))
	handle("GET /v1/operator/snapshot", leader, s.handleSnapshotSave)
	handle("PUT /v1/operator/snapshot", leader, s.handleSnapshotRestore)
	// The gossip keyring: serf's key queries reach every member from any server.
	handle("GET /v1/operator/keyring", local, s.handleKeyringList)
	handle("POST /v1/operator/keyring", local, s.handleKeyringInstall)
	handle("PUT /v1/operator/keyring", local, s.handleKeyringUse)
	handle("DELETE /v1/operator/keyring", local, s.handleKeyringRemove)
	// Agents: the leader alone knows when each last heartbeat came.
	handle("GET /v1/agents", read, s.handleAgents)
	handle("GET /v1/agent/{name}", read, s.handleAgent)
	handle("GET /v1/nodes", read, s.handleNodes)
	handle("GET /v1/node/{id}", read, s.handleNode)
	handle("GET /v1/node/{id}/logs", read, s.handleNodeLogs)
	handle("POST /v1/nodes", leader, s.handleSpawnNode)
	handle("DELETE /v1/node/{id}", leader, s.handleStopNode)
	handle("GET /v1/operator/events/derived", local, s.handleDerivedEvents)
	// Events: from the outbox and the event store. A stream stays on the server
	// asked: every server derives the same events.
	handle("GET /v1/events", read, s.handleEvents)
	handle("GET /v1/events/aggregate", read, s.handleEventCounts)
	handle("GET /v1/events/types", local, s.handleEventTypes)
	handle("GET /v1/event/stream", local, s.handleEventStream)
	handle("GET /v1/event/{seq}", read, s.handleEvent)
	// Questions: answered from the same API, on the leader like the reads they run.
	handle("POST /v1/ask", read, s.handleAsk)
	s.aclRoutes(handle) // acl_http.go
	// The control UI: static files that call the API above like any client, served by
	// this server alone, so that they load while there is no leader (their requests
	// then fail, and the UI says so). Only "/" itself leads there.
	handle("GET "+ui.Prefix, local, ui.Handler().ServeHTTP)
	handle("GET /{$}", local, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ui.Prefix, http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.http = &http.Server{
		Handler:           s.tlsGuard(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          s.logs.http.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	ln := s.httpLn
	s.goRun(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("HTTP server stopped", "error", err)
		}
	})
}

// route serves h as mode says: here, or on the leader.
func (s *Server) route(mode routeMode, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			s.setFreshness(w)
		}
		_, stale := r.URL.Query()["stale"]
		r = r.WithContext(withCallerToken(r.Context(), r.Header.Get(auth.TokenHeader)))
		forwarded := r.Header.Get(forwardedHeader) != ""
		switch {
		case mode == local, mode == read && stale:
			h(w, r)
		case mode == read && s.IsLeader():
			s.readAsLeader(w, r, h, forwarded)
		case s.IsLeader():
			h(w, r)
		case forwarded:
			// Forwarded to a server that is no longer the leader: the sender tries
			// again once the election is over.
			writeUnavailable(w, fmt.Errorf("%w: this server is no longer the leader", ErrNoLeader))
		default:
			s.forwardHTTP(w, r)
		}
	}
}

// readAsLeader serves a read on the leader once it has confirmed that it still
// leads (consistent.go). If it cannot, it answers as a server that is not the
// leader does: it forwards the read to the leader, or answers 503 when the read
// was forwarded to it or when Raft still calls it leader, since forwarding would
// bring the read back here.
func (s *Server) readAsLeader(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, forwarded bool) {
	err := s.confirmLeader(r.Context())
	switch {
	case err == nil:
		h(w, r)
	case forwarded, s.IsLeader():
		writeUnavailable(w, err)
	default:
		s.forwardHTTP(w, r)
	}
}

// setFreshness says how fresh this server's state is: whether it knows a leader,
// and how long ago it last heard from it (0 on the leader).
func (s *Server) setFreshness(w http.ResponseWriter) {
	addr, _ := s.raft.LeaderWithID()
	var contact time.Duration
	if !s.IsLeader() {
		if last := s.raft.LastContact(); !last.IsZero() {
			contact = time.Since(last)
		}
	}
	w.Header().Set("X-Grid-Known-Leader", strconv.FormatBool(addr != ""))
	w.Header().Set("X-Grid-Last-Contact", strconv.FormatInt(contact.Milliseconds(), 10))
}

const (
	// leaderWait bounds how long a request waits for an election to end.
	leaderWait = 5 * time.Second
)

// waitForLeader returns the gossip member of the leader, waiting up to timeout for
// one to be elected and known to gossip.
func (s *Server) waitForLeader(ctx context.Context, timeout time.Duration) (gossip.Member, error) {
	deadline := time.Now().Add(timeout)
	for {
		if s.raft.State() == raft.Leader {
			if m, ok := s.members.ServerByID(s.id); ok {
				return m, nil
			}
		}
		if _, id := s.raft.LeaderWithID(); id != "" {
			if m, ok := s.members.ServerByID(string(id)); ok {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			return gossip.Member{}, ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return gossip.Member{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	addr, _ := s.raft.LeaderWithID()
	writeJSON(w, http.StatusOK, string(addr))
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.raftConfiguration()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	peers := []string{}
	for _, srv := range cfg.Servers {
		if srv.Voter {
			peers = append(peers, srv.Address)
		}
	}
	writeJSON(w, http.StatusOK, peers)
}

func (s *Server) handleRaftConfiguration(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.raftConfiguration()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// raftConfiguration is the latest Raft configuration with gossip names and the leader,
// its servers sorted by name (those gossip does not know last, by address).
func (s *Server) raftConfiguration() (*api.RaftConfiguration, error) {
	// Raft does not tell at which index the configuration itself was written (the
	// future's Index is always 0). The latest configuration is the last one in the
	// server's log, so the log's last index says how far the answer goes; read first,
	// the configuration is at least that recent. (The applied index would not do: a
	// follower applies nothing until it learns of a commit.)
	last := s.raft.LastIndex()
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, leaderID := s.raft.LeaderWithID()
	out := &api.RaftConfiguration{Servers: []api.RaftServer{}, Index: last}
	for _, srv := range f.Configuration().Servers {
		rs := api.RaftServer{
			ID:           string(srv.ID),
			Address:      string(srv.Address),
			State:        "follower",
			Leader:       srv.ID == leaderID,
			Voter:        srv.Suffrage == raft.Voter,
			RaftProtocol: fmt.Sprint(raft.ProtocolVersionMax),
		}
		if rs.Leader {
			rs.State = "leader"
		}
		if m, ok := s.members.ServerByID(rs.ID); ok {
			rs.Node = m.Name
		}
		out.Servers = append(out.Servers, rs)
	}
	sort.Slice(out.Servers, func(i, j int) bool {
		a, b := out.Servers[i], out.Servers[j]
		if (a.Node == "") != (b.Node == "") {
			return b.Node == ""
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Address < b.Address
	})
	return out, nil
}

func (s *Server) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	id, addr := r.URL.Query().Get("id"), r.URL.Query().Get("address")
	if (id == "") == (addr == "") {
		writeError(w, http.StatusBadRequest, errors.New("give exactly one of the query parameters id and address"))
		return
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	var found *raft.Server
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id || string(srv.Address) == addr {
			found = &srv
			break
		}
	}
	if found == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no raft peer with id %q or address %q", id, addr))
		return
	}
	if err := s.removeVoter(r.Context(), found.ID); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("remove raft peer %s: %w", found.ID, err))
		return
	}
	s.logger.Info("removed raft peer", "id", found.ID, "address", found.Address)
	writeJSON(w, http.StatusOK, map[string]string{"removed_id": string(found.ID), "removed_address": string(found.Address)})
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	_, leaderID := s.raft.LeaderWithID()
	out := []api.Member{}
	for _, m := range s.members.List() {
		out = append(out, api.Member{
			Name:    m.Name,
			Address: m.Addr.String(),
			Port:    int(m.Port),
			Status:  m.Status,
			Role:    m.Tags.Role,
			Leader:  m.Tags.Role == RoleServer && m.Tags.ID != "" && m.Tags.ID == string(leaderID),
			Version: m.Tags.Version,
			Tags:    m.Tags.Map(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// maxRequestBody bounds a JSON request body.
const maxRequestBody = 1 << 20

// decodeBody decodes a request's JSON body into v: exactly one JSON value with only
// known fields, at most maxRequestBody bytes. It answers the error itself (400, or
// 413 for a body over the limit) and reports whether v is good to use.
func decodeBody(w http.ResponseWriter, r *http.Request, what string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("decode %s: the body is over %d bytes", what, maxRequestBody))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode %s: %w", what, err))
		return false
	}
	return true
}

// refuse answers a request the Authorizer refused.
func refuse(w http.ResponseWriter, err error) { writeError(w, http.StatusForbidden, err) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// The answers are JSON, never HTML: queries and descriptions keep their & and <.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": errorMessage(err)})
}

// errorMessage is err's text for people: a gRPC status error loses its
// "rpc error: code = … desc =" wrapping, wherever in the chain it sits.
func errorMessage(err error) string {
	var se interface {
		error
		GRPCStatus() *status.Status
	}
	if errors.As(err, &se) {
		return strings.Replace(err.Error(), se.Error(), se.GRPCStatus().Message(), 1)
	}
	return err.Error()
}
