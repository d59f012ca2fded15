package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
)

// handleSpawnNode records a node, status pending; the FSM checks the request against
// the state. It answers at once with the pending node: the leader's node reconciler
// (reconcile.go) has the agent start it and records the outcome, whatever becomes of
// this request.
func (s *Server) handleSpawnNode(w http.ResponseWriter, r *http.Request) {
	var req api.SpawnRequest
	if !decodeBody(w, r, "spawn request", &req) {
		return
	}
	cmd := &fsm.SpawnNode{
		ID: newNodeID(), Name: req.Name, Role: req.Role, Agent: req.Agent, Port: req.Port, StoragePath: req.StoragePath,
		MemoryLimitMB: req.MemoryLimitMB, CPULimit: req.CPULimit, RequestedBy: s.requester(r),
		Restart: restart.Policy{
			Attempts: restart.DefaultAttempts, Interval: time.Duration(req.Restart.Interval),
			Delay: time.Duration(req.Restart.Delay), MaxDelay: time.Duration(req.Restart.MaxDelay),
		},
	}
	if req.Restart.Attempts != nil {
		cmd.Restart.Attempts = *req.Restart.Attempts // 0: never restart
	}
	if _, err := s.Apply(r.Context(), cmd); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("spawn node on %s: %w", req.Agent, err))
		return
	}
	n, err := s.fsm.State().Node(cmd.ID)
	if err != nil || n == nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("node %s vanished after it was recorded: %v", cmd.ID, err))
		return
	}
	writeJSON(w, http.StatusCreated, s.apiNode(n))
}

// handleStopNode records a stop request; the node reconciler carries it out. The
// node is named by its ID or its name.
func (s *Server) handleStopNode(w http.ResponseWriter, r *http.Request) {
	var killTimeout time.Duration
	if v := r.URL.Query().Get("kill_timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > fsm.MaxKillTimeout {
			writeError(w, http.StatusBadRequest, fmt.Errorf("kill_timeout %q must be a duration between 0 and %s", v, fsm.MaxKillTimeout))
			return
		}
		killTimeout = d
	}
	id, err := s.stopTarget(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, statusOf(err), fmt.Errorf("stop node %s: %w", r.PathValue("id"), err))
		return
	}
	if _, err := s.Apply(r.Context(), &fsm.StopNode{ID: id, KillTimeout: killTimeout, RequestedBy: s.requester(r)}); err != nil {
		code := statusOf(err)
		if errors.Is(err, fsm.ErrRejected) {
			code = http.StatusConflict
		}
		writeError(w, code, fmt.Errorf("stop node %s: %w", id, err))
		return
	}
	n, err := s.fsm.State().Node(id)
	if err != nil || n == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("node %s not found", id))
		return
	}
	writeJSON(w, http.StatusOK, s.apiNode(n))
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := s.fsm.State().Nodes(r.URL.Query().Get("agent"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]api.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, s.apiNode(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// stopTarget returns the ID of the node a stop names by ID or by name. A name
// found is final: a node keeps its name and ID for ever. A key found nowhere is
// checked again once this server has confirmed it leads, since a deposed leader's
// state may lack a node spawned since; if it is still no node's, the stop goes
// ahead with key as the ID, and the FSM answers that there is no such node.
func (s *Server) stopTarget(ctx context.Context, key string) (string, error) {
	if n, err := findNode(s.fsm.State(), key); err != nil || n != nil {
		return nodeIDOf(n), err
	}
	if err := s.confirmLeader(ctx); err != nil {
		return "", err
	}
	n, err := findNode(s.fsm.State(), key)
	if err != nil || n == nil {
		return key, err
	}
	return n.ID, nil
}

func nodeIDOf(n *fsm.Node) string {
	if n == nil {
		return ""
	}
	return n.ID
}

// findNode returns the node whose ID is key, or else the node named key, or nil.
// A key names one node at most: a spawn is refused a name that is any node's name
// or ID (fsm/node_apply.go). Names have no index, as spawns check them; a scan of
// the nodes is cheap next to the HTTP request that asks.
func findNode(state *fsm.State, key string) (*fsm.Node, error) {
	if n, err := state.Node(key); err != nil || n != nil {
		return n, err
	}
	nodes, err := state.Nodes("")
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.DisplayName() == key {
			return n, nil
		}
	}
	return nil, nil
}

// handleNode answers one node, named by its ID or its name.
func (s *Server) handleNode(w http.ResponseWriter, r *http.Request) {
	n, err := findNode(s.fsm.State(), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if n == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("node %q not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, s.apiNode(n))
}

func (s *Server) handleNodeLogs(w http.ResponseWriter, r *http.Request) {
	n, err := findNode(s.fsm.State(), r.PathValue("id"))
	if err != nil || n == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("node %q not found", r.PathValue("id")))
		return
	}
	lines := 0
	if v := r.URL.Query().Get("lines"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &lines); err != nil || lines < 0 || lines > 100000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("lines %q must be a number from 0 to 100000", v))
			return
		}
	}
	client, err := s.agentClient(n.Agent)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	resp, err := client.NodeLogs(r.Context(), &gridpb.NodeLogsRequest{NodeId: n.ID, Lines: int32(lines)})
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Errorf("read logs from agent %s: %s", n.Agent, rpcMessage(err)))
		return
	}
	writeJSON(w, http.StatusOK, api.NodeLogs{Stdout: string(resp.GetStdout()), Stderr: string(resp.GetStderr())})
}

func (s *Server) handleAgents(w http.ResponseWriter, r *http.Request) {
	agents, err := s.fsm.State().Agents()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]api.Agent, 0, len(agents))
	for _, a := range agents {
		out = append(out, s.apiAgent(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleAgent(w http.ResponseWriter, r *http.Request) {
	a, err := s.fsm.State().Agent(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if a == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("agent %q not found", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, s.apiAgent(a))
}

func (s *Server) apiAgent(a *fsm.Agent) api.Agent {
	out := api.Agent{
		Name: a.Name, Address: a.Address, Hostname: a.Hostname, Platform: a.Platform,
		Version: a.Version, Status: string(a.Status), MaxNodes: a.MaxNodes, StorageRoot: a.StorageRoot,
		RegisteredAt: a.RegisteredAt, StatusChangedAt: a.StatusChangedAt, Isolation: a.Isolation,
	}
	out.LastHeartbeat = s.heartbeats.lastHeard(a.Name)
	if nodes, err := s.fsm.State().Nodes(a.Name); err == nil && a.Status != fsm.AgentOffline {
		for _, n := range nodes {
			if n.Status == fsm.NodeStatusRunning {
				out.Nodes++
			}
		}
	}
	return out
}

// apiNode renders a node; one whose agent is offline or gone shows as lost.
func (s *Server) apiNode(n *fsm.Node) api.Node {
	out := api.Node{
		ID: n.ID, Name: n.DisplayName(), Role: n.Role, Agent: n.Agent, Port: n.Port, StoragePath: n.StoragePath, MemoryLimitMB: n.MemoryLimitMB,
		CPULimit: n.CPULimit,
		Restart: api.RestartPolicy{
			Attempts: api.Attempts(n.Restart.Attempts), Interval: api.Duration(n.Restart.Interval),
			Delay: api.Duration(n.Restart.Delay), MaxDelay: api.Duration(n.Restart.MaxDelay),
		},
		Status: string(n.Status), PID: n.PID, Restarts: n.Restarts, Endpoint: n.Endpoint,
		ExitCode: n.ExitCode, Signal: n.Signal, Error: n.Error, CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt,
		RequestedBy: n.RequestedBy,
	}
	if n.Status.Active() {
		if a, err := s.fsm.State().Agent(n.Agent); err == nil && (a == nil || a.Status == fsm.AgentOffline) {
			out.Status = api.NodeLost
		}
	}
	return out
}

// newNodeID returns a short random node ID, easy to type and to read in logs.
func newNodeID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "node-" + hex.EncodeToString(b)
}

// rpcMessage is the message of a gRPC error without its code prefix.
func rpcMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
