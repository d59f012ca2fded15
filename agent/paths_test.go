package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStorageRootResolve(t *testing.T) {
	base := t.TempDir()
	rootDir := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{rootDir, outside, filepath.Join(rootDir, "real")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(rootDir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(rootDir, "real"), filepath.Join(rootDir, "inner")); err != nil {
		t.Fatal(err)
	}
	// The root itself reached through a symlink: paths may use either name.
	linkedRoot := filepath.Join(base, "linked-root")
	if err := os.Symlink(rootDir, linkedRoot); err != nil {
		t.Fatal(err)
	}
	root, err := newStorageRoot(linkedRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string // empty: an error containing err
		err  string
	}{
		{"n1", filepath.Join(rootDir, "n1"), ""},
		{"a/b/../n1", filepath.Join(rootDir, "a", "n1"), ""},
		{filepath.Join(rootDir, "n1"), filepath.Join(rootDir, "n1"), ""},
		{filepath.Join(linkedRoot, "n1"), filepath.Join(rootDir, "n1"), ""},
		{"inner/n1", filepath.Join(rootDir, "inner", "n1"), ""},
		{"", "", "required"},
		{".", "", "root itself"},
		{"../outside/n1", "", "outside the storage root"},
		{"n1/../../outside", "", "outside the storage root"},
		{"/etc", "", "outside the storage root"},
		{"escape", "", "symlink"},
		{"escape/n1/deeper", "", "symlink"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := root.resolve(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolve(%q) = %q, %v; want an error with %q", tc.path, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("resolve(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
			}
		})
	}
}

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("x", 100<<10) + "\n" + "last\n"
	for _, tc := range []struct {
		name     string
		content  string
		lines    int
		maxBytes int64
		want     string
	}{
		{"fewer lines than asked", "a\nb\n", 5, 1 << 20, "a\nb\n"},
		{"last lines", "a\nb\nc\nd\n", 2, 1 << 20, "c\nd\n"},
		{"no trailing newline", "a\nb\nc", 2, 1 << 20, "b\nc"},
		{"empty", "", 3, 1 << 20, ""},
		{"line longer than a chunk", long, 2, 1 << 20, long},
		{"bounded by bytes", "aaaa\nbbbb\n", 5, 6, "bbbb\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tailFile(write(tc.name, tc.content), tc.lines, tc.maxBytes)
			if err != nil || string(got) != tc.want {
				t.Fatalf("tail = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	from := write("from", "old\nnew1\nnew2\n")
	if got, err := tailFileFrom(from, 4, 5, 1<<20); err != nil || string(got) != "new1\nnew2\n" {
		t.Fatalf("tail from offset = %q, %v", got, err)
	}
	if got, err := tailFileFrom(from, 1000, 1, 1<<20); err != nil || string(got) != "new2\n" {
		t.Fatalf("tail from beyond the end = %q, %v", got, err)
	}
	if got, err := tailFile(filepath.Join(dir, "missing"), 3, 100); err != nil || got != nil {
		t.Fatalf("tail of a missing file = %q, %v", got, err)
	}
}

func TestValidNodeID(t *testing.T) {
	for id, ok := range map[string]bool{
		"n1": true, "node-001": true, "a.b_c": true, "0f9e3c1a-8d1f-4f5e-9c0a-1b2c3d4e5f60": true,
		"": false, ".": false, "..": false, "../x": false, "a/b": false, "-flag": false, "a b": false,
		strings.Repeat("a", 129): false,
	} {
		if err := validNodeID(id); (err == nil) != ok {
			t.Errorf("validNodeID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}
