package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestWriteFileIntoMissingDirFails(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "file"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestLoadOrCreateID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server-id")
	calls := 0
	newID := func() string { calls++; return "id-1" }
	id, err := LoadOrCreateID(path, newID, nil)
	if err != nil || id != "id-1" {
		t.Fatalf("first start: %q, %v", id, err)
	}
	// Later starts read the kept ID back and never make another.
	for range 2 {
		id, err = LoadOrCreateID(path, func() string { calls++; return "id-2" }, nil)
		if err != nil || id != "id-1" {
			t.Fatalf("restart: %q, %v; want id-1", id, err)
		}
	}
	if calls != 1 {
		t.Errorf("newID called %d times, want once", calls)
	}
	if got, _ := os.ReadFile(path); string(got) != "id-1\n" {
		t.Errorf("file holds %q", got)
	}
}

func TestLoadOrCreateIDRejects(t *testing.T) {
	dir := t.TempDir()
	refuse := errors.New("not a server ID")
	for _, tc := range []struct {
		name, content string
		validate      func(string) error
		want          string
	}{
		{"an ID validate refuses", "garbage\n", func(string) error { return refuse }, "not a server ID"},
		{"an empty file", " \n", nil, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "id")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			id, err := LoadOrCreateID(path, func() string { return "fresh" }, tc.validate)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, %v; want an error saying %q", id, err, tc.want)
			}
			// A file that will not do is reported, never replaced.
			if got, _ := os.ReadFile(path); string(got) != tc.content {
				t.Errorf("file now holds %q", got)
			}
		})
	}
}

func TestLoadOrCreateIDUnreadable(t *testing.T) {
	// A directory where the file should be: neither missing nor readable.
	path := t.TempDir()
	if _, err := LoadOrCreateID(path, func() string { return "fresh" }, nil); err == nil || !strings.Contains(err.Error(), "read ID") {
		t.Fatalf("err = %v, want a read error", err)
	}
}
