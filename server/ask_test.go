package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
)

// TestAsk asks a follower questions about a real history: the follower passes
// the question to the leader, which answers it from its own API and the event store.
func TestAsk(t *testing.T) {
	es := startEvStore(t)
	c := newEvCluster(t, 3, es.addr)
	leader := c.leader()
	evSeed(t, leader)
	evApply(t, leader, &fsm.DeregisterAgent{Name: "a2"})
	evWaitShipped(t, leader)
	cl := apiClient(t, followers(leader, c.servers)[0])

	tests := []struct {
		question string
		intent   ask.Intent
		kind     api.AnswerKind
		summary  string
		events   string
	}{
		// a1's own events, newest first; the cluster's are not a1's.
		{"what happened on a1 today", ask.IntentHistory, api.AnswerEvents, "3 events for a1 today", "[6 4 1]"},
		// a2 has unregistered: the grid still knows the name.
		{"what happened on a2 today", ask.IntentHistory, api.AnswerEvents, "2 events for a2 today", "[8 3]"},
		{"how many agents registered today", ask.IntentCount, api.AnswerCount, "2 agent registrations today.", ""},
		{"why did a1 recover?", ask.IntentCause, api.AnswerChain, "Agent a1 recovered", "[1 2 4 5]"},
		{"which agents are healthy", ask.IntentState, api.AnswerState, "The only agent, a1, is healthy.", ""},
		{"what happened on agent-042", ask.IntentUnknownEntity, api.AnswerNone, "No such agent agent-042", ""},
		{"", ask.IntentUnanswerable, api.AnswerNone, "The question is empty", ""},
	}
	for _, tt := range tests {
		resp, err := cl.Ask(context.Background(), &api.AskRequest{Question: tt.question})
		if err != nil {
			t.Fatalf("%q: %v", tt.question, err)
		}
		if resp.Interpretation.Intent != tt.intent || resp.Answer.Kind != tt.kind {
			t.Errorf("%q: intent %s, answer %s; want %s, %s", tt.question, resp.Interpretation.Intent, resp.Answer.Kind, tt.intent, tt.kind)
		}
		if !strings.Contains(resp.Summary, tt.summary) {
			t.Errorf("%q: summary %q lacks %q", tt.question, resp.Summary, tt.summary)
		}
		if tt.events != "" && evSeqs(resp.Answer.Events) != tt.events {
			t.Errorf("%q: events %s, want %s", tt.question, evSeqs(resp.Answer.Events), tt.events)
		}
		if resp.Question != tt.question || resp.Queries == nil || len(resp.Partial) > 0 {
			t.Errorf("%q: question %q, queries %v, partial %v", tt.question, resp.Question, resp.Queries, resp.Partial)
		}
	}
}

func TestAskRefusesBadRequests(t *testing.T) {
	c := newCluster(t, 1)
	s := c.leader()
	for _, body := range []string{
		`{"question": "what happened today", "now": "yesterday"}`,
		`{"question": "what happened today", "then": "x"}`,
		`{"question": 3}`,
		`not json`,
	} {
		resp, err := http.Post("http://"+s.HTTPAddr()+"/v1/ask", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", body, resp.StatusCode)
		}
	}
	// 10 KB and more of text is a question too long to answer, not an error.
	resp, err := apiClient(t, s).Ask(context.Background(), &api.AskRequest{Question: strings.Repeat("what happened ", 2000)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Interpretation.Intent != ask.IntentUnanswerable {
		t.Errorf("a long question is %s, want unanswerable", resp.Interpretation.Intent)
	}
}

// TestAskQueriesCarryTheToken: the queries an answer runs are authorized like the
// caller's own requests, with the caller's token.
func TestAskQueriesCarryTheToken(t *testing.T) {
	var seen []string
	tokenRule := auth.AuthorizerFunc(func(_ context.Context, a auth.Access) error {
		if strings.HasPrefix(a.Endpoint, "GET /v1/events") {
			seen = append(seen, a.Token)
		}
		if a.Token != "secret" {
			return errors.New("no token")
		}
		return nil
	})
	c := newClusterWith(t, 1, func(cfg *Config) { cfg.Authorizer = tokenRule })
	s := c.leader()
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/v1/ask", strings.NewReader(`{"question": "what happened today"}`))
		req.Header.Set(auth.TokenHeader, token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusForbidden {
		t.Errorf("without a token: status %d, want 403", code)
	}
	if code := post("secret"); code != http.StatusOK {
		t.Errorf("with the token: status %d, want 200", code)
	}
	if len(seen) == 0 || seen[0] != "secret" {
		t.Errorf("the answer's queries carried tokens %q, want the caller's", seen)
	}
}
