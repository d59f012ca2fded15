package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/sutragrid/grid/durable"
)

const nodeIDFile = "node-id"

// loadNodeID returns the node's ID: the one kept in dir, checked against want if
// given, or want or a new random ID, which it then keeps.
func loadNodeID(dir, want string) (string, error) {
	path := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		have := strings.TrimSpace(string(b))
		if want != "" && want != have {
			return "", fmt.Errorf("data dir %s belongs to node %q, not %q", dir, have, want)
		}
		return have, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read node ID: %w", err)
	}
	id := want
	if id == "" {
		id = uuid.NewString()
	}
	// A crash must never leave a half-written ID.
	if err := durable.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write node ID: %w", err)
	}
	return id, nil
}
