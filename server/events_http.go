package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/eventquery"
	"github.com/sutragrid/grid/events"
	gridpb "github.com/sutragrid/grid/proto"
)

// The query side of the event pipeline: GET /v1/events, GET /v1/event/SEQ,
// GET /v1/events/aggregate (and GET /v1/event/stream, in events_stream.go). Any server
// answers. The handlers parse the request, hand the engine (eventquery/) a view of
// this server's state, and write out its answer.

// eventStore returns the event store, or nil when none is configured.
func (s *Server) eventStore() (eventquery.Store, error) {
	if s.config.EventStore == "" {
		return nil, nil
	}
	conn, err := s.conns.Get(s.config.EventStore)
	if err != nil {
		return nil, fmt.Errorf("event store %s: %w", s.config.EventStore, err)
	}
	return eventquery.NewStorageStore(gridpb.NewStorageClient(conn)), nil
}

// eventView returns a view of the event pipeline as this server's state holds it
// now, with store (or storeErr, why it cannot be used). A view is taken before the
// store is asked: see the eventquery package.
func (s *Server) eventView(store eventquery.Store, storeErr error) (*eventquery.View, error) {
	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		return nil, err
	}
	return &eventquery.View{
		LastSeq: meta.LastSeq, ShippedSeq: meta.ShippedSeq, Outbox: state,
		Recent: s.feed.get, RecentSpan: feedSize,
		Store: store, StoreErr: storeErr,
	}, nil
}

// requestView returns the view one request reads.
func (s *Server) requestView() (*eventquery.View, error) {
	store, err := s.eventStore()
	return s.eventView(store, err)
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

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := eventquery.ParseList(s.nodeNamesToIDs(r.URL.Query()), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	v, err := s.requestView()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	page, err := v.List(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	setPartial(w, page.Partial)
	writeJSON(w, http.StatusOK, api.EventList{Events: eventList(page.Events), NextPageToken: page.NextPageToken})
}

// nodeNamesToIDs lets the node filter name nodes by name or ID: events are stored by
// node ID, and names are unique among every node the state holds, stopped ones too.
func (s *Server) nodeNamesToIDs(q url.Values) url.Values {
	v := q.Get("node")
	if v == "" {
		return q
	}
	nodes, err := s.fsm.State().Nodes("")
	if err != nil {
		return q
	}
	byName := make(map[string]string, len(nodes))
	for _, n := range nodes {
		byName[n.DisplayName()] = n.ID
	}
	items := strings.Split(v, ",")
	for i, item := range items {
		if id, ok := byName[strings.TrimSpace(item)]; ok {
			items[i] = id
		}
	}
	q.Set("node", strings.Join(items, ","))
	return q
}

func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("event seq must be a positive integer, not %q", r.PathValue("seq")))
		return
	}
	v, err := s.requestView()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	d, err := v.Detail(r.Context(), seq)
	switch {
	case errors.Is(err, eventquery.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
		return
	case errors.Is(err, eventquery.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	setPartial(w, d.Partial)
	writeJSON(w, http.StatusOK, api.EventDetail{Event: *d.Event, Causes: eventList(d.Causes), Effects: eventList(d.Effects)})
}

func (s *Server) handleEventCounts(w http.ResponseWriter, r *http.Request) {
	q, err := eventquery.ParseCount(s.nodeNamesToIDs(r.URL.Query()), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	v, err := s.requestView()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	c, err := v.Count(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := api.EventCounts{Groups: make([]api.EventGroup, len(c.Groups)), Total: c.Total, Truncated: c.Truncated}
	for i, g := range c.Groups {
		eg := api.EventGroup{Values: make(map[string]string, len(q.GroupBy)), Count: g.Count}
		for j, d := range q.GroupBy {
			eg.Values[string(d)] = g.Values[j]
		}
		if !g.Bucket.IsZero() {
			eg.Bucket = &g.Bucket
		}
		out.Groups[i] = eg
	}
	setPartial(w, c.Partial)
	writeJSON(w, http.StatusOK, out)
}

// eventList copies events into a list for JSON: never null.
func eventList(evs []*events.Event) []api.Event {
	out := make([]api.Event, len(evs))
	for i, e := range evs {
		out[i] = *e
	}
	return out
}
