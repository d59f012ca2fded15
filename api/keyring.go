package api

import (
	"context"
	"net/http"
)

// KeyringRequest is the body of the keyring changes: the key to install, use or
// remove, 32 bytes in base64.
type KeyringRequest struct {
	Key string `json:"key"`
}

// KeyringKey is one gossip encryption key and how many members have it.
type KeyringKey struct {
	// Key is the key, 32 bytes in base64.
	Key string `json:"key"`
	// Members is how many members hold the key in their keyring.
	Members int `json:"members"`
	// PrimaryMembers is how many members use it as their primary key, the one they
	// encrypt with.
	PrimaryMembers int `json:"primary_members"`
}

// KeyringResponse is the gossip pool's answer to a keyring request, which every
// alive member, servers and agents, answers.
type KeyringResponse struct {
	// Members is how many alive members the request went to; Responses is how many
	// answered.
	Members   int `json:"members"`
	Responses int `json:"responses"`
	// Keys are the installed keys (listing only): primary keys first, then by how
	// many members hold them, then by key.
	Keys []KeyringKey `json:"keys,omitempty"`
	// Messages holds what members said besides success, by member name.
	Messages map[string]string `json:"messages,omitempty"`
}

// KeyringList lists the gossip encryption keys installed on the members.
// GET /v1/operator/keyring
func (c *Client) KeyringList(ctx context.Context) (*KeyringResponse, error) {
	var out KeyringResponse
	if err := c.get(ctx, "/v1/operator/keyring", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyringInstall installs key on every member: they decrypt with it from then on,
// and keep encrypting with their primary key. POST /v1/operator/keyring
func (c *Client) KeyringInstall(ctx context.Context, key string) (*KeyringResponse, error) {
	return c.keyringChange(ctx, http.MethodPost, key)
}

// KeyringUse makes key, installed before, every member's primary key.
// PUT /v1/operator/keyring
func (c *Client) KeyringUse(ctx context.Context, key string) (*KeyringResponse, error) {
	return c.keyringChange(ctx, http.MethodPut, key)
}

// KeyringRemove removes key from every member; it must not be the primary key.
// DELETE /v1/operator/keyring
func (c *Client) KeyringRemove(ctx context.Context, key string) (*KeyringResponse, error) {
	return c.keyringChange(ctx, http.MethodDelete, key)
}

func (c *Client) keyringChange(ctx context.Context, method, key string) (*KeyringResponse, error) {
	var out KeyringResponse
	if err := c.call(ctx, method, "/v1/operator/keyring", nil, KeyringRequest{Key: key}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
