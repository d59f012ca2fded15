package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sutragrid/grid/acl"
	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
)

// The ACL endpoints, /v1/acl/... (website/http-api.md). What each needs is in acl's
// table, like every route's. A secret is made here, on the leader that serves the
// write, and leaves it only in the answer: the command proposed carries its hash.

// aclRoutes registers the ACL endpoints with handle, as startHTTP registers the others.
func (s *Server) aclRoutes(handle func(pattern string, mode routeMode, h http.HandlerFunc)) {
	handle("POST /v1/acl/bootstrap", leader, s.handleACLBootstrap)
	handle("GET /v1/acl/policies", read, s.handleACLPolicies)
	handle("GET /v1/acl/policy/{name}", read, s.handleACLPolicy)
	handle("PUT /v1/acl/policy/{name}", leader, s.handleACLPolicyPut)
	handle("DELETE /v1/acl/policy/{name}", leader, s.handleACLPolicyDelete)
	handle("GET /v1/acl/tokens", read, s.handleACLTokens)
	handle("POST /v1/acl/token", leader, s.handleACLTokenCreate)
	handle("GET /v1/acl/token/self", read, s.handleACLTokenSelf)
	handle("GET /v1/acl/token/{accessor}", read, s.handleACLToken)
	handle("DELETE /v1/acl/token/{accessor}", leader, s.handleACLTokenDelete)
}

func (s *Server) handleACLBootstrap(w http.ResponseWriter, r *http.Request) {
	meta, err := s.fsm.State().ACLMeta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	tok, secret := acl.NewToken()
	tok.Name, tok.Management = "bootstrap", true
	cmd := &fsm.ACLBootstrap{Token: *tok}
	if meta.BootstrapIndex != 0 {
		// Bootstrapped before: again only if the operator's reset file says so.
		idx, ok, err := s.resetIndex()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if !ok || idx != meta.BootstrapIndex {
			writeError(w, http.StatusBadRequest, fmt.Errorf("ACL bootstrap already done (reset index: %d)", meta.BootstrapIndex))
			return
		}
		cmd.ResetIndex = idx
	}
	if _, err := s.Apply(r.Context(), cmd); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("ACL bootstrap: %w", err))
		return
	}
	s.logger.Info("ACLs bootstrapped", "accessor", tok.AccessorID, "reset_index", cmd.ResetIndex)
	s.writeToken(w, http.StatusOK, tok.AccessorID, secret)
}

func (s *Server) handleACLPolicies(w http.ResponseWriter, r *http.Request) {
	policies, err := s.fsm.State().ACLPolicies()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]api.ACLPolicy, 0, len(policies))
	for _, p := range policies {
		ap := apiPolicy(p)
		ap.Rules = ""
		out = append(out, ap)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleACLPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, err := s.fsm.State().ACLPolicy(name)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	case p == nil:
		writeError(w, http.StatusNotFound, fmt.Errorf("ACL policy %q not found", name))
	default:
		writeJSON(w, http.StatusOK, apiPolicy(p))
	}
}

func (s *Server) handleACLPolicyPut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.ACLPolicyRequest
	if !decodeBody(w, r, "ACL policy", &req) {
		return
	}
	if _, err := s.Apply(r.Context(), &fsm.ACLPolicyUpsert{Name: name, Description: req.Description, Rules: req.Rules}); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("apply ACL policy %s: %w", name, err))
		return
	}
	s.handleACLPolicy(w, r)
}

func (s *Server) handleACLPolicyDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.Apply(r.Context(), &fsm.ACLPolicyDelete{Name: name}); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("delete ACL policy %s: %w", name, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

func (s *Server) handleACLTokens(w http.ResponseWriter, r *http.Request) {
	tokens, err := s.fsm.State().ACLTokens()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]api.ACLToken, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, apiToken(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleACLTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req api.ACLTokenRequest
	if !decodeBody(w, r, "ACL token", &req) {
		return
	}
	tok, secret := acl.NewToken()
	tok.Name, tok.Description, tok.Policies, tok.Management = req.Name, req.Description, req.Policies, req.Management
	if _, err := s.Apply(r.Context(), &fsm.ACLTokenCreate{Token: *tok}); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("create ACL token: %w", err))
		return
	}
	s.writeToken(w, http.StatusCreated, tok.AccessorID, secret)
}

// writeToken answers with a token just created: the stored one, with its secret.
func (s *Server) writeToken(w http.ResponseWriter, code int, accessor, secret string) {
	tok, err := s.fsm.State().ACLToken(accessor)
	if err != nil || tok == nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("ACL token %s vanished after it was created: %v", accessor, err))
		return
	}
	out := apiToken(tok)
	out.SecretID = secret
	writeJSON(w, code, out)
}

func (s *Server) handleACLToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accessor")
	tok, err := s.fsm.State().ACLToken(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	case tok == nil:
		writeError(w, http.StatusNotFound, fmt.Errorf("ACL token %q not found", id))
	default:
		writeJSON(w, http.StatusOK, apiToken(tok))
	}
}

func (s *Server) handleACLTokenSelf(w http.ResponseWriter, r *http.Request) {
	tok, err := s.acl.Resolve(r.Header.Get(auth.TokenHeader))
	var denied *acl.DeniedError
	switch {
	case errors.As(err, &denied):
		writeError(w, http.StatusForbidden, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, apiToken(tok))
	}
}

func (s *Server) handleACLTokenDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accessor")
	if _, err := s.Apply(r.Context(), &fsm.ACLTokenDelete{AccessorID: id}); err != nil {
		writeError(w, statusOf(err), fmt.Errorf("delete ACL token %s: %w", id, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
}

func apiPolicy(p *acl.Policy) api.ACLPolicy {
	return api.ACLPolicy{Name: p.Name, Description: p.Description, Rules: p.Source,
		CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
}

// apiToken renders a token without its secret, which the state does not have.
func apiToken(t *acl.Token) api.ACLToken {
	return api.ACLToken{AccessorID: t.AccessorID, Name: t.Name, Description: t.Description,
		Policies: append([]string{}, t.Policies...), Management: t.Management,
		CreateTime: t.CreateTime, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
}
