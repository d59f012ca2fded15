package api

import (
	"context"
	"net/http"
	"time"

	"github.com/sutragrid/grid/ask"
)

// AskRequest is the body of POST /v1/ask.
type AskRequest struct {
	Question string `json:"question"`
	// Now, when not "", is the RFC 3339 time the question is asked at, so that a test
	// or a replay gets the same answer every time; default the server's clock.
	Now string `json:"now,omitempty"`
}

// AskResponse is the answer to a question in plain English: how the server
// understood it, the queries it ran to answer it and what they found. Its shape is
// the contract of website/ask.md.
type AskResponse struct {
	Question string `json:"question"`
	// Now is the time the question was asked at: the request's, or the server's clock.
	Now            time.Time          `json:"now"`
	Interpretation ask.Interpretation `json:"interpretation"`
	// Queries lists every API request run to answer, in order, as a user could run
	// it: "GET /v1/events?type=node_crashed&since=...".
	Queries []string `json:"queries"`
	Answer  Answer   `json:"answer"`
	// Summary is the answer in one or two sentences, saying what was assumed.
	Summary string `json:"summary"`
	// Partial, when not empty, lists why the answer may lack events: the reasons
	// the queries' answers gave (the event store unreachable, typically).
	Partial []string `json:"partial,omitempty"`
}

// AnswerKind says which of Answer's fields hold the answer.
type AnswerKind string

// The kinds of answer, one per shape of website/ask.md.
const (
	// AnswerEvents: Events (the newest or oldest Limit of them, in the asked order)
	// and Total, how many matched; ByType counts them by type.
	AnswerEvents AnswerKind = "events"
	// AnswerCount: Total.
	AnswerCount AnswerKind = "count"
	// AnswerGroups: Groups, counted by GroupBy, largest first; Total.
	AnswerGroups AnswerKind = "groups"
	// AnswerSeries: Groups with a Bucket each, oldest first, every bucket of the
	// range present; Total.
	AnswerSeries AnswerKind = "series"
	// AnswerRate: Rate.
	AnswerRate AnswerKind = "rate"
	// AnswerState: Agents, Nodes and Cluster as they are now.
	AnswerState AnswerKind = "state"
	// AnswerChain: Anchor, its Causes and Effects, and the Context window around it.
	AnswerChain AnswerKind = "chain"
	// AnswerEvent: Anchor, the one event asked for ("when did … last …").
	AnswerEvent AnswerKind = "event"
	// AnswerNone: no answer; Reason says why and what can be asked instead.
	AnswerNone AnswerKind = "none"
)

// Answer is what the queries found. Only the fields of its Kind are set.
type Answer struct {
	Kind AnswerKind `json:"kind"`

	// Events are the matching events (kind events), or the context window's events
	// around the anchor, in time order (kind chain).
	Events []Event `json:"events,omitempty"`
	// Total counts every matching event (kinds events, count, groups, series).
	Total *uint64 `json:"total,omitempty"`
	// ByType counts the matching events by type, largest first (kind events).
	ByType []EventGroup `json:"by_type,omitempty"`

	// GroupBy names what Groups are counted by: "type", "agent", "node" as in
	// GET /v1/events/aggregate; Bucket their time bucket (kinds groups, series).
	GroupBy []string     `json:"group_by,omitempty"`
	Bucket  string       `json:"bucket,omitempty"`
	Groups  []EventGroup `json:"groups,omitempty"`

	Rate *Rate `json:"rate,omitempty"`

	// Anchor is the event a chain, before, after or last question is about.
	Anchor *Event `json:"anchor,omitempty"`
	// Causes is the anchor's chain of causes, its direct cause first; Effects what it
	// caused, transitively, in seq order (kind chain).
	Causes  []Event `json:"causes,omitempty"`
	Effects []Event `json:"effects,omitempty"`
	// Window is the context window around the anchor, as in the interpretation;
	// Events holds its events (kind chain).
	Window string `json:"window,omitempty"`

	// Agents, Nodes and Cluster are the present state (kind state): the agents or
	// nodes asked about, and the cluster's health when asked.
	Agents  []Agent         `json:"agents,omitempty"`
	Nodes   []Node          `json:"nodes,omitempty"`
	Cluster *ClusterSummary `json:"cluster,omitempty"`

	// Reason says why there is no answer (kind none).
	Reason string `json:"reason,omitempty"`
}

// Rate is a ratio of two counts of events: spawn_failed over spawn_requested.
type Rate struct {
	Numerator   EventTypeCount `json:"numerator"`
	Denominator EventTypeCount `json:"denominator"`
	// Value is Numerator/Denominator, between 0 and 1; nil when Denominator is 0.
	Value *float64 `json:"value"`
}

// EventTypeCount is the count of events of one type.
type EventTypeCount struct {
	Type  string `json:"type"`
	Count uint64 `json:"count"`
}

// ClusterSummary is the cluster's health now, with the counts behind it.
type ClusterSummary struct {
	// Health is "healthy", "degraded" or "critical"; "" while no agent is registered.
	Health  string       `json:"health"`
	Servers int          `json:"servers"`
	Leader  string       `json:"leader"`
	Agents  StatusAgents `json:"agents"`
	Nodes   StatusNodes  `json:"nodes"`
}

// Ask asks a question in plain English. A question the server cannot answer is
// no error: the response says why, in Answer.Reason and Summary. POST /v1/ask
func (c *Client) Ask(ctx context.Context, req *AskRequest) (*AskResponse, error) {
	var out AskResponse
	if err := c.call(ctx, http.MethodPost, "/v1/ask", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
