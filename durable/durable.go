// Package durable writes small files so that after a crash they hold either their old
// or their new content, never a torn mix: server and node IDs, an agent's state and
// its queue of undelivered reports.
package durable

import (
	"os"
	"path/filepath"
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
