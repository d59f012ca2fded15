package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// maxSize bounds the whole UI, uncompressed: the budget.
const maxSize = 150 * 1000

func TestUIFitsItsBudget(t *testing.T) {
	total := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		total += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the UI is %d bytes", total)
	if total > maxSize {
		t.Errorf("the UI is %d bytes, over its budget of %d", total, maxSize)
	}
}

func get(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerServesTheFiles(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script type="module" src="js/main.js">`},
		{"/ui/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/ui/js/main.js", "text/javascript; charset=utf-8", "import "},
		{"/ui/style.css", "text/css; charset=utf-8", "prefers-color-scheme"},
		{"/ui/icon.svg", "image/svg+xml", "<svg"},
	} {
		w := get(t, h, "GET", tc.path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, w.Code)
			continue
		}
		hd := w.Header()
		if got := hd.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		if got := hd.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, got)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
		if hd.Get("ETag") == "" || hd.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q: a new binary's files could be stale", tc.path, hd.Get("ETag"), hd.Get("Cache-Control"))
		}
		// The same file again: 304, nothing sent.
		again := get(t, h, "GET", tc.path, "If-None-Match", hd.Get("ETag"))
		if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("GET %s with its ETag: %d, %d bytes; want 304", tc.path, again.Code, again.Body.Len())
		}
	}
	// Every JavaScript file is served as JavaScript: browsers refuse modules of
	// another type under nosniff.
	fs.WalkDir(static, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		path := "/ui/" + strings.TrimPrefix(p, "static/")
		if w := get(t, h, "GET", path); w.Code != 200 || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("GET %s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		return nil
	})
}

func TestHandlerRefusesUnknownFiles(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/ui/nope.js", "/ui/js/", "/ui/../ui.go", "/ui/static/index.html", "/ui/js/main.js/x", "/other"} {
		w := get(t, h, "GET", p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
		if w.Header().Get("Content-Security-Policy") == "" || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("GET %s: the 404 lacks its CSP or JSON error: %q", p, w.Body.String())
		}
	}
	if w := get(t, h, "POST", "/ui/"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", w.Code)
	}
	if w := get(t, h, "HEAD", "/ui/js/api.js"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /ui/js/api.js: %d, %d bytes", w.Code, w.Body.Len())
	}
}

// The page and its scripts keep to the Content-Security-Policy and never turn data
// into HTML: no inline script or style, no innerHTML, no eval, nothing from
// elsewhere.
func TestFilesKeepToThePolicy(t *testing.T) {
	banned := map[string]*regexp.Regexp{
		"innerHTML/outerHTML":      regexp.MustCompile(`\.(inner|outer)HTML\b|insertAdjacentHTML|document\.write`),
		"eval":                     regexp.MustCompile(`\beval\(|new Function\(`),
		"a URL off this server":    regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//`),
		"an inline style or event": regexp.MustCompile(`<style|\sstyle=|\son[a-z]+=`),
		"an inline script":         regexp.MustCompile(`<script>|<script(\s+type="module")?>[^<]`),
	}
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".svg") {
			return err
		}
		b, _ := static.ReadFile(p)
		for what, re := range banned {
			if what == "an inline script" && !strings.HasSuffix(p, ".html") {
				continue // the scripts may speak of <script> in comments
			}
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s has %s: %q", p, what, b[loc[0]:loc[1]])
			}
		}
		return nil
	})
}
