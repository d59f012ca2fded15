package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestLogFileRotation: the log file is rotated by bytes, the newest rotated file is
// PATH.1, and no more than maxFiles rotated files are kept (0 keeps them all).
func TestLogFileRotation(t *testing.T) {
	line := func(i int) string { return fmt.Sprintf("line %02d .....\n", i) } // 16 bytes
	tests := []struct {
		name     string
		maxBytes int64
		maxFiles int
		lines    int
		want     map[string][]int // file (relative to PATH, "" for PATH) → the lines in it
	}{
		{"no rotation", 0, 3, 10, map[string][]int{"": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}},
		{"three lines a file, two kept", 48, 2, 10, map[string][]int{"": {9}, ".1": {6, 7, 8}, ".2": {3, 4, 5}}},
		{"a line longer than the limit", 10, 2, 3, map[string][]int{"": {2}, ".1": {1}, ".2": {0}}},
		{"all kept", 32, 0, 7, map[string][]int{"": {6}, ".1": {4, 5}, ".2": {2, 3}, ".3": {0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "grid.log")
			f, err := openLogFile(path, tt.maxBytes, tt.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.lines; i++ {
				if _, err := f.Write([]byte(line(i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			matches, _ := filepath.Glob(path + "*")
			var got, want []string
			for _, m := range matches {
				got = append(got, strings.TrimPrefix(m, path))
			}
			for suffix, lines := range tt.want {
				want = append(want, suffix)
				var b strings.Builder
				for _, i := range lines {
					b.WriteString(line(i))
				}
				content, err := os.ReadFile(path + suffix)
				if err != nil {
					t.Fatal(err)
				}
				if string(content) != b.String() {
					t.Errorf("%s holds %q, want %q", path+suffix, content, b.String())
				}
			}
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("files %q, want %q", got, want)
			}
		})
	}
}

func TestLogFileReopensAppending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grid.log")
	if err := os.WriteFile(path, []byte("0123456789\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The size already there counts: the next line goes past 16 bytes.
	f, err := openLogFile(path, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("abcdefgh\n"))
	if b, _ := os.ReadFile(path + ".1"); string(b) != "0123456789\n" {
		t.Errorf("rotated file %q", b)
	}
}

// TestLogger: -log-json logs JSON, -log-file logs to the file as well as stderr, and
// SetLevel on the root logger (a reload) changes its named sub-loggers too.
func TestLogger(t *testing.T) {
	var stderr bytes.Buffer
	old := logStderr
	logStderr = &stderr
	defer func() { logStderr = old }()

	path := filepath.Join(t.TempDir(), "grid.log")
	lf := logFlags{level: "warn", json: true, file: path, rotateBytes: 1 << 20, rotateMaxFiles: 2}
	logger, closeLog, err := lf.newLogger("server")
	if err != nil {
		t.Fatal(err)
	}
	sub := logger.Named("heartbeat")
	sub.Info("hidden at warn")
	live := lf.live(logger)
	commit, err := live.prepare(map[string]string{"log-level": "debug"})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	sub.Debug("shown at debug", "agent", "a1")
	if _, err := live.prepare(map[string]string{"log-level": "loud"}); err == nil {
		t.Error("log level loud accepted")
	}
	closeLog()

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, stderr.Bytes()) {
		t.Errorf("the file and stderr differ:\n%s\n%s", file, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	if len(lines) != 1 {
		t.Fatalf("log lines %q, want the debug line alone", lines)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if entry["@message"] != "shown at debug" || entry["@module"] != "server.heartbeat" || entry["@level"] != "debug" || entry["agent"] != "a1" {
		t.Errorf("log entry %v", entry)
	}
	if logger.GetLevel() != hclog.Debug {
		t.Errorf("root level %s", logger.GetLevel())
	}
}

func TestLogFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		lf   logFlags
		want string
	}{
		{"level", logFlags{level: "loud"}, `unknown log level "loud"`},
		{"no such dir", logFlags{level: "info", file: filepath.Join(dir, "none", "grid.log")}, "-log-file: open " + filepath.Join(dir, "none", "grid.log")},
		{"negative bytes", logFlags{level: "info", file: filepath.Join(dir, "a.log"), rotateBytes: -1}, "-log-rotate-bytes must be 0 or more"},
		{"negative files", logFlags{level: "info", file: filepath.Join(dir, "a.log"), rotateMaxFiles: -1}, "-log-rotate-max-files must be 0 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.lf.newLogger("x"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
