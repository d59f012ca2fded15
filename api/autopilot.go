package api

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// AutopilotConfiguration is the autopilot configuration, replicated through Raft, so
// that whichever server leads applies the same.
type AutopilotConfiguration struct {
	// CleanupDeadServers lets autopilot remove failed servers from the Raft
	// configuration, once a replacement joins or after DeadServerCleanupAfter.
	CleanupDeadServers bool `json:"cleanup_dead_servers"`
	// DeadServerCleanupAfter is how long a server may stay failed before it is
	// removed though no replacement joined; "0s" waits for a replacement.
	DeadServerCleanupAfter Duration `json:"dead_server_cleanup_after"`
	// LastContactThreshold is how long a server may go without hearing from the
	// leader and still count as healthy.
	LastContactThreshold Duration `json:"last_contact_threshold"`
	// MaxTrailingLogs is how many log entries a healthy server may lag the leader by.
	MaxTrailingLogs uint64 `json:"max_trailing_logs"`
	// MinQuorum is the fewest voters that dead-server cleanup leaves.
	MinQuorum uint `json:"min_quorum"`
	// ServerStabilizationTime is how long a new server must stay healthy before
	// autopilot promotes it to voter.
	ServerStabilizationTime Duration `json:"server_stabilization_time"`
	// CreateIndex and ModifyIndex are the Raft indexes that first stored and last
	// changed the configuration (0 while the servers' flags are in force, before the
	// first leader stored them); ModifyIndex is what a check-and-set compares.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// AutopilotServer is one server's health as the leader's autopilot judges it.
type AutopilotServer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address"`
	// SerfStatus is the server's gossip status: alive, failed, left or unknown.
	SerfStatus string `json:"serf_status"`
	Version    string `json:"version"`
	Leader     bool   `json:"leader"`
	Voter      bool   `json:"voter"`
	// RaftState is leader, voter, non-voter or staging.
	RaftState string `json:"raft_state"`
	// LastContact is how long ago the server last heard from the leader (0 on the
	// leader; negative if never).
	LastContact Duration `json:"last_contact"`
	// LastTerm and LastIndex are the term and index of the last entry in its log.
	LastTerm  uint64 `json:"last_term"`
	LastIndex uint64 `json:"last_index"`
	// Healthy is true when the server is alive, heard from the leader within the
	// last-contact threshold, is on the leader's term and trails its log by at
	// most max-trailing-logs entries.
	Healthy bool `json:"healthy"`
	// StableSince is when Healthy last changed.
	StableSince time.Time `json:"stable_since"`
}

// AutopilotHealth is the grid's health as the leader's autopilot judges it.
type AutopilotHealth struct {
	// Healthy is true when every server is.
	Healthy bool `json:"healthy"`
	// FailureTolerance is how many voters may fail with the leader keeping quorum.
	FailureTolerance int `json:"failure_tolerance"`
	// Leader is the leader's Raft ID; Voters are the voters' IDs.
	Leader string   `json:"leader"`
	Voters []string `json:"voters"`
	// Servers are sorted by name.
	Servers []AutopilotServer `json:"servers"`
}

// AutopilotConfiguration returns the autopilot configuration.
// GET /v1/operator/autopilot/configuration
func (c *Client) AutopilotConfiguration(ctx context.Context) (*AutopilotConfiguration, error) {
	var out AutopilotConfiguration
	if err := c.get(ctx, "/v1/operator/autopilot/configuration", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AutopilotSetConfiguration replaces the autopilot configuration and returns it as
// stored. PUT /v1/operator/autopilot/configuration
func (c *Client) AutopilotSetConfiguration(ctx context.Context, conf *AutopilotConfiguration) (*AutopilotConfiguration, error) {
	return c.autopilotPut(ctx, conf, nil)
}

// AutopilotCASConfiguration replaces the autopilot configuration only if it was last
// changed at index (0: never stored), and returns it as stored. When it changed
// since, the *StatusError has Code 409. PUT /v1/operator/autopilot/configuration?cas=
func (c *Client) AutopilotCASConfiguration(ctx context.Context, conf *AutopilotConfiguration, index uint64) (*AutopilotConfiguration, error) {
	return c.autopilotPut(ctx, conf, url.Values{"cas": {strconv.FormatUint(index, 10)}})
}

func (c *Client) autopilotPut(ctx context.Context, conf *AutopilotConfiguration, q url.Values) (*AutopilotConfiguration, error) {
	var out AutopilotConfiguration
	if err := c.call(ctx, "PUT", "/v1/operator/autopilot/configuration", q, conf, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AutopilotHealth returns the servers' health. GET /v1/operator/autopilot/health
func (c *Client) AutopilotHealth(ctx context.Context) (*AutopilotHealth, error) {
	var out AutopilotHealth
	if err := c.get(ctx, "/v1/operator/autopilot/health", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
