package storage

import (
	"fmt"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/sutragrid/grid/durable"
)

const nodeIDFile = "node-id"

// loadNodeID returns the node's ID: the one kept in dir, checked against want if
// given, or want or a new random ID, which it then keeps.
func loadNodeID(dir, want string) (string, error) {
	newID := uuid.NewString
	if want != "" {
		newID = func() string { return want }
	}
	return durable.LoadOrCreateID(filepath.Join(dir, nodeIDFile), newID, func(have string) error {
		if want != "" && want != have {
			return fmt.Errorf("data dir %s belongs to node %q, not %q", dir, have, want)
		}
		return nil
	})
}
