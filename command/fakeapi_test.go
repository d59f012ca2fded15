package command

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// fakeAPI is an HTTP server that answers the documented API paths with fixed
// responses and records the requests it got.
type fakeAPI struct {
	*httptest.Server

	mu       sync.Mutex
	requests []string // "METHOD /path?query"
}

// newFakeAPI serves routes, keyed by "METHOD /path" patterns of http.ServeMux. Any
// other request gets a 404 with an {"error": ...} body, as the real server answers.
func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no handler for "+r.Method+" "+r.URL.Path)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// Requests returns the requests received so far.
func (f *fakeAPI) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// rawReply answers with body as it is.
func rawReply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// errorReply answers with the server's error format.
func errorReply(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeError(w, code, msg) }
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// deadAddress returns the URL of a server that has stopped, so connecting to it fails.
func deadAddress(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

// result is what one run of a command produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCommand runs the command registered under name in Commands, as the CLI would
// after it has split off the command name.
func runCommand(t *testing.T, name string, args ...string) result {
	t.Helper()
	ui := cli.NewMockUi()
	factory, ok := Commands(ui)[name]
	if !ok {
		t.Fatalf("no command %q in Commands", name)
	}
	cmd, err := factory()
	if err != nil {
		t.Fatalf("command %q: %v", name, err)
	}
	useTestClock(cmd)
	code := cmd.Run(args)
	return result{code: code, stdout: ui.OutputWriter.String(), stderr: ui.ErrorWriter.String()}
}

// runCLI runs the whole CLI (command lookup, -help handling) with args.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ui := cli.NewMockUi()
	var out, errOut strings.Builder
	c := &cli.CLI{
		Name:        "grid",
		Args:        args,
		Commands:    Commands(ui),
		HelpWriter:  &out,
		ErrorWriter: &errOut,
	}
	code, err := c.Run()
	if err != nil {
		t.Fatalf("cli.Run(%q): %v", args, err)
	}
	return result{code: code,
		stdout: out.String() + ui.OutputWriter.String(),
		stderr: errOut.String() + ui.ErrorWriter.String()}
}

// isolateEnv clears GRID_ADDR, GRID_TOKEN and the client's TLS variables so a
// developer's settings do not leak into a test.
func isolateEnv(t *testing.T) {
	t.Helper()
	t.Setenv(api.AddressEnv, "")
	t.Setenv(api.TokenEnv, "")
	for _, e := range []string{api.CACertEnv, api.ClientCertEnv, api.ClientKeyEnv} {
		t.Setenv(e, "")
	}
}

// check is one expectation on a result.
type check func(t *testing.T, r result)

// exitCode expects the exit code.
func exitCode(want int) check {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.code != want {
			t.Errorf("exit code = %d, want %d (stdout %q, stderr %q)", r.code, want, r.stdout, r.stderr)
		}
	}
}

// stdoutIs expects stdout to be exactly want plus the Ui's trailing newline.
func stdoutIs(want string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.stdout != want+"\n" {
			t.Errorf("stdout = %q, want %q", r.stdout, want+"\n")
		}
	}
}

// stdoutHas expects every substring in stdout.
func stdoutHas(subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("stdout %q does not contain %q", r.stdout, s)
			}
		}
	}
}

// stdoutLacks expects none of the substrings in stdout.
func stdoutLacks(subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		for _, s := range subs {
			if strings.Contains(r.stdout, s) {
				t.Errorf("stdout %q contains %q", r.stdout, s)
			}
		}
	}
}

// noStdout expects nothing on stdout.
func noStdout() check {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	}
}

// noStderr expects nothing on stderr.
func noStderr() check {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.stderr != "" {
			t.Errorf("stderr = %q, want nothing", r.stderr)
		}
	}
}

// failsWith expects exit code 1, nothing on stdout, and exactly one line on stderr,
// "Error: ...", containing every substring.
func failsWith(subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		exitCode(1)(t, r)
		noStdout()(t, r)
		if !strings.HasPrefix(r.stderr, "Error: ") || strings.Count(r.stderr, "\n") != 1 ||
			!strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("stderr = %q, want one line starting with \"Error: \"", r.stderr)
		}
		for _, s := range subs {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("stderr %q does not contain %q", r.stderr, s)
			}
		}
	}
}

// usageFails expects exit code 1, nothing on stdout, an error naming every substring
// and a pointer to the command's -help.
func usageFails(cmd string, subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		exitCode(1)(t, r)
		noStdout()(t, r)
		if !strings.HasPrefix(r.stderr, "Error: ") {
			t.Errorf("stderr = %q, want it to start with \"Error: \"", r.stderr)
		}
		for _, s := range append(subs, "grid "+cmd+" -help") {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("stderr %q does not contain %q", r.stderr, s)
			}
		}
	}
}

// tableIs expects stdout to be a table whose lines, split into fields, are want.
// (No cell in these tests contains spaces.)
func tableIs(want ...[]string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != len(want) {
			t.Fatalf("table has %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
		}
		for i, line := range lines {
			got := strings.Fields(line)
			if strings.Join(got, "|") != strings.Join(want[i], "|") {
				t.Errorf("table line %d = %q, want fields %q", i, line, want[i])
			}
		}
		// Columns are aligned: every line starts its second column at the same offset.
		col := -1
		for _, line := range lines {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			off := strings.Index(line[len(f[0]):], f[1]) + len(f[0])
			if col >= 0 && off != col {
				t.Errorf("columns not aligned:\n%s", r.stdout)
				break
			}
			col = off
		}
	}
}

// jsonIs expects stdout to be JSON equal to want (compared after decoding both).
func jsonIs(want string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		var got, exp any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
		}
		if err := json.Unmarshal([]byte(want), &exp); err != nil {
			t.Fatalf("bad expectation %q: %v", want, err)
		}
		g, _ := json.Marshal(got)
		e, _ := json.Marshal(exp)
		if string(g) != string(e) {
			t.Errorf("JSON output = %s, want %s", g, e)
		}
	}
}

// requestsAre expects the fake server to have received exactly these requests.
func requestsAre(f *fakeAPI, want ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		got := f.Requests()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("requests = %q, want %q", got, want)
		}
	}
}

// substAddr replaces "ADDR" in args with the fake server's URL and "HOSTPORT" with its
// host:port.
func substAddr(args []string, f *fakeAPI) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "ADDR", f.URL)
		out[i] = strings.ReplaceAll(a, "HOSTPORT", strings.TrimPrefix(f.URL, "http://"))
	}
	return out
}

// testNow is the time on the clock of the commands that show ages, in tests.
var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// setClock replaces the clock of a command that embeds one.
func (c *clock) setClock(k clock) { *c = k }

// useTestClock sets the clock of cmd, if it has one, to testNow, and its poll
// interval to a millisecond so that commands that wait for a node do not slow the
// tests down.
func useTestClock(cmd cli.Command) {
	if c, ok := cmd.(interface{ setClock(clock) }); ok {
		c.setClock(clock{nowFunc: func() time.Time { return testNow }, interval: time.Millisecond})
	}
}

// sequence answers the n-th request with the n-th handler, and every request after
// the last handler with the last one: a node whose status changes as it is polled.
func sequence(handlers ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handlers[min(n, len(handlers)-1)]
		n++
		mu.Unlock()
		h(w, r)
	}
}

// statusReply answers with code and body as it is.
func statusReply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// bodyRecorder keeps the bodies of the requests a handler got.
type bodyRecorder struct {
	mu     sync.Mutex
	bodies []string
}

// wrap records each request's body, then answers with h.
func (b *bodyRecorder) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(raw))
		b.mu.Unlock()
		h(w, r)
	}
}

// bodyIs expects exactly one recorded request, whose body is JSON equal to want.
func (b *bodyRecorder) bodyIs(want string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		b.mu.Lock()
		bodies := append([]string(nil), b.bodies...)
		b.mu.Unlock()
		if len(bodies) != 1 {
			t.Fatalf("got %d request bodies, want 1: %q", len(bodies), bodies)
		}
		if g, e := normalizeJSON(t, bodies[0]), normalizeJSON(t, want); g != e {
			t.Errorf("request body = %s, want %s", g, e)
		}
	}
}

// normalizeJSON decodes and re-encodes s, so that two JSON texts compare equal when
// their values do.
func normalizeJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// stderrHas expects every substring in stderr.
func stderrHas(subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("stderr %q does not contain %q", r.stderr, s)
			}
		}
	}
}

// progressThenFails expects exit code 1 and on stderr progress lines ("==> ...")
// followed by exactly one error line, "Error: ...", containing every substring.
// Stdout is not checked: with -json it holds the node as last seen.
func progressThenFails(subs ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		exitCode(1)(t, r)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "==> ") {
				t.Errorf("stderr line %q is neither progress nor the final error:\n%s", l, r.stderr)
			}
		}
		if !strings.HasPrefix(last, "Error: ") || !strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("stderr = %q, want it to end with one line starting with \"Error: \"", r.stderr)
		}
		for _, s := range subs {
			if !strings.Contains(last, s) {
				t.Errorf("error line %q does not contain %q", last, s)
			}
		}
	}
}

// progressOnly expects every stderr line to be a progress line, "==> ...".
func progressOnly() check {
	return func(t *testing.T, r result) {
		t.Helper()
		for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			if l != "" && !strings.HasPrefix(l, "==> ") {
				t.Errorf("stderr line %q is not a progress line:\n%s", l, r.stderr)
			}
		}
	}
}

// Agents as GET /v1/agents returns them: healthy, degraded and offline (the leader
// has not heard from it since it became leader).
const (
	agent001 = `{"name":"agent-001","address":"127.0.0.21:8001","hostname":"host-a","platform":"linux/amd64","version":"0.1.0-dev","status":"healthy","nodes":2,"max_nodes":10,"storage_root":"/var/lib/grid","last_heartbeat":"2024-05-01T11:59:57Z","registered_at":"2024-05-01T09:00:00Z","status_changed_at":"2024-05-01T09:00:00Z"}`
	agent002 = `{"name":"agent-002","address":"127.0.0.22:8001","hostname":"host-b","platform":"linux/arm64","version":"0.1.0-dev","status":"degraded","nodes":0,"max_nodes":4,"storage_root":"/srv/grid","last_heartbeat":"2024-05-01T11:58:50Z","registered_at":"2024-04-30T08:00:00Z","status_changed_at":"2024-05-01T11:59:20Z"}`
	agent003 = `{"name":"agent-003","address":"127.0.0.23:8001","hostname":"host-c","platform":"linux/amd64","version":"0.0.9","status":"offline","nodes":0,"max_nodes":0,"storage_root":"/var/lib/grid","last_heartbeat":"0001-01-01T00:00:00Z","registered_at":"2024-04-28T08:00:00Z","status_changed_at":"2024-04-29T10:00:00Z"}`
)

// testNodeID is the ID of the node in the node fixtures.
const testNodeID = "node-9b1d2c3e"

// nodeJSON is a node as GET /v1/node/ID returns it: running on agent-001, changed by
// each edit in turn.
func nodeJSON(t *testing.T, edits ...func(n *api.Node)) string {
	t.Helper()
	n := api.Node{
		ID:            testNodeID,
		Agent:         "agent-001",
		Port:          50100,
		StoragePath:   "/var/lib/grid/nodes/" + testNodeID,
		MemoryLimitMB: 512,
		Restart: api.RestartPolicy{Attempts: api.Attempts(3), Interval: api.Duration(30 * time.Minute),
			Delay: api.Duration(5 * time.Second), MaxDelay: api.Duration(5 * time.Minute)},
		Status:    api.NodeRunning,
		PID:       4242,
		Endpoint:  "127.0.0.21:50100",
		CreatedAt: time.Date(2024, 5, 1, 11, 57, 0, 0, time.UTC),
		UpdatedAt: time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC),
	}
	for _, e := range edits {
		e(&n)
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// status edits a node fixture's status; pending, stopped and failed nodes have no
// process and no endpoint.
func status(s string) func(n *api.Node) {
	return func(n *api.Node) {
		n.Status = s
		if s == api.NodePending || s == api.NodeStopped || s == api.NodeFailed {
			n.PID, n.Endpoint = 0, ""
		}
	}
}

// exited edits a node fixture's last exit.
func exited(code int, signal string) func(n *api.Node) {
	return func(n *api.Node) { n.ExitCode, n.Signal = &code, signal }
}

// stderrIs expects stderr to be exactly these lines.
func stderrIs(lines ...string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		if want := strings.Join(lines, "\n") + "\n"; r.stderr != want {
			t.Errorf("stderr = %q, want %q", r.stderr, want)
		}
	}
}

// statusJSON is the cluster summary as GET /v1/status returns it: three servers, three
// agents and four nodes, with two events waiting for an unreachable event store;
// changed by each edit in turn.
func statusJSON(t *testing.T, edits ...func(s *api.Status)) string {
	t.Helper()
	s := api.Status{
		Leader:        api.StatusLeader{Name: "s1", ID: "8f14e45f-ceea-4e7a-9b1d-3c2a5e6f7d80", Address: "127.0.0.11:7002"},
		Servers:       3,
		Agents:        api.StatusAgents{Total: 3, Healthy: 1, Degraded: 1, Offline: 1},
		Nodes:         api.StatusNodes{Total: 4, Pending: 1, Running: 2, Lost: 1},
		ClusterHealth: "cluster_degraded",
		Events: api.StatusEvents{
			LastSeq: 42, ShippedSeq: 40, Waiting: 2, EventStore: "127.0.0.31:50052",
			LastError:   "store events 41-42: connection refused",
			LastShipped: time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC),
		},
	}
	for _, edit := range edits {
		edit(&s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sseReply answers as an event stream: it sends each message (SSE text, such as
// "id: 4\nevent: agent_offline\ndata: {...}\n\n") and flushes it. With hold it then
// keeps the stream open until the client goes away; otherwise it ends the stream,
// as a server that stops would.
func sseReply(hold bool, messages ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for _, m := range messages {
			_, _ = io.WriteString(w, m)
			_ = rc.Flush()
		}
		if hold {
			<-r.Context().Done()
		}
	}
}

// headerReply answers like rawReply, with an extra response header.
func headerReply(key, value, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(key, value)
		rawReply(body)(w, r)
	}
}

// stopAfterUi is a MockUi that calls stop once the command has printed n lines on
// stdout: a stand-in for the Ctrl-C that ends a command that runs until interrupted.
type stopAfterUi struct {
	*cli.MockUi
	n    int
	stop func()

	mu    sync.Mutex
	count int
}

func (u *stopAfterUi) Output(s string) {
	u.MockUi.Output(s)
	u.mu.Lock()
	u.count++
	done := u.count == u.n
	u.mu.Unlock()
	if done {
		u.stop()
	}
}

// apiCase is a case of a table-driven test of a client command against the fake API:
// its routes, the command's arguments ("ADDR" is replaced by the fake server's URL),
// and the checks of the result.
type apiCase struct {
	name   string
	routes map[string]http.HandlerFunc
	args   []string
	checks func(f *fakeAPI) []check
}

// runAPICases runs command cmd once for each case, each against a fake API of its own.
func runAPICases(t *testing.T, cmd string, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFakeAPI(t, tc.routes)
			r := runCommand(t, cmd, substAddr(tc.args, f)...)
			for _, c := range tc.checks(f) {
				c(t, r)
			}
		})
	}
}
