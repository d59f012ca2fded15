package answer

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
)

// Source is the part of the HTTP API an answer reads. *api.Client implements it.
type Source interface {
	Events(ctx context.Context, q api.EventQuery) (*api.EventList, error)
	Event(ctx context.Context, seq uint64) (*api.EventDetail, error)
	EventCounts(ctx context.Context, q api.EventCountQuery) (*api.EventCounts, error)
	Agents(ctx context.Context) ([]api.Agent, error)
	Nodes(ctx context.Context, agent string) ([]api.Node, error)
	Status(ctx context.Context) (*api.Status, error)
}

// Limits on what one answer reads, so that a question costs a bounded number of
// requests whatever the history holds.
const (
	// MaxEvents is the most events an answer lists, and the most context events
	// around an anchor on each side.
	MaxEvents = 50
	// maxEffects is the most effects a chain follows, one request each.
	maxEffects = 20
)

// Run interprets question at now against names (every agent and node the grid
// has known), runs the interpretation against src and returns the response. An
// error is a failed request: a question it cannot answer is a response whose
// answer says why.
func Run(ctx context.Context, src Source, question string, now time.Time, names ask.Names) (*api.AskResponse, error) {
	now = now.UTC()
	in := ask.Interpret(question, now, names)
	r := &run{ctx: ctx, src: src, in: in, now: now, names: newDirectory(names), queries: []string{}}
	var err error
	switch in.Intent {
	case ask.IntentHistory, ask.IntentList:
		err = r.events()
	case ask.IntentCount:
		err = r.count()
	case ask.IntentTop:
		err = r.top()
	case ask.IntentRate:
		err = r.rate()
	case ask.IntentCause, ask.IntentBefore, ask.IntentAfter, ask.IntentChain:
		err = r.chain()
	case ask.IntentLast:
		err = r.last()
	case ask.IntentState:
		err = r.state()
	default: // unanswerable, unknown_entity, action
		r.answer = api.Answer{Kind: api.AnswerNone, Reason: in.Reason}
		r.summary = sentence(in.Reason)
	}
	if err != nil {
		return nil, err
	}
	return &api.AskResponse{
		Question:       question,
		Now:            now,
		Interpretation: in,
		Queries:        r.queries,
		Answer:         r.answer,
		Summary:        r.summary,
		Partial:        r.partial,
	}, nil
}

// run is one answer in the making.
type run struct {
	ctx   context.Context
	src   Source
	in    ask.Interpretation
	now   time.Time
	names directory

	queries []string
	partial []string
	answer  api.Answer
	summary string
}

// listEvents runs GET /v1/events and records it.
func (r *run) listEvents(q api.EventQuery) (*api.EventList, error) {
	r.record("/v1/events", q.Values())
	l, err := r.src.Events(r.ctx, q)
	if err != nil {
		return nil, err
	}
	r.notePartial(l.Partial)
	return l, nil
}

// countEvents runs GET /v1/events/aggregate and records it.
func (r *run) countEvents(q api.EventCountQuery) (*api.EventCounts, error) {
	r.record("/v1/events/aggregate", q.Values())
	c, err := r.src.EventCounts(r.ctx, q)
	if err != nil {
		return nil, err
	}
	r.notePartial(c.Partial)
	return c, nil
}

// detail runs GET /v1/event/SEQ and records it.
func (r *run) detail(seq uint64) (*api.EventDetail, error) {
	r.record("/v1/event/"+strconv.FormatUint(seq, 10), nil)
	d, err := r.src.Event(r.ctx, seq)
	if err != nil {
		return nil, err
	}
	r.notePartial(d.Partial)
	return d, nil
}

// record adds a GET request to the queries, written as a user would type it: the
// colons of times and the commas of lists are legal in a query and left as they
// are, so the query reads like the API's documentation.
func (r *run) record(path string, v url.Values) {
	q := v.Encode()
	q = strings.NewReplacer("%3A", ":", "%2C", ",").Replace(q)
	if q != "" {
		path += "?" + q
	}
	r.queries = append(r.queries, "GET "+path)
}

func (r *run) notePartial(reason string) {
	if reason != "" && !slices.Contains(r.partial, reason) {
		r.partial = append(r.partial, reason)
	}
}
