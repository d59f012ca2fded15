package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/fsm"
	gridpb "github.com/sutragrid/grid/proto"
)

// The query side of the event pipeline: GET /v1/events, GET /v1/event/SEQ and
// GET /v1/event/stream. Any server answers. An event is in one of three places: the
// feed (the last events this server's FSM derived, a cache), the replicated outbox
// (derived and not yet shipped) and the event store (shipped). Every reader takes its
// view of the FSM state before it asks the event store: an event missing from the
// outbox in that view was shipped before it, so the store holds it, and no event
// falls between the two while the shipper moves it.

// Limits of GET /v1/events.
const (
	defaultEventLimit = 100
	maxEventLimit     = 10000
)

const (
	// eventStoreTimeout bounds each call the query endpoints make to the event store.
	eventStoreTimeout = 10 * time.Second
	// maxCauseDepth bounds the chain of causes GET /v1/event/SEQ follows.
	maxCauseDepth = 64
	// maxEffects bounds the effects GET /v1/event/SEQ asks the event store for.
	maxEffects = 10000
)

// Errors of findEvent.
var (
	// errEventNotFound: the event store answered that it does not hold the event.
	errEventNotFound = errors.New("event not found")
	// errNoEventStore: the event is neither in the feed nor the outbox, and this
	// server has no event store to ask.
	errNoEventStore = errors.New("the event was shipped, and this server has no event store configured (-event-store) to read it from")
)

// eventStore returns a client of the event store, or nil when none is configured.
func (s *Server) eventStore() (gridpb.StorageClient, error) {
	if s.config.EventStore == "" {
		return nil, nil
	}
	conn, err := s.conns.Get(s.config.EventStore)
	if err != nil {
		return nil, fmt.Errorf("event store %s: %w", s.config.EventStore, err)
	}
	return gridpb.NewStorageClient(conn), nil
}

// storeError describes a failed call to the event store for people.
func storeError(err error) string {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return "event store unreachable: " + status.Convert(err).Message()
	}
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("event store error: %s: %s", st.Code(), st.Message())
	}
	return "event store error: " + err.Error()
}

// findEvent looks the event with seq up in the feed, then in state's outbox, then in
// the event store (store may be nil). It returns errEventNotFound when the store does
// not hold it, errNoEventStore when there is no store to ask, and another error when
// the store could not answer.
func (s *Server) findEvent(ctx context.Context, state *fsm.State, store gridpb.StorageClient, seq uint64) (*events.Event, error) {
	if e := s.feed.get(seq); e != nil {
		return e, nil
	}
	e, err := state.OutboxEvent(seq)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	if e != nil {
		return e, nil
	}
	if store == nil {
		return nil, errNoEventStore
	}
	cctx, cancel := context.WithTimeout(ctx, eventStoreTimeout)
	defer cancel()
	resp, err := store.GetConcept(cctx, &gridpb.GetConceptRequest{Id: events.EventID(seq)})
	if status.Code(err) == codes.NotFound {
		return nil, errEventNotFound
	}
	if err != nil {
		return nil, errors.New(storeError(err))
	}
	return decodeEventConcept(resp.GetConcept())
}

// decodeEventConcept reads an event back from its concept in the event store.
func decodeEventConcept(c *gridpb.Concept) (*events.Event, error) {
	var e events.Event
	if err := json.Unmarshal(c.GetContent(), &e); err != nil {
		return nil, fmt.Errorf("concept %s: decode event: %w", c.GetId(), err)
	}
	if seq, ok := events.SeqOf(c.GetId()); !ok || seq != e.Seq {
		return nil, fmt.Errorf("concept %s holds event %d", c.GetId(), e.Seq)
	}
	return &e, nil
}

// setPartial sets the X-Grid-Partial header from the reasons an answer may be
// incomplete, on one line.
func setPartial(w http.ResponseWriter, reasons []string) {
	if len(reasons) == 0 {
		return
	}
	v := strings.Join(reasons, "; ")
	v = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, v)
	w.Header().Set(api.PartialHeader, v)
}

// ---- GET /v1/events ----

// eventFilter is a parsed GET /v1/events request.
type eventFilter struct {
	agents, nodes []string
	types         []events.Type
	// start (inclusive) and end (exclusive) bound the events' time; zero is unbounded.
	start, end time.Time
	desc       bool
	limit      int
	// after, from the page token, is where the previous page ended.
	after *eventCursor
}

// eventCursor is a position in a listing: the time and seq of the last event of a
// page, the order of the store's time index. F fingerprints the filters and the order
// so that a token is not used with another listing; the time range is left out, as
// "since=1h" means another instant on every page.
type eventCursor struct {
	V int    `json:"v"`
	F uint64 `json:"f"`
	T int64  `json:"t"`
	S uint64 `json:"s"`
}

const eventCursorVersion = 1

var eventQueryParams = map[string]bool{
	"agent": true, "node": true, "type": true, "since": true, "until": true,
	"limit": true, "order": true, "page_token": true,
}

// parseEventFilter parses the query of GET /v1/events; relative times count back
// from now.
func parseEventFilter(q url.Values, now time.Time) (*eventFilter, error) {
	for k := range q {
		if !eventQueryParams[k] {
			return nil, fmt.Errorf("unknown query parameter %q (known: agent, node, type, since, until, limit, order, page_token)", k)
		}
	}
	f := &eventFilter{desc: true, limit: defaultEventLimit}
	f.agents = splitList(q.Get("agent"))
	f.nodes = splitList(q.Get("node"))
	var err error
	if f.types, err = events.ParseTypes(q.Get("type")); err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	if f.start, err = parseEventTime("since", q.Get("since"), now); err != nil {
		return nil, err
	}
	if f.end, err = parseEventTime("until", q.Get("until"), now); err != nil {
		return nil, err
	}
	if !f.start.IsZero() && !f.end.IsZero() && !f.start.Before(f.end) {
		return nil, fmt.Errorf("since (%s) must be before until (%s)", f.start.Format(time.RFC3339Nano), f.end.Format(time.RFC3339Nano))
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventLimit {
			return nil, fmt.Errorf("limit must be a number from 1 to %d, not %q", maxEventLimit, v)
		}
		f.limit = n
	}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		f.desc = false
	default:
		return nil, fmt.Errorf("order must be asc or desc, not %q", q.Get("order"))
	}
	if tok := q.Get("page_token"); tok != "" {
		c, err := decodeEventCursor(tok)
		if err != nil {
			return nil, err
		}
		if c.F != f.fingerprint() {
			return nil, errors.New("page_token belongs to a listing with other filters or another order")
		}
		f.after = c
	}
	return f, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseEventTime parses an RFC 3339 time, or a duration that far before now.
func parseEventTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time (2024-05-01T12:00:00Z) or a positive duration such as 1h, not %q", name, v)
	}
	return now.Add(-d), nil
}

func (f *eventFilter) fingerprint() uint64 {
	h := fnv.New64a()
	for _, list := range [][]string{f.agents, f.nodes, typeStrings(f.types)} {
		vs := append([]string(nil), list...)
		sort.Strings(vs)
		for _, v := range vs {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
		h.Write([]byte{0xff})
	}
	if f.desc {
		h.Write([]byte{1})
	}
	return h.Sum64()
}

func typeStrings(ts []events.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func encodeEventCursor(c eventCursor) string {
	c.V = eventCursorVersion
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeEventCursor(tok string) (*eventCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var c eventCursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.V != eventCursorVersion {
		return nil, errors.New("page_token is malformed")
	}
	return &c, nil
}

// eventKey orders events as the event store's time index does: by time, then by ID,
// which sorts as the seq.
type eventKey struct {
	t   int64
	seq uint64
}

func keyOf(e *events.Event) eventKey { return eventKey{e.Timestamp.UnixNano(), e.Seq} }

func (a eventKey) less(b eventKey) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

// matches reports whether e passes the filters and the time range.
func (f *eventFilter) matches(e *events.Event) bool {
	if len(f.agents) > 0 && !contains(f.agents, e.AgentID) {
		return false
	}
	if len(f.nodes) > 0 && !contains(f.nodes, e.NodeID) {
		return false
	}
	if len(f.types) > 0 && !contains(f.types, e.Type) {
		return false
	}
	if !f.start.IsZero() && e.Timestamp.Before(f.start) {
		return false
	}
	if !f.end.IsZero() && !e.Timestamp.Before(f.end) {
		return false
	}
	return true
}

// pastCursor reports whether e comes after the previous page's end, in f's order.
func (f *eventFilter) pastCursor(e *events.Event) bool {
	if f.after == nil {
		return true
	}
	c := eventKey{f.after.T, f.after.S}
	if f.desc {
		return keyOf(e).less(c)
	}
	return c.less(keyOf(e))
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// storeRequest is the event store query for f, narrowed to the events at or past
// the cursor's time (the cursor's own and earlier events at that time are skipped by
// pastCursor).
func (f *eventFilter) storeRequest() *gridpb.QueryRequest {
	req := &gridpb.QueryRequest{
		Filters: []*gridpb.Filter{{Attribute: "kind", Values: []string{events.KindEvent}}},
		Order:   gridpb.Order_ORDER_ASCENDING,
		Limit:   uint32(f.limit),
	}
	if f.desc {
		req.Order = gridpb.Order_ORDER_DESCENDING
	}
	if len(f.agents) > 0 {
		req.Filters = append(req.Filters, &gridpb.Filter{Attribute: "agent_id", Values: f.agents})
	}
	if len(f.nodes) > 0 {
		req.Filters = append(req.Filters, &gridpb.Filter{Attribute: "node_id", Values: f.nodes})
	}
	if len(f.types) > 0 {
		req.Filters = append(req.Filters, &gridpb.Filter{Attribute: "type", Values: typeStrings(f.types)})
	}
	start, end := f.start, f.end
	if f.after != nil {
		t := time.Unix(0, f.after.T)
		if f.desc {
			if next := t.Add(time.Nanosecond); end.IsZero() || next.Before(end) {
				end = next
			}
		} else if start.IsZero() || t.After(start) {
			start = t
		}
	}
	if !start.IsZero() {
		req.Start = timestamppb.New(start)
	}
	if !end.IsZero() {
		req.End = timestamppb.New(end)
	}
	return req
}

// queryStore returns up to f.limit events from the event store past f's cursor, in
// f's order, and whether more match. Concepts it cannot decode are counted, not
// returned.
func queryStore(ctx context.Context, store gridpb.StorageClient, f *eventFilter) (out []*events.Event, more bool, bad int, err error) {
	req := f.storeRequest()
	for {
		cctx, cancel := context.WithTimeout(ctx, eventStoreTimeout)
		resp, err := store.Query(cctx, req)
		cancel()
		if err != nil {
			return nil, false, bad, err
		}
		for _, c := range resp.GetConcepts() {
			e, err := decodeEventConcept(c)
			if err != nil {
				bad++
				continue
			}
			if f.pastCursor(e) {
				out = append(out, e)
			}
		}
		switch {
		case resp.GetNextPageToken() == "":
			return out, false, bad, nil
		case len(out) >= f.limit:
			return out, true, bad, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	f, err := parseEventFilter(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// The outbox first: see the comment at the top of this file.
	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	waiting, err := state.Outbox(0, math.MaxInt)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("read outbox: %w", err))
		return
	}
	var (
		found   []*events.Event
		partial []string
		more    bool
	)
	for _, e := range waiting {
		if f.matches(e) && f.pastCursor(e) {
			found = append(found, e)
		}
	}
	store, err := s.eventStore()
	switch {
	case err != nil:
		partial = append(partial, err.Error())
	case store == nil && meta.ShippedSeq > 0:
		partial = append(partial, fmt.Sprintf("no event store configured on this server (-event-store): events up to seq %d were shipped and cannot be read here", meta.ShippedSeq))
	case store != nil:
		stored, storeMore, bad, err := queryStore(r.Context(), store, f)
		if err != nil {
			partial = append(partial, storeError(err))
			break
		}
		if bad > 0 {
			partial = append(partial, fmt.Sprintf("%d event(s) in the event store could not be decoded", bad))
		}
		found, more = append(found, stored...), storeMore
	}

	seen := make(map[uint64]bool, len(found))
	list := found[:0]
	for _, e := range found {
		if !seen[e.Seq] {
			seen[e.Seq] = true
			list = append(list, e)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if f.desc {
			return keyOf(list[j]).less(keyOf(list[i]))
		}
		return keyOf(list[i]).less(keyOf(list[j]))
	})
	if len(list) > f.limit {
		list, more = list[:f.limit], true
	}
	out := api.EventList{Events: make([]api.Event, len(list))}
	for i, e := range list {
		out.Events[i] = *e
	}
	if more && len(list) > 0 {
		last := keyOf(list[len(list)-1])
		out.NextPageToken = encodeEventCursor(eventCursor{F: f.fingerprint(), T: last.t, S: last.seq})
	}
	setPartial(w, partial)
	writeJSON(w, http.StatusOK, out)
}

// ---- GET /v1/event/{seq} ----

func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("event seq must be a positive integer, not %q", r.PathValue("seq")))
		return
	}
	ctx := r.Context()
	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	store, storeErr := s.eventStore()
	if storeErr != nil {
		store = nil
	}
	find := func(seq uint64) (*events.Event, error) {
		e, err := s.findEvent(ctx, state, store, seq)
		if errors.Is(err, errNoEventStore) && storeErr != nil {
			err = storeErr
		}
		return e, err
	}
	e, err := find(seq)
	switch {
	case errors.Is(err, errEventNotFound), err != nil && seq > meta.LastSeq:
		writeError(w, http.StatusNotFound, fmt.Errorf("event %d not found", seq))
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("event %d: %w", seq, err))
		return
	}
	var partial []string
	out := api.EventDetail{Event: *e, Causes: []api.Event{}, Effects: []api.Event{}}

	// Causes: follow caused_by up the chain.
	visited := map[uint64]bool{seq: true}
	for cur := e; cur.CausedBy != 0 && !visited[cur.CausedBy]; {
		if len(out.Causes) == maxCauseDepth {
			partial = append(partial, fmt.Sprintf("the chain of causes is longer than %d events", maxCauseDepth))
			break
		}
		visited[cur.CausedBy] = true
		c, err := find(cur.CausedBy)
		if err != nil {
			partial = append(partial, fmt.Sprintf("cause %d: %v", cur.CausedBy, err))
			break
		}
		out.Causes = append(out.Causes, *c)
		cur = c
	}

	// Effects: the events that name seq as their cause, wherever they are.
	effects := map[uint64]*events.Event{}
	waiting, err := state.Outbox(seq, math.MaxInt)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("read outbox: %w", err))
		return
	}
	for _, x := range waiting {
		if x.CausedBy == seq {
			effects[x.Seq] = x
		}
	}
	for q := seq + 1; q <= meta.LastSeq && q <= seq+feedSize; q++ {
		if x := s.feed.get(q); x != nil && x.CausedBy == seq {
			effects[x.Seq] = x
		}
	}
	switch {
	case storeErr != nil:
		partial = append(partial, storeErr.Error())
	case store == nil && meta.ShippedSeq > seq:
		partial = append(partial, "no event store configured on this server (-event-store): effects already shipped cannot be read here")
	case store != nil:
		cctx, cancel := context.WithTimeout(ctx, eventStoreTimeout)
		resp, err := store.Neighbors(cctx, &gridpb.NeighborsRequest{
			Id: events.EventID(seq), Direction: gridpb.Direction_DIRECTION_IN,
			Types: []string{events.AssocCausedBy}, Limit: maxEffects,
		})
		cancel()
		if err != nil {
			partial = append(partial, storeError(err))
			break
		}
		for _, n := range resp.GetNeighbors() {
			q, ok := events.SeqOf(n.GetId())
			if !ok || effects[q] != nil {
				continue
			}
			x, err := find(q)
			if err != nil {
				partial = append(partial, fmt.Sprintf("effect %d: %v", q, err))
				continue
			}
			effects[q] = x
		}
	}
	for _, x := range effects {
		out.Effects = append(out.Effects, *x)
	}
	sort.Slice(out.Effects, func(i, j int) bool { return out.Effects[i].Seq < out.Effects[j].Seq })
	setPartial(w, partial)
	writeJSON(w, http.StatusOK, out)
}

// ---- GET /v1/event/stream ----

// eventStreamer serves one event stream. Its durations are fields so that tests can
// shorten them.
type eventStreamer struct {
	s *Server
	// recheck is how often the stream looks for new events without a wake-up.
	recheck time.Duration
	// keepalive is the longest the stream stays silent: a comment keeps proxies and
	// clients from closing an idle connection.
	keepalive time.Duration
	// retryEvery and retryFor: how often, and for how long at most, the stream asks
	// again for an event that the event store could not deliver, before it skips it.
	retryEvery, retryFor time.Duration
}

func (s *Server) handleEventStream(w http.ResponseWriter, r *http.Request) {
	st := &eventStreamer{s: s, recheck: time.Second, keepalive: 15 * time.Second,
		retryEvery: time.Second, retryFor: 30 * time.Second}
	st.serve(w, r)
}

// streamGap is the data of a gap message.
type streamGap struct {
	Seq      uint64 `json:"seq"`
	Error    string `json:"error"`
	Retrying bool   `json:"retrying"`
}

// sseWriter writes server-sent events and flushes each.
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	last time.Time // when it last wrote
}

func (sw *sseWriter) write(s string) error {
	if _, err := sw.w.Write([]byte(s)); err != nil {
		return err
	}
	sw.last = time.Now()
	return sw.rc.Flush()
}

// message writes one message; id 0 leaves the id field out.
func (sw *sseWriter) message(id uint64, event string, data any) error {
	var b strings.Builder
	if id != 0 {
		fmt.Fprintf(&b, "id: %d\n", id)
	}
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	// Compact JSON holds no newline, so one data line carries it.
	fmt.Fprintf(&b, "data: %s\n\n", raw)
	return sw.write(b.String())
}

func (st *eventStreamer) serve(w http.ResponseWriter, r *http.Request) {
	s := st.s
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // end streams when the server stops
	defer stop()

	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	since := meta.LastSeq
	// EventSource sends Last-Event-ID when it reconnects: it is newer than the URL's.
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if since, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("Last-Event-ID must be an event seq, not %q", v))
			return
		}
	} else if v := r.URL.Query().Get("since_seq"); v != "" {
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("since_seq must be an event seq (0 or more), not %q", v))
			return
		}
	}
	store, storeErr := s.eventStore()
	if storeErr != nil {
		s.logger.Named("http").Warn("event stream without an event store", "error", storeErr)
		store = nil
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	// A message with only an id tells the client where the stream starts, so that it
	// can resume from there even if no event comes before the connection drops.
	if err := sw.write(fmt.Sprintf("id: %d\n\n", since)); err != nil {
		return
	}

	var (
		cursor = since + 1
		// storeDown is when the event store began to fail, while it fails.
		storeDown time.Time
		// gapSent is the seq of the last retrying gap sent.
		gapSent uint64
	)
	for {
		wake := s.feed.notify()
		state := s.fsm.State()
		meta, err := state.EventMeta()
		if err != nil {
			return
		}
		if cursor <= meta.LastSeq {
			e, err := s.findEvent(ctx, state, store, cursor)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errNoEventStore) && storeErr != nil {
				err = storeErr
			}
			switch {
			case err == nil:
				storeDown = time.Time{}
				if sw.message(e.Seq, string(e.Type), e) != nil {
					return
				}
				cursor++
				continue
			case errors.Is(err, errEventNotFound), errors.Is(err, errNoEventStore):
				// Gone for good (retention removed it, or it cannot be read here): say
				// so, and go on after it.
				if sw.message(cursor, "gap", streamGap{Seq: cursor, Error: gapReason(cursor, err)}) != nil {
					return
				}
				cursor++
				continue
			}
			// The store could not answer: the event exists, so wait for it, for a while.
			now := time.Now()
			if storeDown.IsZero() {
				storeDown = now
			}
			if now.Sub(storeDown) >= st.retryFor {
				msg := fmt.Sprintf("%v; skipped after retrying for %s", err, st.retryFor)
				if sw.message(cursor, "gap", streamGap{Seq: cursor, Error: msg}) != nil {
					return
				}
				cursor++
				continue
			}
			if gapSent != cursor {
				gapSent = cursor
				if sw.message(0, "gap", streamGap{Seq: cursor, Error: err.Error(), Retrying: true}) != nil {
					return
				}
			}
			if !st.sleep(ctx, sw, nil, st.retryEvery) {
				return
			}
			continue
		}
		if !st.sleep(ctx, sw, wake, st.recheck) {
			return
		}
	}
}

// gapReason says why the event with seq cannot be delivered at all.
func gapReason(seq uint64, err error) string {
	if errors.Is(err, errEventNotFound) {
		return fmt.Sprintf("event %d is no longer in the event store (removed by retention?)", seq)
	}
	return fmt.Sprintf("event %d: %v", seq, err)
}

// sleep waits for wake, d, or the end of ctx, sending a keepalive comment when the
// stream has been silent for st.keepalive. It returns false when the stream must end.
func (st *eventStreamer) sleep(ctx context.Context, sw *sseWriter, wake <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-t.C:
	}
	if time.Since(sw.last) >= st.keepalive {
		return sw.write(": keepalive\n\n") == nil
	}
	return true
}
