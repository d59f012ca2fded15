package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
	"github.com/sutragrid/grid/ui"
)

// The UI loads from a server that has no leader: its files are the server's own, and
// what it needs to show a problem (the event types) answers too; the requests that
// need the leader fail, which the UI shows in its banner.
func TestUIServedWithoutLeader(t *testing.T) {
	// One server of an expected three: it never elects a leader.
	s := startServer(t, testConfig(t, "lonely", t.TempDir(), 3))
	base := "http://" + s.HTTPAddr()
	noRedirect := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	for _, tc := range []struct{ path, ctype, body string }{
		{"/ui/", "text/html; charset=utf-8", "js/main.js"},
		{"/ui/js/main.js", "text/javascript; charset=utf-8", "import "},
	} {
		resp, body := do("GET", tc.path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("Content-Security-Policy") != ui.ContentSecurityPolicy || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", tc.path, resp.Header)
		}
	}
	// "/" alone leads to the UI, as does "/ui".
	for path, want := range map[string]string{"/": "/ui/", "/ui": "/ui/"} {
		resp, _ := do("GET", path)
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want a redirect to %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// Everything else that is not a route is still a 404 with a JSON error.
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/nope"}, {"GET", "/nope"}, {"POST", "/"}, {"GET", "/ui/nope.js"}, {"GET", "/v1/"},
	} {
		resp, body := do(r.method, r.path)
		var e struct{ Error string }
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %q, want 404 with an error", r.method, r.path, resp.StatusCode, body)
		}
	}

	ctx := context.Background()
	cl := apiClient(t, s)
	types, err := cl.EventTypes(ctx)
	if err != nil {
		t.Fatalf("event types without a leader: %v", err)
	}
	if len(types) != len(events.Types) {
		t.Fatalf("%d event types, want %d", len(types), len(events.Types))
	}
	for i, et := range types {
		if et.Type != events.Types[i] || et.Severity != et.Type.Severity() {
			t.Errorf("type %d: %+v", i, et)
		}
	}
	// What needs the leader fails, with the status the UI's banner tells by.
	_, err = cl.Status(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Errorf("status without a leader: %v, want 503", err)
	}
}
