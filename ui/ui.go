// Package ui is Grid's control UI: a few static files, embedded in the binary and
// served by every server under /ui/, that show the fleet, act on it, follow its
// events and ask questions about it, in the browser. The files are plain HTML, CSS
// and JavaScript modules with no build step; they talk to the public HTTP API only,
// as any other client would (website/ui.md describes what a user sees).
//
// Where things are:
//
//   - ui.go: the embedded files and Handler, which serves them with their content
//     types, ETags and a strict Content-Security-Policy.
//   - static/index.html: the one page; the hash in the URL (#/agents/NAME,
//     #/nodes/ID, #/events/SEQ, #/ask) says what it shows, so every view reloads
//     from the same file.
//   - static/style.css: the layout, light and dark (prefers-color-scheme), wide and
//     narrow.
//   - static/icon.svg: the favicon.
//   - static/js/main.js: start-up, the router, the header and the banner.
//   - static/js/api.js: requests to the HTTP API, the banner's state, the server's
//     clock, and the event stream (read with fetch) shared by every view.
//   - static/js/token.js: the ACL token: asked for in a dialog when the API answers
//     403, kept in sessionStorage (this tab only), sent as X-Grid-Token.
//   - static/js/dom.js: building elements (text only: data never goes through
//     innerHTML), links between agents, nodes and events, times and durations.
//   - static/js/eventlist.js: the table of events that the events page, the agent
//     and node pages and the answers share, deduplicated by seq, with gap markers.
//   - static/js/chart.js: bar charts as inline SVG.
//   - static/js/fleet.js: the fleet page: cluster health, servers, agents, nodes.
//   - static/js/actions.js: the spawn form and the stop dialog.
//   - static/js/events.js: the events page (filters, live list, chart) and an
//     event's page with its causes and effects.
//   - static/js/entity.js: an agent's page and a node's page.
//   - static/js/ask.js: the chat box on POST /v1/ask and its answers.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

// ContentSecurityPolicy lets the page load its own files and talk to its own server,
// and nothing else: no inline script or style, no plugins, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are the types of the files the UI is made of; a file of another kind
// is not served (a test keeps the two in step).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// files reads the embedded files, keyed by their path under static/.
func files() (map[string]*file, error) {
	out := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("ui: %s: no content type for its extension", p)
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "static/")] = &file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	return out, err
}

// Handler serves the UI under Prefix: /ui/ is index.html, /ui/js/main.js the module
// static/js/main.js; anything else is 404. Browsers revalidate every file (no-cache
// with an ETag, answered 304 while it is unchanged), so the files of a new binary are
// never stale, and the same binary's are not downloaded twice.
func Handler() http.Handler {
	fsys, err := files()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; a test reads them
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		f := fsys[name]
		if !ok || f == nil {
			notFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such file: "+r.URL.Path)
}

// writeError answers as the HTTP API does: {"error": "..."}.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
