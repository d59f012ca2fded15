package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sutragrid/grid/answer"
	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/auth"
)

// POST /v1/ask answers a question in plain English: package ask interprets it and
// package answer runs the interpretation against this server's own HTTP API, so
// that every query an answer lists is one a user could run and would get the same
// result from, under the same authorization.

// maxQuestion bounds a question: longer ones are unanswerable, not an error, and
// the bound keeps the parser's work small.
const maxQuestion = 10 << 10

func (s *Server) handleAsk(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.ask.Observe(time.Since(start).Seconds()) }()
	var req api.AskRequest
	if !decodeBody(w, r, "question", &req) {
		return
	}
	// The clock's next whole second: every event so far is before it, and the
	// answer's times and queries read without a fraction.
	now := time.Now().Truncate(time.Second).Add(time.Second)
	if req.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Now)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("now must be an RFC 3339 time such as 2026-03-05T09:15:00Z, not %q", req.Now))
			return
		}
		now = t
	}
	question := req.Question
	if len(question) > maxQuestion {
		// The parser refuses it as too long; it need not see all of it.
		question = strings.ToValidUTF8(question[:maxQuestion+1], "")
	}
	names, err := s.askNames.get(s.raft.AppliedIndex(), s.knownNames)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	resp, err := answer.Run(r.Context(), s.selfClient(r), question, now, names)
	if err != nil {
		writeError(w, httpStatusOf(err), fmt.Errorf("answering %q: %w", shorten(req.Question, 80), err))
		return
	}
	resp.Question = req.Question
	writeJSON(w, http.StatusOK, resp)
}

// namesCache keeps the names of the state at one Raft index, indexed for lookup,
// so that questions between two changes of the state share one index instead of
// building one each.
type namesCache struct {
	mu    sync.Mutex
	at    uint64 // the applied index names were read at; 0: none yet
	names ask.Names
}

// get returns the names at applied index at, reading them with read when the state
// has moved on since. The state read may be a little newer than at: the next change
// of the index reads it again.
func (c *namesCache) get(at uint64, read func() (ask.Names, error)) (ask.Names, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != 0 && c.at == at {
		return c.names, nil
	}
	names, err := read()
	if err != nil {
		return ask.Names{}, err
	}
	c.at, c.names = at, names.Indexed()
	return c.names, nil
}

// selfClient returns an API client whose requests this server's HTTP handler
// serves in process, with the token of r: the answer's queries are checked and
// routed exactly as the same requests from outside would be, without a socket.
func (s *Server) selfClient(r *http.Request) *api.Client {
	t := &handlerTransport{h: s.http.Handler, token: r.Header.Get(auth.TokenHeader)}
	c, _ := api.NewClient(&api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: &http.Client{Transport: t}})
	return c
}

// handlerTransport is an http.RoundTripper that serves each request with h. The
// recorder of net/http/httptest holds the response: answers' requests are small
// and bounded (package answer caps them), and it is the standard library's
// complete ResponseWriter.
type handlerTransport struct {
	h     http.Handler
	token string
}

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if t.token != "" {
		req.Header.Set(auth.TokenHeader, t.token)
	}
	req.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// httpStatusOf passes on the status of a failed query: a 503 while there is no
// leader stays a 503, so that clients retry it as they would the query, and a 403 (the
// caller's token does not allow a query the answer needs) stays a 403.
func httpStatusOf(err error) int {
	if se, ok := err.(*api.StatusError); ok && (se.Code >= 500 || se.Code == http.StatusForbidden) {
		return se.Code
	}
	return http.StatusInternalServerError
}

// shorten cuts s to at most n runes for an error message.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
