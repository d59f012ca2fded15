package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// Leader returns the Raft address of the current leader ("" when there is none).
// GET /v1/status/leader
func (c *Client) Leader(ctx context.Context) (string, error) {
	var addr string
	err := c.get(ctx, "/v1/status/leader", nil, &addr)
	return addr, err
}

// Peers returns the Raft addresses of the voting servers. GET /v1/status/peers
func (c *Client) Peers(ctx context.Context) ([]string, error) {
	var peers []string
	err := c.get(ctx, "/v1/status/peers", nil, &peers)
	return peers, err
}

// RaftServer is one server in the Raft configuration.
type RaftServer struct {
	// Node is the server's gossip name ("" if gossip does not know it).
	Node string `json:"node"`
	// ID is the server's Raft ID, stable across restarts.
	ID string `json:"id"`
	// Address is the server's Raft address, host:port.
	Address string `json:"address"`
	// State is "leader" or "follower".
	State string `json:"state"`
	// Leader is true for the current leader.
	Leader bool `json:"leader"`
	// Voter is true when the server votes in elections.
	Voter bool `json:"voter"`
	// RaftProtocol is the Raft protocol version the server speaks.
	RaftProtocol string `json:"raft_protocol"`
}

// RaftConfiguration is the latest Raft configuration as one server sees it.
type RaftConfiguration struct {
	// Servers are sorted by node name; servers that gossip does not know come
	// last, by address.
	Servers []RaftServer `json:"servers"`
	// Index is the index of the last entry in the server's Raft log when it
	// answered: the configuration is the latest in the log up to there.
	Index uint64 `json:"index"`
}

// RaftConfiguration returns the Raft configuration. GET /v1/operator/raft/configuration
func (c *Client) RaftConfiguration(ctx context.Context) (*RaftConfiguration, error) {
	var out RaftConfiguration
	if err := c.get(ctx, "/v1/operator/raft/configuration", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RaftRemovePeerByID removes the server with Raft ID id from the Raft configuration.
// DELETE /v1/operator/raft/peer?id=ID
func (c *Client) RaftRemovePeerByID(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/operator/raft/peer", url.Values{"id": {id}}, nil, nil)
}

// RaftRemovePeerByAddress removes the server with Raft address addr.
// DELETE /v1/operator/raft/peer?address=HOST:PORT
func (c *Client) RaftRemovePeerByAddress(ctx context.Context, addr string) error {
	return c.call(ctx, http.MethodDelete, "/v1/operator/raft/peer", url.Values{"address": {addr}}, nil, nil)
}

// SnapshotSave streams a snapshot archive of the replicated state from the leader.
// The caller closes the reader. GET /v1/operator/snapshot
func (c *Client) SnapshotSave(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/operator/snapshot", nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// SnapshotRestore replaces the replicated state with the archive read from r, after
// the server has verified its checksums. PUT /v1/operator/snapshot
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) error {
	resp, err := c.do(ctx, http.MethodPut, "/v1/operator/snapshot", nil, r)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Member is one member of the gossip pool.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Status is "alive", "suspect", "failed" or "left".
	Status string `json:"status"`
	// Role is "server" or "agent".
	Role string `json:"role"`
	// Leader is true for the server that leads Raft.
	Leader  bool   `json:"leader"`
	Version string `json:"version"`
	// Tags holds the member's gossip metadata (ports, bootstrap-expect, Raft ID).
	Tags map[string]string `json:"tags"`
}

// Members returns the gossip pool as the answering server sees it. GET /v1/members
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	err := c.get(ctx, "/v1/members", nil, &out)
	return out, err
}
