package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/eventquery"
)

// GET /v1/event/stream: the events this server's state applies, in seq order, as
// server-sent events. The stream is tied to this server's feed, which wakes it for
// new events; eventquery decides where it starts and what to send for an event it
// cannot deliver.

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

	meta, err := s.fsm.State().EventMeta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	since, err := eventquery.StreamStart(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since_seq"), meta.LastSeq)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
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
	st.follow(ctx, sw, &eventquery.Follower{Next: since + 1, RetryFor: st.retryFor})
}

// follow sends the events from f.Next on, until ctx ends or the client goes.
func (st *eventStreamer) follow(ctx context.Context, sw *sseWriter, f *eventquery.Follower) {
	for {
		wake := st.s.feed.notify()
		v, err := st.s.requestView()
		if err != nil {
			return
		}
		if f.Next > v.LastSeq {
			if !st.sleep(ctx, sw, wake, st.recheck) {
				return
			}
			continue
		}
		e, findErr := v.Find(ctx, f.Next)
		if ctx.Err() != nil {
			return
		}
		if !st.send(ctx, sw, f.Step(e, findErr, time.Now())) {
			return
		}
	}
}

// send sends what step says, and waits before a retry. It returns false when the
// stream must end.
func (st *eventStreamer) send(ctx context.Context, sw *sseWriter, step eventquery.Step) bool {
	switch step.Action {
	case eventquery.Send:
		return sw.message(step.Event.Seq, string(step.Event.Type), step.Event) == nil
	case eventquery.Skip:
		return sw.message(step.Gap.Seq, "gap", api.StreamGap(*step.Gap)) == nil
	}
	if step.Gap != nil && sw.message(0, "gap", api.StreamGap(*step.Gap)) != nil {
		return false
	}
	return st.sleep(ctx, sw, nil, st.retryEvery)
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
