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
)

// The query side of the event pipeline: GET /v1/events, GET /v1/event/SEQ,
// GET /v1/events/aggregate, GET /v1/events/types (and GET /v1/event/stream, in
// events_stream.go). Any server answers. The handlers parse the request, hand the
// engine (eventquery/) a view of this server's state, and write out its answer.

// requestView returns a view of the event pipeline as this server's state holds it
// now, with the event stores to read. A view is taken before a store is asked: see
// the eventquery package.
func (s *Server) requestView() (*eventquery.View, error) {
	state := s.fsm.State()
	meta, err := state.EventMeta()
	if err != nil {
		return nil, err
	}
	v := &eventquery.View{
		LastSeq: meta.LastSeq, ShippedSeq: meta.ShippedSeq, Outbox: state,
		Recent: s.feed.get, RecentSpan: feedSize,
	}
	v.Store, v.Missing, v.StoreErr = s.readStores(meta)
	return v, nil
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
	params, ok := s.eventParams(w, r)
	if !ok {
		return
	}
	q, err := eventquery.ParseList(params, time.Now())
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

// eventParams returns the query parameters of an event query with the names in them
// resolved (names.go), or writes the error and returns false: 404 for an entity the
// grid has never known, 400 for other mistakes.
func (s *Server) eventParams(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q := r.URL.Query()
	// stale is the router's (a follower may answer from its own state), not a filter.
	q.Del("stale")
	if q.Get("entity") == "" && q.Get("node") == "" {
		q.Del("entity") // "entity=" names nothing
		return q, true
	}
	names, err := s.knownNames()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return nil, false
	}
	q, err = resolveNames(q, names)
	var unknown *unknownEntityError
	switch {
	case errors.As(err, &unknown):
		writeError(w, http.StatusNotFound, err)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, err)
		return nil, false
	}
	return q, true
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
	params, ok := s.eventParams(w, r)
	if !ok {
		return
	}
	q, err := eventquery.ParseCount(params, time.Now())
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

// handleEventTypes lists the event types with their severities, so that a client can
// filter and colour events by severity as the CLI does, without a copy of the table.
func (s *Server) handleEventTypes(w http.ResponseWriter, r *http.Request) {
	out := make([]api.EventType, len(events.Types))
	for i, t := range events.Types {
		out[i] = api.EventType{Type: t, Severity: t.Severity()}
	}
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
