//go:build !unix

package storage

import "errors"

// statfs cannot read free space here: storage nodes run on Unix (agents on Linux
// only). This lets the package build for the grid binary's other commands; a node
// started here keeps no reserve, and its guard logs a warning on the writes it
// admits so.
func statfs(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free disk space is not known on this system")
}
