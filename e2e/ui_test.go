//go:build linux

package e2e

// The web UI's tests drive a real, headless Chromium (Debian's chromium package,
// which `make test-tools` installs when root) through chromedp against a real grid:
// a server with an event store and an agent, run from the built binary like every
// other e2e test. They find the UI by its data-testid hooks only, and wait by polling
// the page, never by sleeping. Without a chromium they skip.
//
// TestUIScreenshots is not a test of the UI but the pictures in the docs: with
// GRID_SCREENSHOTS=DIR (`make screenshots`) it writes a PNG of each page to DIR.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/internal/gridtest"
)

// The UI tests' grid: one server on the first of the e2e servers' addresses, the
// event store on the chaos test's, one agent on the first agent address.
const (
	uiServerIP = "127.0.0.11"
	uiStoreIP  = "127.0.0.31"
	uiAgentIP  = "127.0.0.21"
	uiAgent    = "agent-001"
)

// uiGrid is a real grid of one server, its event store and one agent, each a
// process of the built binary.
type uiGrid struct {
	// t is the test that owns the processes: they are killed when it ends.
	t   testing.TB
	dir string
	// base is the server's HTTP address, http://IP:7000.
	base   string
	api    *api.Client
	server *proc
}

// newUIGrid starts the grid, with its files in a temporary directory, and waits
// until its agent is healthy; the processes are killed when the test ends.
func newUIGrid(t testing.TB) *uiGrid {
	t.Helper()
	return newUIGridIn(t, t.TempDir())
}

// newUIGridIn is newUIGrid with the grid's files in dir.
func newUIGridIn(t testing.TB, dir string) *uiGrid {
	t.Helper()
	g := &uiGrid{t: t, dir: dir, base: "http://" + uiServerIP + ":7000"}
	// Storage nodes run in process groups of their own and outlive a killed agent.
	t.Cleanup(func() { killProcessesMentioning(g.dir) })
	g.api, _ = api.NewClient(&api.Config{Address: g.base})
	start(t, "event store", "storage", "-bind="+uiStoreIP, "-port=50052", "-data-dir="+filepath.Join(g.dir, "events"))
	g.startServer()
	start(t, uiAgent, "agent", "-bind="+uiAgentIP, "-name="+uiAgent, "-data-dir="+filepath.Join(g.dir, uiAgent),
		"-join="+uiServerIP, "-retry-interval=200ms", "-max-nodes=10")
	g.waitHealthyAgent(t, 30*time.Second)
	return g
}

// startServer starts the server, or starts it again with the same data dir.
func (g *uiGrid) startServer() {
	g.server = start(g.t, "server", "server", "-bind="+uiServerIP, "-name=server-1",
		"-data-dir="+filepath.Join(g.dir, "server"), "-bootstrap-expect=1", "-retry-interval=200ms",
		"-event-store="+uiStoreIP+":50052", "-heartbeat-interval=300ms",
		"-agent-degraded-after=5s", "-agent-offline-after=10s", "-log-level=debug")
}

func (g *uiGrid) waitHealthyAgent(t testing.TB, timeout time.Duration) {
	t.Helper()
	gridtest.Poller{Interval: 50 * time.Millisecond}.WaitFor(t, timeout, uiAgent+" healthy", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a, err := g.api.Agent(ctx, uiAgent)
		if err != nil {
			return err
		}
		if a.Status != "healthy" {
			return fmt.Errorf("%s is %s", uiAgent, a.Status)
		}
		return nil
	})
}

// apiCtx is a context for one API call of the test t.
func apiCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lastSeq is the seq of the last event the server derived.
func (g *uiGrid) lastSeq(t testing.TB) uint64 {
	t.Helper()
	st, err := g.api.Status(apiCtx(t))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Events.LastSeq
}

// nodeEvents returns the types of a node's events after seq, in seq order.
func (g *uiGrid) nodeEvents(t testing.TB, nodeID string, after uint64) ([]string, error) {
	list, err := g.api.Events(apiCtx(t), api.EventQuery{Nodes: []string{nodeID}, Ascending: true, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", nodeID, err)
	}
	var types []string
	for _, e := range list.Events {
		if e.Seq > after {
			types = append(types, string(e.Type))
		}
	}
	return types, nil
}

// chromium returns the path of the browser, or skips the test; under `make test`
// as root, which installs it, a missing browser fails the test instead.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GRID_TEST_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH, though make test-tools should have installed it")
	}
	t.Skip("no chromium on PATH (make test-tools installs Debian's when root): skipping the web UI's tests")
	return ""
}

// browser is one headless Chromium with one tab.
type browser struct {
	t   testing.TB
	ctx context.Context
	// console keeps what the page logged and threw, shown when the test fails.
	console *gridtest.SyncBuffer
}

// newBrowser starts a headless Chromium with a fresh profile and a window of w×h
// pixels; it is stopped when the test ends.
func newBrowser(t testing.TB, w, h int) *browser {
	t.Helper()
	bin := chromium(t)
	out := &gridtest.SyncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // the tests run as root
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
		chromedp.CombinedOutput(out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, console: &gridtest.SyncBuffer{}}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser console:\n%s", b.console.String())
		}
	})
	// The first action starts the browser, which lives as long as that action's
	// context: that is ctx, not one with a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", bin, err, out.String())
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(b.console, "%s %s\n", time.Now().Format("15:04:05.000"), m)
		}
	}()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	return b
}

// do runs steps, failing the test after timeout.
func (b *browser) do(timeout time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into out.
func (b *browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte]("JSON.stringify("+expr+")"))
	if err != nil {
		return err
	}
	var s string // JSON.stringify's answer is a string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("evaluate %s: %w", expr, err)
	}
	return json.Unmarshal([]byte(s), out)
}

// mustEval is eval that fails the test on an error.
func (b *browser) mustEval(expr string, out any) {
	b.t.Helper()
	if err := b.eval(expr, out); err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// waitFor polls the page every 50ms until cond, given what the page showed, returns
// nil, and fails with cond's last error after timeout.
func waitFor[T any](b *browser, timeout time.Duration, what, expr string, cond func(T) error) T {
	b.t.Helper()
	var v T
	gridtest.Poller{Interval: 50 * time.Millisecond}.WaitFor(b.t, timeout, what, func() error {
		var cur T
		if err := b.eval(expr, &cur); err != nil {
			return err
		}
		v = cur
		return cond(v)
	})
	return v
}

// goTo shows a page of the UI by its hash route ("" for the fleet) without
// reloading the document, as a click on a link would.
func (b *browser) goTo(route string) {
	b.t.Helper()
	b.mustEval(fmt.Sprintf(`(location.hash = %s, true)`, jsString("#"+route)), new(bool))
}

// The page's rows, as the UI's data attributes describe them. Rows that are not
// rendered (display: none, such as a layout for another width) are left out.
type (
	agentRow struct{ Name, Status string }
	nodeRow  struct{ ID, Name, Status string }
	eventRow struct {
		Seq  string
		Type string
		Text string
	}
)

const (
	visibleJS = `(e => e.getClientRects().length > 0)`
	agentsJS  = `[...document.querySelectorAll('[data-testid="agent-row"]')].filter(` + visibleJS + `).map(r => ({Name: r.dataset.name, Status: r.dataset.status}))`
	nodesJS   = `[...document.querySelectorAll('[data-testid="node-row"]')].filter(` + visibleJS + `).map(r => ({ID: r.dataset.id, Name: r.dataset.name, Status: r.dataset.status}))`
	eventsJS  = `[...document.querySelectorAll('[data-testid="event-row"]')].filter(` + visibleJS + `).map(r => ({Seq: r.dataset.seq, Type: r.dataset.type, Text: r.innerText}))`
	answersJS = `[...document.querySelectorAll('[data-testid="ask-answer"]')].map(a => a.innerText)`
	bannerJS  = `(() => { const b = document.querySelector('[data-testid="banner"]'); return !!b && b.getClientRects().length > 0 && b.innerText.trim() !== ''; })()`
)

// sel is a CSS selector of a data-testid.
func sel(testid string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + testid + `"]`) }

// fill replaces the value of a form's field by typing into it, or by choosing the
// option of a select.
func (b *browser) fill(field chromedp.CSS, value string) {
	b.t.Helper()
	b.do(10*time.Second, "wait for "+string(field), chromedp.WaitVisible(field))
	var tag string
	b.mustEval(fmt.Sprintf(`document.querySelector(%s).tagName`, jsString(string(field))), &tag)
	// A select takes the value at once; a text field is emptied first, as a user's
	// select-all and delete would: through the native setter and the events that
	// frameworks listen to.
	set := ""
	if tag == "SELECT" {
		set = value
	}
	clear := fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		const proto = e.tagName === 'SELECT' ? HTMLSelectElement.prototype : e.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
		Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, %s);
		e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true}));
		return e.value;
	})()`, jsString(string(field)), jsString(set))
	var got string
	b.mustEval(clear, &got)
	if tag == "SELECT" {
		if got != value {
			b.t.Fatalf("%s has no option %q", field, value)
		}
		return
	}
	b.do(10*time.Second, "type into "+string(field), chromedp.SendKeys(field, value))
	b.mustEval(fmt.Sprintf(`document.querySelector(%s).value`, jsString(string(field))), &got)
	if got != value {
		b.t.Fatalf("%s holds %q after typing %q", field, got, value)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// openUI starts a browser of w×h pixels on the UI's fleet page and marks the
// document, so that a test can tell that it was not reloaded since.
func openUI(t *testing.T, g *uiGrid, w, h int) *browser {
	t.Helper()
	b := newBrowser(t, w, h)
	b.do(30*time.Second, "open "+g.base+"/ui/", chromedp.Navigate(g.base+"/ui/"))
	b.mustEval(`(window.__gridTestDocument = 1)`, new(int))
	return b
}

// assertNotReloaded fails the test if the document was reloaded since openUI.
func (b *browser) assertNotReloaded(when string) {
	b.t.Helper()
	var marked bool
	b.mustEval(`window.__gridTestDocument === 1`, &marked)
	if !marked {
		b.t.Fatalf("%s: the page was reloaded", when)
	}
}

// TestUIServesItsPages checks the plumbing under the UI: the server answers /ui/ with
// an HTML page, / sends the browser there, and the page loads without an error.
func TestUIServesItsPages(t *testing.T) {
	chromium(t)
	g := newUIGrid(t)
	resp, err := http.Get(g.base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %s, Content-Type %q; want 200 and an HTML page", resp.Status, resp.Header.Get("Content-Type"))
	}
	b := newBrowser(t, 1280, 900)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.NavigateResponse(g.base+"/"))
	if err != nil {
		t.Fatalf("open /: %v", err)
	}
	if r.Status != http.StatusOK || !strings.HasSuffix(r.URL, "/ui/") {
		t.Fatalf("/ led to %s with status %d; want /ui/ and 200", r.URL, r.Status)
	}
	b.do(10*time.Second, "the fleet page", chromedp.WaitVisible(sel("agents")))
}

// TestUI runs the web UI against a real grid, the way an operator would use it: the
// fleet, spawning and stopping from the page, a crash followed live, a question
// asked, markup shown as text, a server restart survived, a phone-sized screen.
func TestUI(t *testing.T) {
	chromium(t)
	g := newUIGrid(t)
	b := openUI(t, g, 1280, 900)

	t.Run("fleet shows the agent and the cluster's health", func(t *testing.T) {
		b.t = t
		b.do(15*time.Second, "the fleet page", chromedp.WaitVisible(sel("servers")), chromedp.WaitVisible(sel("cluster-health")))
		waitFor(b, 15*time.Second, uiAgent+" healthy in the fleet", agentsJS, func(rows []agentRow) error {
			if !slices.Contains(rows, agentRow{Name: uiAgent, Status: "healthy"}) {
				return fmt.Errorf("agent rows %+v", rows)
			}
			return nil
		})
		var health string
		b.mustEval(`document.querySelector('[data-testid="cluster-health"]').innerText`, &health)
		if !strings.Contains(strings.ToLower(health), "healthy") {
			t.Errorf("cluster-health says %q; want healthy", health)
		}
		waitFor(b, 15*time.Second, "the event store in sync", `(document.querySelector('[data-testid="event-stores"]') || {}).innerText || ''`,
			func(text string) error {
				if !strings.Contains(text, "event store: 1 in-sync") {
					return fmt.Errorf("event stores say %q", text)
				}
				return nil
			})
	})

	var node nodeRow
	t.Run("spawn from the form", func(t *testing.T) {
		b.t = t
		form := `[data-testid="spawn-form"] `
		b.fill(chromedp.CSS(form+`[name="agent"]`), uiAgent)
		b.fill(chromedp.CSS(form+`[name="port"]`), "50161")
		b.fill(chromedp.CSS(form+`[name="name"]`), "orders-1")
		b.submitSpawn()
		rows := waitFor(b, 30*time.Second, "node orders-1 running", nodesJS, func(rows []nodeRow) error {
			for _, r := range rows {
				if r.Name == "orders-1" && r.Status == "running" && r.ID != "" {
					return nil
				}
			}
			return fmt.Errorf("node rows %+v", rows)
		})
		for _, r := range rows {
			if r.Name == "orders-1" {
				node = r
			}
		}
		n, err := g.api.Node(apiCtx(t), node.ID)
		if err != nil {
			t.Fatalf("the row's node: %v", err)
		}
		if n.Name != "orders-1" || n.Port != 50161 || n.Agent != uiAgent || n.Status != "running" {
			t.Fatalf("the grid has %+v; want orders-1 running on %s port 50161", n, uiAgent)
		}
	})
	if node.ID == "" {
		t.FailNow()
	}

	t.Run("markup in a node's name is refused and shown as text", func(t *testing.T) {
		b.t = t
		form := `[data-testid="spawn-form"] `
		bad := `<img src=x onerror=window.__pwned=2>☃`
		b.fill(chromedp.CSS(form+`[name="agent"]`), uiAgent)
		b.fill(chromedp.CSS(form+`[name="port"]`), "50163")
		b.fill(chromedp.CSS(form+`[name="name"]`), bad)
		b.submitSpawn()
		// The server refuses the name and says why, naming it; or the form refuses it
		// first, as an invalid field.
		waitFor(b, 15*time.Second, "the name refused", `({Text: document.body.innerText,
			Invalid: document.querySelector('[data-testid="spawn-form"] [name="name"]').matches(':invalid')})`,
			func(page struct {
				Text    string
				Invalid bool
			}) error {
				if !page.Invalid && !strings.Contains(page.Text, bad) {
					return fmt.Errorf("neither an invalid field nor the name on the page:\n%s", page.Text)
				}
				return nil
			})
		b.assertNoMarkupRan()
		nodes, err := g.api.Nodes(apiCtx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Port == 50163 {
				t.Errorf("the grid recorded %+v", n)
			}
		}
	})

	t.Run("a crash and its restart show live", func(t *testing.T) {
		b.t = t
		b.goTo("/events")
		b.do(10*time.Second, "the events page", chromedp.WaitVisible(sel("events")))
		before := g.lastSeq(t)
		n, err := g.api.Node(apiCtx(t), node.ID)
		if err != nil || n.PID <= 0 {
			t.Fatalf("node %s: %+v, %v", node.ID, n, err)
		}
		if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The node's restart policy is the default: the first restart comes after 5s.
		rows := waitFor(b, 30*time.Second, "node_crashed then node_restarted", eventsJS, func(rows []eventRow) error {
			crashed, restarted := uint64(0), uint64(0)
			for _, r := range rows {
				seq, _ := strconv.ParseUint(r.Seq, 10, 64)
				if seq <= before {
					continue
				}
				switch r.Type {
				case "node_crashed":
					crashed = seq
				case "node_restarted":
					restarted = seq
				}
			}
			if crashed == 0 || restarted == 0 {
				return fmt.Errorf("rows after seq %d: %+v", before, after(rows, before))
			}
			if restarted < crashed {
				return fmt.Errorf("node_restarted %d before node_crashed %d", restarted, crashed)
			}
			return nil
		})
		b.assertNotReloaded("after the crash")
		if got, err := g.nodeEvents(t, node.ID, before); err != nil || !slices.Equal(got, []string{"node_crashed", "node_restarted"}) {
			t.Errorf("the grid recorded %v, %v for %s; want node_crashed, node_restarted", got, err, node.ID)
		}
		for _, r := range after(rows, before) {
			if r.Type == "node_crashed" && !strings.Contains(r.Text, node.ID) && !strings.Contains(r.Text, node.Name) {
				t.Errorf("the node_crashed row %q names neither %s nor %s", r.Text, node.ID, node.Name)
			}
		}
		assertUniqueSeqs(t, rows)
	})

	t.Run("stop from the button", func(t *testing.T) {
		b.t = t
		b.goTo("")
		row := fmt.Sprintf(`[data-testid="node-row"][data-id=%q]`, node.ID)
		waitFor(b, 15*time.Second, "node "+node.ID+" running again", nodesJS, func(rows []nodeRow) error {
			for _, r := range rows {
				if r.ID == node.ID && r.Status == "running" {
					return nil
				}
			}
			return fmt.Errorf("node rows %+v", rows)
		})
		stop := chromedp.CSS(row + ` [data-testid="node-stop"]`)
		b.do(10*time.Second, "click stop", chromedp.WaitEnabled(stop), chromedp.Click(stop, chromedp.NodeVisible))
		b.do(10*time.Second, "confirm the stop", chromedp.WaitEnabled(sel("node-stop-confirm")), chromedp.Click(sel("node-stop-confirm"), chromedp.NodeVisible))
		waitFor(b, 30*time.Second, "node "+node.ID+" stopped or gone", nodesJS, func(rows []nodeRow) error {
			for _, r := range rows {
				if r.ID == node.ID && r.Status != "stopped" {
					return fmt.Errorf("node %s is %s", r.ID, r.Status)
				}
			}
			return nil
		})
		n, err := g.api.Node(apiCtx(t), node.ID)
		if err != nil || n.Status != "stopped" {
			t.Fatalf("the grid has %+v, %v; want the node stopped", n, err)
		}
		b.assertNotReloaded("after the stop")
	})

	t.Run("a question is answered", func(t *testing.T) {
		b.t = t
		b.goTo("/ask")
		question := "what happened on " + uiAgent + " today"
		answers := b.ask(question, 0)
		want, err := g.api.Ask(apiCtx(t), &api.AskRequest{Question: question})
		if err != nil {
			t.Fatal(err)
		}
		if got := answers[len(answers)-1]; !strings.Contains(squash(got), squash(want.Summary)) {
			t.Errorf("the answer shows %q; want it to hold POST /v1/ask's summary %q", got, want.Summary)
		}
		// Enter asks too.
		b.fill(sel("ask-input"), "is the cluster healthy?")
		b.do(10*time.Second, "press Enter", chromedp.SendKeys(sel("ask-input"), kb.Enter))
		waitFor(b, 20*time.Second, "an answer after Enter", answersJS, func(got []string) error {
			if len(got) != len(answers)+1 {
				return fmt.Errorf("%d answers, had %d", len(got), len(answers))
			}
			return nil
		})
	})

	t.Run("markup in a question is shown as text", func(t *testing.T) {
		b.t = t
		b.goTo("/ask")
		var asked []string
		b.mustEval(answersJS, &asked)
		question := `what happened on <script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> ` +
			`'quoted' "agent" ☃ naïve 東京 today`
		b.ask(question, len(asked))
		b.assertNoMarkupRan()
		var text string
		b.mustEval(`document.body.innerText`, &text)
		if !strings.Contains(text, question) {
			t.Errorf("the page does not show the question as typed, %q:\n%s", question, text)
		}
	})

	t.Run("markup in the address is shown as text", func(t *testing.T) {
		b.t = t
		bad := `<img src=x onerror=window.__pwned=3>"☃'`
		for _, route := range []string{
			"/agents/" + bad,
			"/nodes/" + bad,
			"/events/" + bad,
			"/events?agent=" + bad + "&node=" + bad,
		} {
			b.goTo(route)
			// Each page says that the server knows no such thing, or has it in a
			// filter's field.
			shown := `document.body.innerText + '\n' + [...document.querySelectorAll('input')].map(i => i.value).join('\n')`
			waitFor(b, 10*time.Second, "page #"+route, shown, func(text string) error {
				if !strings.Contains(text, bad) {
					return fmt.Errorf("the page does not show %q:\n%s", bad, text)
				}
				return nil
			})
			b.assertNoMarkupRan()
		}
	})

	t.Run("the stream resumes after a server restart", func(t *testing.T) {
		b.t = t
		b.goTo("/events")
		last := g.lastSeq(t)
		waitFor(b, 15*time.Second, fmt.Sprintf("event %d shown", last), eventsJS, func(rows []eventRow) error {
			if !hasSeq(rows, last) {
				return fmt.Errorf("no row of event %d; rows %v", last, seqs(rows))
			}
			return nil
		})
		if code := g.server.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Fatalf("server exited %d after SIGTERM", code)
		}
		waitFor(b, 20*time.Second, "the banner while the server is down", bannerJS, func(shown bool) error {
			if !shown {
				return fmt.Errorf("no banner")
			}
			return nil
		})
		g.startServer()
		g.waitHealthyAgent(t, 30*time.Second)
		waitFor(b, 30*time.Second, "the banner gone once the server is back", bannerJS, func(shown bool) error {
			if shown {
				return fmt.Errorf("the banner is still shown")
			}
			return nil
		})
		spawned, err := g.api.SpawnNode(apiCtx(t), &api.SpawnRequest{Agent: uiAgent, Port: 50162, Name: "after-restart"})
		if err != nil {
			t.Fatal(err)
		}
		var newest uint64
		gridtest.WaitFor(t, 30*time.Second, "the spawn's events", func() error {
			got, err := g.nodeEvents(t, spawned.ID, 0)
			if err != nil || len(got) < 2 {
				return fmt.Errorf("events of %s: %v, %v", spawned.ID, got, err)
			}
			newest = g.lastSeq(t)
			return nil
		})
		rows := waitFor(b, 30*time.Second, fmt.Sprintf("events %d..%d shown", last+1, newest), eventsJS, func(rows []eventRow) error {
			for s := last + 1; s <= newest; s++ {
				if !hasSeq(rows, s) {
					return fmt.Errorf("no row of event %d; rows %v", s, seqs(rows))
				}
			}
			return nil
		})
		assertUniqueSeqs(t, rows)
		b.assertNotReloaded("after the server restart")
	})

	t.Run("a phone-sized screen", func(t *testing.T) {
		b.t = t
		pages := []struct{ route, shows string }{
			{"", `[data-testid="nodes"]`},
			{"/events", `[data-testid="event-row"]`},
			{"/ask", `[data-testid="ask-input"]`},
			{"/agents/" + uiAgent, `[data-testid="event-row"]`},
			{"/nodes/" + node.ID, `[data-testid="event-row"]`},
		}
		for _, width := range []int64{390, 1280} {
			b.do(10*time.Second, "resize", chromedp.EmulateViewport(width, 800))
			for _, p := range pages {
				b.goTo(p.route)
				b.do(15*time.Second, "page #"+p.route, chromedp.WaitVisible(chromedp.CSS(p.shows)))
				var sw int64
				b.mustEval(`document.documentElement.scrollWidth`, &sw)
				if sw > width {
					t.Errorf("at %d px wide, page #%s is %d px wide: it scrolls sideways", width, p.route, sw)
				}
			}
		}
		b.do(10*time.Second, "resize", chromedp.EmulateViewport(1280, 900))
	})
}

// submitSpawn clicks the spawn form's submit button once it can be clicked: it is
// disabled while the form follows the last node it spawned.
func (b *browser) submitSpawn() {
	b.t.Helper()
	form := `[data-testid="spawn-form"] `
	submit := chromedp.CSS(form + `button[type="submit"], ` + form + `input[type="submit"], ` + form + `button:not([type])`)
	b.do(10*time.Second, "submit the spawn form", chromedp.WaitEnabled(submit), chromedp.Click(submit, chromedp.NodeVisible))
}

// assertNoMarkupRan fails the test if markup the test typed (an img whose onerror
// sets window.__pwned, a script that does) became part of the page or ran.
func (b *browser) assertNoMarkupRan() {
	b.t.Helper()
	var page struct {
		Pwned   bool
		Planted int
	}
	b.mustEval(`({Pwned: window.__pwned !== undefined,
		Planted: document.querySelectorAll('img[src="x"]').length + [...document.scripts].filter(s => s.text.includes('__pwned')).length})`, &page)
	if page.Pwned {
		b.t.Error("markup the test typed ran: window.__pwned is set")
	}
	if page.Planted > 0 {
		b.t.Errorf("markup the test typed became %d elements of the page", page.Planted)
	}
}

// ask types a question into the ask box, submits it and returns the answers shown
// once there is one more than had.
func (b *browser) ask(question string, had int) []string {
	b.t.Helper()
	b.fill(sel("ask-input"), question)
	b.do(10*time.Second, "submit the question", chromedp.WaitEnabled(sel("ask-submit")), chromedp.Click(sel("ask-submit"), chromedp.NodeVisible))
	return waitFor(b, 20*time.Second, "an answer to "+question, answersJS, func(answers []string) error {
		if len(answers) <= had || strings.TrimSpace(answers[len(answers)-1]) == "" {
			return fmt.Errorf("%d answers: %q", len(answers), answers)
		}
		return nil
	})
}

// squash folds runs of white space into one space, since the page's text breaks
// lines where the summary has none.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func after(rows []eventRow, seq uint64) []eventRow {
	var out []eventRow
	for _, r := range rows {
		if s, _ := strconv.ParseUint(r.Seq, 10, 64); s > seq {
			out = append(out, r)
		}
	}
	return out
}

func seqs(rows []eventRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}

func hasSeq(rows []eventRow, seq uint64) bool {
	return slices.ContainsFunc(rows, func(r eventRow) bool { return r.Seq == strconv.FormatUint(seq, 10) })
}

// assertUniqueSeqs fails the test if an event is shown twice.
func assertUniqueSeqs(t *testing.T, rows []eventRow) {
	t.Helper()
	seen := map[string]bool{}
	var twice []string
	for _, r := range rows {
		if seen[r.Seq] {
			twice = append(twice, r.Seq)
		}
		seen[r.Seq] = true
	}
	if len(twice) > 0 {
		sort.Strings(twice)
		t.Errorf("events shown twice: %v (rows %v)", twice, seqs(rows))
	}
}

// TestUIScreenshots writes the docs' pictures of the UI to $GRID_SCREENSHOTS
// (`make screenshots`): a real grid with a few named nodes, a crash and a question
// asked, each page at 1280×900 and the fleet at 390×800.
func TestUIScreenshots(t *testing.T) {
	dir := os.Getenv("GRID_SCREENSHOTS")
	if dir == "" {
		t.Skip("GRID_SCREENSHOTS is not set: `make screenshots` takes the docs' pictures")
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Fatalf("taking screenshots needs Debian's chromium (make test-tools installs it as root): %v", err)
	}
	// The pages show the paths of the grid's files: short ones read better than a
	// test's temporary directory.
	gridDir, err := os.MkdirTemp("", "grid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gridDir) })
	g := newUIGridIn(t, gridDir)
	fast := api.RestartPolicy{Delay: api.Duration(100 * time.Millisecond), MaxDelay: api.Duration(200 * time.Millisecond)}
	var crashy *api.Node
	for i, name := range []string{"orders-1", "orders-2", "search-1"} {
		n, err := g.api.SpawnNode(apiCtx(t), &api.SpawnRequest{Agent: uiAgent, Port: 50171 + i, Name: name, Restart: fast})
		if err != nil {
			t.Fatal(err)
		}
		crashy = n
	}
	running := func(id string, restarts int) *api.Node {
		var n *api.Node
		gridtest.WaitFor(t, 30*time.Second, id+" running", func() error {
			var err error
			if n, err = g.api.Node(apiCtx(t), id); err != nil {
				return err
			}
			if n.Status != "running" || n.Restarts != restarts {
				return fmt.Errorf("%+v", n)
			}
			return nil
		})
		return n
	}
	nodes, err := g.api.Nodes(apiCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		running(n.ID, 0)
	}
	n := running(crashy.ID, 0)
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	running(crashy.ID, 1)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := openUI(t, g, 1280, 900)
	shoot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.fonts.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("fonts: %v", err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name+".png"))
	}
	hasRows := func(min int) func([]json.RawMessage) error {
		return func(rows []json.RawMessage) error {
			if len(rows) < min {
				return fmt.Errorf("%d rows", len(rows))
			}
			return nil
		}
	}

	waitFor(b, 15*time.Second, "the fleet's nodes", nodesJS, hasRows(3))
	shoot("fleet")

	b.goTo("/events")
	waitFor(b, 15*time.Second, "the events", eventsJS, hasRows(5))
	shoot("events")

	b.goTo("/ask")
	b.ask("what happened on "+uiAgent+" today", 0)
	shoot("ask")

	b.goTo("/agents/" + uiAgent)
	waitFor(b, 15*time.Second, "the agent page", `document.body.innerText`, func(text string) error {
		if !strings.Contains(text, uiAgent) {
			return fmt.Errorf("the page does not name %s", uiAgent)
		}
		return nil
	})
	shoot("agent")

	b.goTo("/nodes/" + crashy.ID)
	waitFor(b, 15*time.Second, "the node page", `document.body.innerText`, func(text string) error {
		if !strings.Contains(text, crashy.ID) {
			return fmt.Errorf("the page does not name %s", crashy.ID)
		}
		return nil
	})
	shoot("node")

	b.goTo("")
	b.do(10*time.Second, "resize", chromedp.EmulateViewport(390, 800))
	waitFor(b, 15*time.Second, "the fleet's nodes", nodesJS, hasRows(3))
	shoot("fleet-mobile")
}
