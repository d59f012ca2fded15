package command

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// logFile is the file of -log-file, rotated by size: once a write would take it past
// maxBytes, PATH becomes PATH.1 (the one before becomes PATH.2, and so on), a new
// PATH is started, and the oldest beyond maxFiles are removed. Rotation is by bytes,
// not megabytes, which the -log-rotate-bytes flag promises and tests rely on. A
// write is one log line (hclog writes a line at a time), so no line is split.
type logFile struct {
	path     string
	maxBytes int64 // 0: never rotate
	maxFiles int   // rotated files kept; 0 keeps them all

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openLogFile(path string, maxBytes int64, maxFiles int) (*logFile, error) {
	if maxBytes < 0 {
		return nil, fmt.Errorf("-log-rotate-bytes must be 0 or more, got %d", maxBytes)
	}
	if maxFiles < 0 {
		return nil, fmt.Errorf("-log-rotate-max-files must be 0 or more, got %d", maxFiles)
	}
	l := &logFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("-log-file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("-log-file: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.maxBytes > 0 && l.size > 0 && l.size+int64(len(p)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			// Keep logging to the file as it is: a full log beats a lost line.
			fmt.Fprintf(os.Stderr, "rotate log file %s: %v\n", l.path, err)
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate shifts PATH.N to PATH.N+1, PATH to PATH.1, and starts PATH anew.
func (l *logFile) rotate() error {
	rotated, err := l.rotated()
	if err != nil {
		return err
	}
	// From the oldest, so that no rename overwrites a file not yet moved.
	for i := len(rotated) - 1; i >= 0; i-- {
		n := rotated[i]
		if l.maxFiles > 0 && n >= l.maxFiles {
			if err := os.Remove(l.numbered(n)); err != nil {
				return err
			}
			continue
		}
		if err := os.Rename(l.numbered(n), l.numbered(n+1)); err != nil {
			return err
		}
	}
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	if err := os.Rename(l.path, l.numbered(1)); err != nil {
		return err
	}
	return l.open()
}

func (l *logFile) numbered(n int) string { return l.path + "." + strconv.Itoa(n) }

// rotated returns the numbers of the rotated files there are, in increasing order.
func (l *logFile) rotated() ([]int, error) {
	matches, err := filepath.Glob(l.path + ".*")
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, l.path+"."))
		if err == nil && n > 0 {
			ns = append(ns, n)
		}
	}
	sort.Ints(ns)
	return ns, nil
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
