package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// nodeIDPattern is what a node ID may look like: it names a directory and appears on
// a command line, so it is kept to a safe set of characters.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validNodeID(id string) error {
	if !nodeIDPattern.MatchString(id) {
		return fmt.Errorf("node ID %q must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// storageRoot is the directory every node's storage path must lie in. It is known by
// two names, as configured and with symlinks resolved, and a storage path may use
// either.
type storageRoot struct {
	lexical  string
	resolved string
}

func newStorageRoot(dir string) (storageRoot, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return storageRoot{}, fmt.Errorf("create storage root: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return storageRoot{}, fmt.Errorf("storage root: %w", err)
	}
	return storageRoot{lexical: filepath.Clean(dir), resolved: resolved}, nil
}

// within reports whether p is base or lies below it; both are clean and absolute.
func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve turns a requested storage path (absolute, or relative to the root) into
// the clean absolute path under the root that the node will use. The leader checks
// paths too; the agent checks again because it is the one that writes there.
func (r storageRoot) resolve(p string) (string, error) {
	if p == "" {
		return "", errors.New("a storage path is required")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.lexical, p)
	}
	p = filepath.Clean(p)
	var rel string
	switch {
	case within(r.resolved, p):
		rel, _ = filepath.Rel(r.resolved, p)
	case within(r.lexical, p):
		rel, _ = filepath.Rel(r.lexical, p)
	default:
		return "", fmt.Errorf("storage path %s is outside the storage root %s", p, r.lexical)
	}
	if rel == "." {
		return "", fmt.Errorf("storage path %s is the storage root itself; use a directory inside it", p)
	}
	abs := filepath.Join(r.resolved, rel)
	if err := r.checkLinks(abs); err != nil {
		return "", err
	}
	return abs, nil
}

// checkLinks makes sure that the part of p that exists does not lead out of the root
// through a symlink.
func (r storageRoot) checkLinks(p string) error {
	existing, rest := p, ""
	for {
		real, err := filepath.EvalSymlinks(existing)
		if err == nil {
			real = filepath.Join(real, rest)
			if !within(r.resolved, real) || real == r.resolved {
				return fmt.Errorf("storage path %s leads out of the storage root %s through a symlink", p, r.lexical)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage path %s: %w", p, err)
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return nil
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
}

// prepare creates a node's storage directory and checks it again once it exists.
func (r storageRoot) prepare(p string) error {
	if err := r.checkLinks(p); err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o700); err != nil {
		return fmt.Errorf("create storage path: %w", err)
	}
	return r.checkLinks(p)
}

// Log files: each node's stdout and stderr go to files in its own directory under
// the agent's data dir, <data-dir>/logs/<node-id>/, which outlive the node so that
// its last words can still be read after it failed or was stopped.
const (
	stdoutLog = "stdout.log"
	stderrLog = "stderr.log"
	// maxLogBytes is the size past which a log is rotated, to <name>.1, when the node
	// (re)starts.
	maxLogBytes = 64 << 20
	// maxTailBytes bounds what one NodeLogs answer carries per log.
	maxTailBytes = 1 << 20
)

// logsDir is the directory of every node's logs in the agent's data dir.
const logsDir = "logs"

// ownPaths are the agent's own files and directories in its data dir, which no node's
// storage path may be, lie inside, or contain.
func ownPaths(dataDir string) []string {
	// "serf" holds the gossip layer's snapshot.
	names := []string{logsDir, stateFile, reportsFile, lockFile, "serf"}
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = filepath.Join(filepath.Clean(dataDir), name)
	}
	return out
}

func nodeLogDir(dataDir, nodeID string) string {
	return filepath.Join(dataDir, logsDir, nodeID)
}

// openLog opens a log for appending, rotating it first if it has grown too large.
func openLog(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogBytes {
		_ = os.Rename(path, path+".1")
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// tailFile returns at most the last n lines of the file at path, and at most
// maxBytes of them. A missing file has no lines.
func tailFile(path string, n int, maxBytes int64) ([]byte, error) {
	return tailFileFrom(path, 0, n, maxBytes)
}

// tailFileFrom is tailFile on the part of the file from offset from on.
func tailFileFrom(path string, from int64, n int, maxBytes int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if from > size {
		from = 0 // rotated or truncated since
	}
	const chunk = 64 << 10
	var buf []byte
	off := size
	for off > from && int64(len(buf)) < maxBytes {
		step := min(int64(chunk), off-from, maxBytes-int64(len(buf)))
		off -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(b, buf...)
		// One more newline than lines wanted: the file's last byte is usually one.
		if countLines(buf) > n {
			break
		}
	}
	if off > from {
		// Stopped short of the start: drop the partial line in front.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return lastLines(buf, n), nil
}

func countLines(b []byte) int {
	return bytes.Count(b, []byte{'\n'})
}

// lastLines returns the last n lines of b, a trailing newline not counting as the
// start of another line.
func lastLines(b []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	seen := 0
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			seen++
			if seen == n {
				return b[i+1:]
			}
		}
	}
	return b
}

func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
