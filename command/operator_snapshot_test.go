package command

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// archiveFile is one file of a test snapshot archive.
type archiveFile struct {
	name, body string
}

// buildArchive returns a tar archive of files.
func buildArchive(t *testing.T, files ...archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sumsOf renders SHA256SUMS for files, as sha256sum(1) would.
func sumsOf(files ...archiveFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256([]byte(f.body)), f.name)
	}
	return b.String()
}

var (
	testMeta  = archiveFile{"meta.json", `{"index":42,"term":3,"version":1}`}
	testState = archiveFile{"state.bin", "\x00\x01agents\x00state bytes\xff"}
)

// validArchive returns a well-formed snapshot archive.
func validArchive(t *testing.T) []byte {
	t.Helper()
	return buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", sumsOf(testMeta, testState)})
}

// snapshotServer serves body at GET /v1/operator/snapshot.
func snapshotServer(body []byte) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{"GET /v1/operator/snapshot": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		_, _ = w.Write(body)
	}}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestOperatorSnapshotSave(t *testing.T) {
	const cmd = "operator snapshot save"
	good := validArchive(t)
	badSum := buildArchive(t, testMeta, testState,
		archiveFile{"SHA256SUMS", sumsOf(testMeta, archiveFile{"state.bin", "other"})})

	const old = "previous snapshot"
	tests := []struct {
		name     string
		routes   map[string]http.HandlerFunc
		existing bool   // FILE exists before the run, holding old
		file     string // FILE relative to the temp dir; default "backup.snap"
		args     []string
		want     []byte // FILE's content afterwards; nil: as before the run
		checks   []check
	}{
		{
			name:   "saves",
			routes: snapshotServer(good),
			want:   good,
			checks: []check{exitCode(0), noStderr(), stdoutIs(fmt.Sprintf("Saved snapshot to FILE (%d bytes)", len(good)))},
		},
		{
			name:     "replaces an existing file",
			routes:   snapshotServer(good),
			existing: true,
			want:     good,
			checks:   []check{exitCode(0)},
		},
		{
			name:   "json",
			routes: snapshotServer(good),
			args:   []string{"-json"},
			want:   good,
			checks: []check{exitCode(0), noStderr(), jsonIs(fmt.Sprintf(`{"file":"FILE","bytes":%d}`, len(good)))},
		},
		{
			name:     "checksum mismatch keeps the old file",
			routes:   snapshotServer(badSum),
			existing: true,
			checks:   []check{failsWith("save snapshot to FILE", "damaged snapshot", "checksum mismatch for state.bin")},
		},
		{
			name:     "truncated archive keeps the old file",
			routes:   snapshotServer(good[:700]),
			existing: true,
			checks:   []check{failsWith("damaged snapshot")},
		},
		{
			name:   "not an archive",
			routes: snapshotServer([]byte("<html>proxy error</html>")),
			checks: []check{failsWith("damaged snapshot")},
		},
		{
			name:   "archive without state",
			routes: snapshotServer(buildArchive(t, testMeta, archiveFile{"SHA256SUMS", sumsOf(testMeta)})),
			checks: []check{failsWith("archive has no state.bin")},
		},
		{
			name:   "archive without sums",
			routes: snapshotServer(buildArchive(t, testMeta, testState)),
			checks: []check{failsWith("archive has no SHA256SUMS")},
		},
		{
			name: "connection lost mid-transfer keeps the old file",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/snapshot": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(good)))
				_, _ = w.Write(good[:len(good)/2])
			}},
			existing: true,
			checks:   []check{failsWith("save snapshot to FILE", "download")},
		},
		{
			name:     "no leader",
			routes:   map[string]http.HandlerFunc{"GET /v1/operator/snapshot": errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			existing: true,
			checks:   []check{failsWith("save snapshot: no cluster leader (HTTP 503)")},
		},
		{
			name:   "directory does not exist",
			routes: snapshotServer(good),
			file:   "missing/backup.snap",
			checks: []check{failsWith("save snapshot to FILE", "no such file or directory")},
		},
		{
			name:   "FILE is a directory",
			routes: snapshotServer(good),
			file:   ".",
			checks: []check{failsWith("is a directory")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			dir := t.TempDir()
			rel := tt.file
			if rel == "" {
				rel = "backup.snap"
			}
			file := filepath.Join(dir, rel)
			if tt.existing {
				if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := dirEntries(t, dir)
			f := newFakeAPI(t, tt.routes)
			args := append([]string{"-address=" + f.URL}, tt.args...)
			r := runCommand(t, cmd, append(args, file)...)
			// The checks name the file FILE.
			r.stdout = strings.ReplaceAll(r.stdout, file, "FILE")
			r.stderr = strings.ReplaceAll(r.stderr, file, "FILE")
			for _, c := range tt.checks {
				c(t, r)
			}

			// No temporary file is left behind, whatever happened.
			after := dirEntries(t, dir)
			if r.code == 0 && !tt.existing {
				before = append(before, filepath.Base(file))
				sort.Strings(before)
			}
			if strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("directory holds %q, want %q", after, before)
			}
			if rel == "." || strings.Contains(rel, "/") {
				return
			}
			got, err := os.ReadFile(file)
			switch {
			case tt.want != nil:
				if !bytes.Equal(got, tt.want) {
					t.Errorf("FILE holds %d bytes, want the %d bytes served", len(got), len(tt.want))
				}
				fi, _ := os.Stat(file)
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("FILE mode = %v, want 0600", fi.Mode().Perm())
				}
			case tt.existing:
				if string(got) != old {
					t.Errorf("FILE = %q, want it untouched (%q)", got, old)
				}
			default:
				if !os.IsNotExist(err) {
					t.Errorf("FILE exists after a failed save (err %v)", err)
				}
			}
		})
	}
}

func TestOperatorSnapshotRestore(t *testing.T) {
	const cmd = "operator snapshot restore"
	good := validArchive(t)
	damaged := buildArchive(t, testMeta, archiveFile{"state.bin", "tampered"},
		archiveFile{"SHA256SUMS", sumsOf(testMeta, testState)})

	// received records what PUT /v1/operator/snapshot got.
	var (
		mu       sync.Mutex
		received []byte
	)
	accept := func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		mu.Lock()
		received = b
		mu.Unlock()
	}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		file   string // relative to the temp dir; default "backup.snap" holding good
		args   []string
		sent   bool // the server must have received good
		checks []check
	}{
		{
			name:   "restores",
			routes: map[string]http.HandlerFunc{"PUT /v1/operator/snapshot": accept},
			sent:   true,
			checks: []check{exitCode(0), noStderr(), stdoutIs(fmt.Sprintf("Restored snapshot from FILE (%d bytes)", len(good)))},
		},
		{
			name:   "json",
			routes: map[string]http.HandlerFunc{"PUT /v1/operator/snapshot": accept},
			args:   []string{"-json"},
			sent:   true,
			checks: []check{exitCode(0), jsonIs(fmt.Sprintf(`{"file":"FILE","bytes":%d}`, len(good)))},
		},
		{
			name:   "server rejects the archive",
			routes: map[string]http.HandlerFunc{"PUT /v1/operator/snapshot": errorReply(http.StatusBadRequest, "checksum mismatch for state.bin")},
			checks: []check{failsWith("restore snapshot from FILE: checksum mismatch for state.bin (HTTP 400)")},
		},
		{
			name:   "damaged file is not sent",
			routes: map[string]http.HandlerFunc{"PUT /v1/operator/snapshot": accept},
			file:   "damaged.snap",
			checks: []check{failsWith("restore snapshot: FILE is not a valid snapshot: checksum mismatch for state.bin")},
		},
		{
			name:   "file does not exist",
			file:   "nope.snap",
			checks: []check{failsWith("restore snapshot:", "no such file or directory")},
		},
		{
			name:   "file is a directory",
			file:   ".",
			checks: []check{failsWith("is not a regular file")},
		},
		{
			name:   "missing FILE",
			file:   "-",
			checks: []check{usageFails(cmd, "missing argument: the snapshot FILE")},
		},
		{
			name:   "two files",
			args:   []string{},
			file:   "a b",
			checks: []check{usageFails(cmd, `unexpected argument "b"`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			mu.Lock()
			received = nil
			mu.Unlock()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "backup.snap"), good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "damaged.snap"), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFakeAPI(t, tt.routes)
			args := append([]string{"-address=" + f.URL}, tt.args...)
			file := filepath.Join(dir, "backup.snap")
			switch tt.file {
			case "":
				args = append(args, file)
			case "-":
			case "a b":
				args = append(args, "a", "b")
			default:
				file = filepath.Join(dir, tt.file)
				args = append(args, file)
			}
			r := runCommand(t, cmd, args...)
			r.stdout = strings.ReplaceAll(r.stdout, file, "FILE")
			r.stderr = strings.ReplaceAll(r.stderr, file, "FILE")
			for _, c := range tt.checks {
				c(t, r)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.sent && !bytes.Equal(received, good) {
				t.Errorf("server received %d bytes, want the %d bytes of FILE", len(received), len(good))
			}
			if !tt.sent && received != nil {
				t.Errorf("server received %d bytes, want nothing sent", len(received))
			}
			if tt.routes == nil && len(f.Requests()) != 0 {
				t.Errorf("requests %q sent, want none", f.Requests())
			}
		})
	}
}

func TestCheckSnapshotArchive(t *testing.T) {
	both := sumsOf(testMeta, testState)
	tests := []struct {
		name    string
		archive []byte
		wantErr string // "" for a valid archive
	}{
		{"valid", validArchive(t), ""},
		{"binary-mode marker and ./ names", buildArchive(t,
			archiveFile{"./meta.json", testMeta.body}, archiveFile{"./state.bin", testState.body},
			archiveFile{"./SHA256SUMS", strings.ReplaceAll(both, "  ", " *")}), ""},
		{"upper-case hex", buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", strings.ToUpper(both[:64]) + both[64:]}), ""},
		{"empty input", nil, "archive has no meta.json"},
		{"no meta", buildArchive(t, testState, archiveFile{"SHA256SUMS", sumsOf(testState)}), "archive has no meta.json"},
		{"state not listed", buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", sumsOf(testMeta)}), "SHA256SUMS has no sum for state.bin"},
		{"meta not listed", buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", sumsOf(testState)}), "SHA256SUMS has no sum for meta.json"},
		{"lists a missing file", buildArchive(t, testMeta, testState,
			archiveFile{"SHA256SUMS", both + sumsOf(archiveFile{"extra.bin", "x"})}), "lists extra.bin, which the archive does not hold"},
		{"malformed line", buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", both + "garbage\n"}), "SHA256SUMS line 3"},
		{"short sum", buildArchive(t, testMeta, testState, archiveFile{"SHA256SUMS", "abcd  state.bin\n"}), "invalid SHA-256 sum"},
		{"meta mismatch", buildArchive(t, archiveFile{"meta.json", "{}"}, testState, archiveFile{"SHA256SUMS", both}), "checksum mismatch for meta.json"},
		{"not a tar archive", []byte(strings.Repeat("not a tar archive\n", 64)), "read archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSnapshotArchive(bytes.NewReader(tt.archive))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkSnapshotArchive: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkSnapshotArchive: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
