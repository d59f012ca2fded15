package server

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/gossip"
)

// GossipEncrypted reports whether the server encrypts its gossip: it was started with
// -encrypt, or its data dir has a keyring.
func (s *Server) GossipEncrypted() bool {
	p := s.keyringPool.Load()
	return p != nil && p.Encrypted()
}

// validEncryptKey checks -encrypt before anything starts.
func validEncryptKey(key string) error {
	if key == "" {
		return nil
	}
	if err := gossip.ValidKey(key); err != nil {
		return fmt.Errorf("-encrypt: %w", err)
	}
	return nil
}

// The keyring endpoints run on the server asked: serf's key queries reach every
// alive member of the pool, servers and agents, and gather their answers.

func (s *Server) handleKeyringList(w http.ResponseWriter, r *http.Request) {
	s.keyringOp(w, (*gossip.Pool).ListKeys)
}

func (s *Server) handleKeyringInstall(w http.ResponseWriter, r *http.Request) {
	s.keyringChange(w, r, "install", (*gossip.Pool).InstallKey)
}

func (s *Server) handleKeyringUse(w http.ResponseWriter, r *http.Request) {
	s.keyringChange(w, r, "use", (*gossip.Pool).UseKey)
}

func (s *Server) handleKeyringRemove(w http.ResponseWriter, r *http.Request) {
	s.keyringChange(w, r, "remove", (*gossip.Pool).RemoveKey)
}

// keyringChange runs a change of the pool's keyring with the key in the body.
func (s *Server) keyringChange(w http.ResponseWriter, r *http.Request, op string, change func(*gossip.Pool, string) (*gossip.KeyringResult, error)) {
	var req api.KeyringRequest
	if !decodeBody(w, r, "keyring request", &req) {
		return
	}
	if req.Key == "" {
		writeError(w, http.StatusBadRequest, errors.New("the key is required"))
		return
	}
	if s.keyringOp(w, func(p *gossip.Pool) (*gossip.KeyringResult, error) { return change(p, req.Key) }) {
		// Never the key itself: the log is no place for a secret.
		s.logger.Info("gossip keyring changed", "operation", op)
	}
}

// keyringOp runs op on the gossip pool and answers with its result, reporting
// whether it succeeded. An error says what went wrong, not what was asked: the
// caller knows that.
func (s *Server) keyringOp(w http.ResponseWriter, op func(*gossip.Pool) (*gossip.KeyringResult, error)) bool {
	p := s.keyringPool.Load()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("gossip is not running yet"))
		return false
	}
	res, err := op(p)
	var keyErr *gossip.KeyError
	switch {
	case errors.Is(err, gossip.ErrNotEncrypted):
		writeError(w, http.StatusConflict, err)
		return false
	case errors.As(err, &keyErr):
		writeError(w, http.StatusBadRequest, err)
		return false
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return false
	}
	writeJSON(w, http.StatusOK, keyringResponse(res))
	return true
}

// keyringResponse is the API's view of a keyring result: keys that are primary
// somewhere first, then by how many members hold them.
func keyringResponse(res *gossip.KeyringResult) api.KeyringResponse {
	out := api.KeyringResponse{Members: res.Members, Responses: res.Responses}
	for k, n := range res.Keys {
		out.Keys = append(out.Keys, api.KeyringKey{Key: k, Members: n, PrimaryMembers: res.PrimaryKeys[k]})
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		a, b := out.Keys[i], out.Keys[j]
		if a.PrimaryMembers != b.PrimaryMembers {
			return a.PrimaryMembers > b.PrimaryMembers
		}
		if a.Members != b.Members {
			return a.Members > b.Members
		}
		return a.Key < b.Key
	})
	if len(res.Messages) > 0 {
		out.Messages = res.Messages
	}
	return out
}
