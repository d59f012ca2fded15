//go:build unix

package storage

import "syscall"

// statfs returns the bytes free for this process, and the size, of the filesystem
// that holds dir.
func statfs(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	// Bavail, not Bfree: the blocks an unprivileged process may use.
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
