// Package durable writes small files so that after a crash they hold either their old
// or their new content, never a torn mix: server and node IDs, an agent's state and
// its queue of undelivered reports.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile writes data to path atomically and durably: to a temporary file beside
// it, fsynced, renamed over path, and the directory fsynced so the rename survives too.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadOrCreateID returns the ID kept in the file at path, which names a process's
// data for good (a server's Raft ID, a storage node's ID). The first time, when there
// is no file, it keeps newID() there and returns it. validate, if not nil, checks an
// ID read back: its error, which should say what the ID is and why it will not do,
// is returned as it is.
//
// The file is written with WriteFile, so a crash leaves no half-written ID, and is
// readable by all: an ID is no secret, and tools may want to read it.
func LoadOrCreateID(path string, newID func() string, validate func(id string) error) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("ID file %s is empty", path)
		}
		if validate != nil {
			if err := validate(id); err != nil {
				return "", err
			}
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read ID: %w", err)
	}
	id := newID()
	if err := WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write ID: %w", err)
	}
	return id, nil
}
