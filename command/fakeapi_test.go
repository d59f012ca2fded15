package command

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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

// jsonReply answers with v encoded as JSON.
func jsonReply(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
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

// isolateEnv clears GRID_ADDR so a developer's setting does not leak into a test.
func isolateEnv(t *testing.T) {
	t.Helper()
	t.Setenv(api.AddressEnv, "")
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
