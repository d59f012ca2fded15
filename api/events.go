package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// Event is one event of the cluster's history; see the events package for its fields.
type Event = events.Event

// PartialHeader is the response header by which a server says that its answer may
// be incomplete, and why: typically "event store unreachable: ...", when only the
// events still waiting in the replicated outbox could be read.
const PartialHeader = "X-Grid-Partial"

// EventQuery selects events. Zero fields select everything.
type EventQuery struct {
	// Agents, Nodes and Types each match any of their values; the three are combined
	// with AND.
	Agents []string
	Nodes  []string
	Types  []events.Type
	// Entities name agents (with their nodes), nodes (by name or ID) or "cluster"
	// (the cluster_* events), as the server resolves them against every name the grid
	// has known; not together with Agents or Nodes.
	Entities []string
	// Since (inclusive) and Until (exclusive) bound the events' time: an RFC 3339
	// time, or a Go duration such as "1h" meaning that long before now.
	Since, Until string
	// Limit is the most events to return: 0 means 100, at most 10000.
	Limit int
	// Ascending lists the oldest first; the default is the newest first.
	Ascending bool
	// PageToken continues an earlier listing with the same filters and order.
	PageToken string
}

// EventList is one page of events. GET /v1/events
type EventList struct {
	Events []Event `json:"events"`
	// NextPageToken continues the listing; "" when no more events match.
	NextPageToken string `json:"next_page_token"`
	// Partial, when not "", says why the list may lack events: the server sent it in
	// the X-Grid-Partial header.
	Partial string `json:"-"`
}

// Values returns the query parameters of GET /v1/events that ask for q.
func (q *EventQuery) Values() url.Values {
	v := url.Values{}
	setList(v, "agent", q.Agents)
	setList(v, "node", q.Nodes)
	setList(v, "entity", q.Entities)
	setList(v, "type", q.Types)
	setString(v, "since", q.Since)
	setString(v, "until", q.Until)
	setInt(v, "limit", q.Limit)
	if q.Ascending {
		v.Set("order", "asc")
	}
	setString(v, "page_token", q.PageToken)
	return v
}

// Events lists events, newest first unless q.Ascending. When the event store is
// unreachable the server answers with the events it still holds and says so in
// Partial. GET /v1/events?agent=&node=&entity=&type=&since=&until=&limit=&order=&page_token=
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventList, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", q.Values(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out EventList
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /v1/events: decode response: %w", err)
	}
	if out.Events == nil {
		out.Events = []Event{}
	}
	out.Partial = resp.Header.Get(PartialHeader)
	return &out, nil
}

// EventDetail is one event with its causal neighbours. GET /v1/event/SEQ
type EventDetail struct {
	Event Event `json:"event"`
	// Causes is the chain of events that led to Event, its direct cause first.
	Causes []Event `json:"causes"`
	// Effects are the events that name Event as their cause, in seq order.
	Effects []Event `json:"effects"`
	// Partial, when not "", says why Causes or Effects may be incomplete.
	Partial string `json:"-"`
}

// Event returns the event with seq, its causes and its effects; a 404 StatusError
// when there is no such event. GET /v1/event/SEQ
func (c *Client) Event(ctx context.Context, seq uint64) (*EventDetail, error) {
	path := "/v1/event/" + strconv.FormatUint(seq, 10)
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out EventDetail
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: decode response: %w", path, err)
	}
	if out.Causes == nil {
		out.Causes = []Event{}
	}
	if out.Effects == nil {
		out.Effects = []Event{}
	}
	out.Partial = resp.Header.Get(PartialHeader)
	return &out, nil
}

// EventCountQuery selects events to count, and how to group them. Zero fields
// select every event and count them in one group.
type EventCountQuery struct {
	// Agents, Nodes, Types and Severities each match any of their values; they are
	// combined with AND.
	Agents     []string
	Nodes      []string
	Types      []events.Type
	Severities []events.Severity
	// Entities select agents, nodes or the cluster, as in EventQuery.
	Entities []string
	// Since (inclusive) and Until (exclusive) bound the events' time, as in EventQuery.
	Since, Until string
	// GroupBy names what to count by: "type", "severity", "agent", "node".
	GroupBy []string
	// Bucket counts by time too, in buckets of 1m, 5m, 10m, 15m, 30m, 1h, 3h, 6h,
	// 12h, 1d or 7d aligned to the Unix epoch (UTC); "" means not by time.
	Bucket string
	// MaxGroups is the most groups to return: 0 means 1000, at most 100000.
	MaxGroups int
	// Top, if not 0, keeps the Top largest groups, by their count over all buckets.
	Top int
}

// EventGroup is one group of counted events.
type EventGroup struct {
	// Values holds the group's value of each GroupBy name; "" for events without one
	// (a cluster event has no agent).
	Values map[string]string `json:"values"`
	// Bucket is the start of the group's time bucket; nil without buckets.
	Bucket *time.Time `json:"bucket,omitempty"`
	Count  uint64     `json:"count"`
}

// EventCounts is the answer of GET /v1/events/aggregate.
type EventCounts struct {
	// Groups are ordered by bucket, then by count (highest first), then by values.
	Groups []EventGroup `json:"groups"`
	// Total counts every matching event, including those in groups left out.
	Total uint64 `json:"total"`
	// Truncated is true when more than MaxGroups groups existed.
	Truncated bool `json:"truncated"`
	// Partial, when not "", says why the counts may be short: the server sent it in
	// the X-Grid-Partial header.
	Partial string `json:"-"`
}

// Values returns the query parameters of GET /v1/events/aggregate that ask for q.
func (q *EventCountQuery) Values() url.Values {
	v := url.Values{}
	setList(v, "agent", q.Agents)
	setList(v, "node", q.Nodes)
	setList(v, "entity", q.Entities)
	setList(v, "type", q.Types)
	setList(v, "severity", q.Severities)
	setList(v, "group_by", q.GroupBy)
	setString(v, "since", q.Since)
	setString(v, "until", q.Until)
	setString(v, "bucket", q.Bucket)
	setInt(v, "max_groups", q.MaxGroups)
	setInt(v, "top", q.Top)
	return v
}

// EventCounts counts events, from the event store and the outbox alike. When the
// event store is unreachable the server counts the events it still holds and says so
// in Partial. GET /v1/events/aggregate?agent=&node=&entity=&type=&severity=&since=&until=&group_by=&bucket=&max_groups=&top=
func (c *Client) EventCounts(ctx context.Context, q EventCountQuery) (*EventCounts, error) {
	const path = "/v1/events/aggregate"
	resp, err := c.do(ctx, http.MethodGet, path, q.Values(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out EventCounts
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: decode response: %w", path, err)
	}
	if out.Groups == nil {
		out.Groups = []EventGroup{}
	}
	out.Partial = resp.Header.Get(PartialHeader)
	return &out, nil
}

// EventType is one of the event types, with its severity. GET /v1/events/types
type EventType struct {
	Type     events.Type     `json:"type"`
	Severity events.Severity `json:"severity"`
}

// EventTypes lists every event type with its severity, in the order of
// events.Types. Any server answers, with or without a leader. GET /v1/events/types
func (c *Client) EventTypes(ctx context.Context) ([]EventType, error) {
	var out []EventType
	err := c.get(ctx, "/v1/events/types", nil, &out)
	return out, err
}

// setList sets the query parameter name to the comma-separated vals, if any.
func setList[T ~string](v url.Values, name string, vals []T) {
	if len(vals) == 0 {
		return
	}
	s := make([]string, len(vals))
	for i, x := range vals {
		s[i] = string(x)
	}
	v.Set(name, strings.Join(s, ","))
}

// setString sets the query parameter name to val, unless it is "".
func setString(v url.Values, name, val string) {
	if val != "" {
		v.Set(name, val)
	}
}

// setInt sets the query parameter name to n, if it is positive: 0 means the server's
// default.
func setInt(v url.Values, name string, n int) {
	if n > 0 {
		v.Set(name, strconv.Itoa(n))
	}
}

// StreamGap reports an event that the server could not deliver in its place.
type StreamGap struct {
	Seq   uint64 `json:"seq"`
	Error string `json:"error"`
	// Retrying is true when the server tries again and will deliver the event (or a
	// final gap) next; false when the event is skipped and the stream goes on after it.
	Retrying bool `json:"retrying"`
}

// StreamItem is one item of an event stream: an event, or a gap, or (with neither)
// the position the stream starts after.
type StreamItem struct {
	Event *Event
	Gap   *StreamGap
	// Seq is the stream's position after this item: every event up to Seq was
	// delivered or reported as skipped. Resume a stream with sinceSeq = Seq.
	Seq uint64
}

// Event stream names beyond the event types.
const streamGapEvent = "gap"

// StreamEvents follows the cluster's events as they happen, in seq order without
// gaps, calling fn for each item until ctx ends (it then returns ctx.Err()), fn
// returns an error (returned as it is), or the connection drops (an error). With
// hasSince the stream starts right after sinceSeq, replaying the events since;
// otherwise it starts with the next new event. The first item carries only the
// position the stream starts after. GET /v1/event/stream?since_seq=N
func (c *Client) StreamEvents(ctx context.Context, sinceSeq uint64, hasSince bool, fn func(StreamItem) error) error {
	q := url.Values{}
	if hasSince {
		q.Set("since_seq", strconv.FormatUint(sinceSeq, 10))
	}
	// A stream lasts as long as the caller wants: no overall client timeout.
	hc := *c.http
	hc.Timeout = 0
	sc := &Client{base: c.base, http: &hc}
	resp, err := sc.do(ctx, http.MethodGet, "/v1/event/stream", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var last uint64 // the last event ID the stream sent, as SSE keeps it
	err = readSSE(resp.Body, func(m sseMessage) error {
		item, ok, err := streamItem(m, &last)
		if err != nil || !ok {
			return err
		}
		return fn(item)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("event stream ended")
	}
	return err
}

// streamItem turns one server-sent message into an item; ok is false for messages
// that carry nothing for the caller. last is the stream's last event ID, which an id
// field updates.
func streamItem(m sseMessage, last *uint64) (item StreamItem, ok bool, err error) {
	if m.hasID {
		seq, err := strconv.ParseUint(m.id, 10, 64)
		if err != nil {
			return item, false, fmt.Errorf("event stream: bad id %q", m.id)
		}
		*last = seq
	}
	item.Seq = *last
	switch {
	case m.event == streamGapEvent:
		var g StreamGap
		if err := json.Unmarshal(m.data, &g); err != nil {
			return item, false, fmt.Errorf("event stream: decode gap: %w", err)
		}
		item.Gap = &g
	case len(m.data) > 0:
		var e Event
		if err := json.Unmarshal(m.data, &e); err != nil {
			return item, false, fmt.Errorf("event stream: decode event: %w", err)
		}
		item.Event = &e
	case !m.hasID:
		return item, false, nil
	}
	return item, true, nil
}

// sseMessage is one message of a text/event-stream: the fields seen before a blank
// line. hasID says whether an id field was among them.
type sseMessage struct {
	id    string
	hasID bool
	event string
	data  []byte
}

// readSSE reads server-sent events from r and calls fn for each message. It returns
// nil at the end of the stream, or the first error of r or fn.
func readSSE(r io.Reader, fn func(sseMessage) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var (
		m       sseMessage
		data    bytes.Buffer
		pending bool
	)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if pending {
				m.data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				if err := fn(m); err != nil {
					return err
				}
			}
			m, pending = sseMessage{}, false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: keepalive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.id, m.hasID, pending = value, true, true
		case "event":
			m.event, pending = value, true
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			pending = true
		}
	}
	return sc.Err()
}
