package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// ACLPolicy is a policy: its rules in HCL. GET /v1/acl/policy/NAME
type ACLPolicy struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Rules is the policy in HCL, as written (absent from listings).
	Rules       string `json:"rules,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// ACLPolicyRequest creates or replaces a policy. PUT /v1/acl/policy/NAME
type ACLPolicyRequest struct {
	Description string `json:"description,omitempty"`
	Rules       string `json:"rules"`
}

// ACLToken is a token. Its secret, SecretID, is in the answer to its creation only
// (and to the bootstrap): the servers keep its hash, never the secret itself.
type ACLToken struct {
	AccessorID string `json:"accessor_id"`
	// SecretID is the token itself, sent as X-Grid-Token (or GRID_TOKEN, -token).
	SecretID    string   `json:"secret_id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies"`
	// Management tokens may do everything.
	Management  bool      `json:"management"`
	CreateTime  time.Time `json:"create_time"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// ACLTokenRequest creates a token: a management token, or one with policies.
// POST /v1/acl/token
type ACLTokenRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies,omitempty"`
	Management  bool     `json:"management,omitempty"`
}

// IsForbidden reports whether err is a 403 from the server: ACLs refused the request.
func IsForbidden(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusForbidden
}

// ACLBootstrap creates the first management token and returns it with its secret.
// It succeeds once (see website/security.md for a reset). POST /v1/acl/bootstrap
func (c *Client) ACLBootstrap(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	if err := c.call(ctx, http.MethodPost, "/v1/acl/bootstrap", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLPolicies lists the policies, without their rules. GET /v1/acl/policies
func (c *Client) ACLPolicies(ctx context.Context) ([]ACLPolicy, error) {
	var out []ACLPolicy
	err := c.get(ctx, "/v1/acl/policies", nil, &out)
	return out, err
}

// ACLPolicy returns one policy; a 404 StatusError when there is none.
// GET /v1/acl/policy/NAME
func (c *Client) ACLPolicy(ctx context.Context, name string) (*ACLPolicy, error) {
	var out ACLPolicy
	if err := c.get(ctx, "/v1/acl/policy/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLPolicyApply creates or replaces a policy. PUT /v1/acl/policy/NAME
func (c *Client) ACLPolicyApply(ctx context.Context, name string, req ACLPolicyRequest) (*ACLPolicy, error) {
	var out ACLPolicy
	if err := c.call(ctx, http.MethodPut, "/v1/acl/policy/"+url.PathEscape(name), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLPolicyDelete deletes a policy. DELETE /v1/acl/policy/NAME
func (c *Client) ACLPolicyDelete(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/acl/policy/"+url.PathEscape(name), nil, nil, nil)
}

// ACLTokens lists the tokens, without their secrets. GET /v1/acl/tokens
func (c *Client) ACLTokens(ctx context.Context) ([]ACLToken, error) {
	var out []ACLToken
	err := c.get(ctx, "/v1/acl/tokens", nil, &out)
	return out, err
}

// ACLTokenCreate creates a token and returns it with its secret. POST /v1/acl/token
func (c *Client) ACLTokenCreate(ctx context.Context, req ACLTokenRequest) (*ACLToken, error) {
	var out ACLToken
	if err := c.call(ctx, http.MethodPost, "/v1/acl/token", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLToken returns one token, without its secret; a 404 StatusError when there is
// none. GET /v1/acl/token/ACCESSOR
func (c *Client) ACLToken(ctx context.Context, accessor string) (*ACLToken, error) {
	var out ACLToken
	if err := c.get(ctx, "/v1/acl/token/"+url.PathEscape(accessor), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLTokenDelete deletes a token: every server refuses it from then on.
// DELETE /v1/acl/token/ACCESSOR
func (c *Client) ACLTokenDelete(ctx context.Context, accessor string) error {
	return c.call(ctx, http.MethodDelete, "/v1/acl/token/"+url.PathEscape(accessor), nil, nil, nil)
}

// ACLTokenSelf returns the token the client sends. GET /v1/acl/token/self
func (c *Client) ACLTokenSelf(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	if err := c.get(ctx, "/v1/acl/token/self", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
