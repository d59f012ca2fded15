package command

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sutragrid/grid/api"
)

// snapshotTimeout bounds a whole snapshot transfer, body included.
const snapshotTimeout = 10 * time.Minute

// Names of the files in a snapshot archive.
const (
	snapshotMetaFile  = "meta.json"
	snapshotStateFile = "state.bin"
	snapshotSumsFile  = "SHA256SUMS"
)

// snapshotClient is client() without the overall timeout of the default HTTP client:
// a snapshot streams the whole state, and the context given to each call bounds it.
func (m *Meta) snapshotClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	if m.address != "" {
		cfg.Address = m.address
	}
	if m.token != "" {
		cfg.Token = m.token
	}
	cfg.HTTPClient = &http.Client{}
	return api.NewClient(cfg)
}

// snapshotContext returns a context bounded by snapshotTimeout that is also cancelled
// by SIGINT or SIGTERM, so an interrupted transfer still cleans up after itself.
func snapshotContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	return ctx, func() { cancel(); stop() }
}

// snapshotFileArg checks that args is exactly one file name.
func snapshotFileArg(args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", errors.New("missing argument: the snapshot FILE")
	case len(args) > 1:
		return "", argsError(args[1:])
	case args[0] == "":
		return "", errors.New("the snapshot FILE must not be empty")
	}
	return args[0], nil
}

// snapshotResult is the -json output of snapshot save and restore.
type snapshotResult struct {
	File  string `json:"file"`
	Bytes int64  `json:"bytes"`
}

// OperatorSnapshotSaveCommand is `grid operator snapshot save`.
type OperatorSnapshotSaveCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorSnapshotSaveCommand) Synopsis() string {
	return "Save a snapshot of the replicated state to a file"
}

// Help implements cli.Command.
func (c *OperatorSnapshotSaveCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator snapshot save [options] FILE

  Save a snapshot of the cluster's replicated state to FILE. The leader takes
  the snapshot, whichever server -address names. The archive is checked
  (its files and their SHA-256 sums) before it is kept, and it is written
  atomically: a temporary file in the same directory is synced and then
  renamed to FILE, so FILE is either the complete new snapshot or untouched.
  An existing FILE is replaced. The file is readable by its owner only.

  With -json the output is {"file": FILE, "bytes": N}.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorSnapshotSaveCommand) Run(args []string) int {
	const name = "operator snapshot save"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	file, err := snapshotFileArg(fs.Args())
	if err != nil {
		return c.usageError(name, err)
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return c.fail("save snapshot: %s is a directory", file)
	}
	client, err := c.snapshotClient()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := snapshotContext()
	defer cancel()
	body, err := client.SnapshotSave(ctx)
	if err != nil {
		return c.fail("save snapshot: %v", err)
	}
	defer body.Close()
	n, err := writeSnapshotFile(file, body)
	if err != nil {
		return c.fail("save snapshot to %s: %v", file, err)
	}
	if c.json {
		return c.printJSON(snapshotResult{File: file, Bytes: n})
	}
	c.Ui.Output(fmt.Sprintf("Saved snapshot to %s (%d bytes)", file, n))
	return 0
}

// writeSnapshotFile copies a snapshot archive from r to file atomically: into a
// temporary file in the same directory, synced, checked, then renamed over file, and
// the directory synced so the rename survives a crash. On any error file is untouched
// and the temporary file is removed. It returns the size of the archive.
func writeSnapshotFile(file string, r io.Reader) (n int64, err error) {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(tmp, r); err != nil {
		return n, fmt.Errorf("download: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if _, err = tmp.Seek(0, io.SeekStart); err != nil {
		return n, err
	}
	if err = checkSnapshotArchive(tmp); err != nil {
		return n, fmt.Errorf("the server sent a damaged snapshot (%d bytes): %w", n, err)
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	if err = os.Rename(tmp.Name(), file); err != nil {
		return n, err
	}
	// The snapshot is in place; a failure to sync the directory only weakens
	// durability across a power loss, so it is reported but the file stays.
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil && !errors.Is(derr, syscall.EINVAL) {
			return n, fmt.Errorf("sync directory %s: %w", dir, derr)
		}
	}
	return n, nil
}

// checkSnapshotArchive reads a snapshot archive and checks that it is whole, as the
// server will on restore: a tar archive holding meta.json, state.bin and SHA256SUMS,
// where SHA256SUMS gives the SHA-256 of meta.json and state.bin and every sum it gives
// matches. Its lines are "<hex sum>  <name>", as sha256sum(1) writes them.
func checkSnapshotArchive(r io.Reader) error {
	tr := tar.NewReader(bufio.NewReader(r))
	got := map[string][]byte{} // file name -> SHA-256 of its content
	var sums []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if !hdr.FileInfo().Mode().IsRegular() {
			continue
		}
		name := path.Clean(hdr.Name)
		if name == snapshotSumsFile {
			if sums, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		got[name] = h.Sum(nil)
	}

	for _, want := range []string{snapshotMetaFile, snapshotStateFile} {
		if _, ok := got[want]; !ok {
			return fmt.Errorf("archive has no %s", want)
		}
	}
	if sums == nil {
		return fmt.Errorf("archive has no %s", snapshotSumsFile)
	}
	listed := map[string]bool{}
	for i, line := range strings.Split(string(sums), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return fmt.Errorf("%s line %d: want \"<sha256>  <file>\"", snapshotSumsFile, i+1)
		}
		want, err := hex.DecodeString(fields[0])
		if err != nil || len(want) != sha256.Size {
			return fmt.Errorf("%s line %d: invalid SHA-256 sum %q", snapshotSumsFile, i+1, fields[0])
		}
		name := path.Clean(strings.TrimPrefix(fields[1], "*"))
		sum, ok := got[name]
		if !ok {
			return fmt.Errorf("%s lists %s, which the archive does not hold", snapshotSumsFile, name)
		}
		if !bytes.Equal(sum, want) {
			return fmt.Errorf("checksum mismatch for %s", name)
		}
		listed[name] = true
	}
	for _, want := range []string{snapshotMetaFile, snapshotStateFile} {
		if !listed[want] {
			return fmt.Errorf("%s has no sum for %s", snapshotSumsFile, want)
		}
	}
	return nil
}

// OperatorSnapshotRestoreCommand is `grid operator snapshot restore`.
type OperatorSnapshotRestoreCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *OperatorSnapshotRestoreCommand) Synopsis() string {
	return "Replace the replicated state with a saved snapshot"
}

// Help implements cli.Command.
func (c *OperatorSnapshotRestoreCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid operator snapshot restore [options] FILE

  Replace the cluster's replicated state with the snapshot in FILE, saved
  earlier by 'grid operator snapshot save'. The request is forwarded to the
  leader, which verifies the archive before it restores anything; the
  restored state is then replicated to every server. The archive's files and
  checksums are also checked here before it is sent.

  This overwrites the current state of the whole cluster. It is meant for
  disaster recovery and for moving state between clusters.

  With -json the output is {"file": FILE, "bytes": N}.
` + clientHelp)
}

// Run implements cli.Command.
func (c *OperatorSnapshotRestoreCommand) Run(args []string) int {
	const name = "operator snapshot restore"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	file, err := snapshotFileArg(fs.Args())
	if err != nil {
		return c.usageError(name, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return c.fail("restore snapshot: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c.fail("restore snapshot: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return c.fail("restore snapshot: %s is not a regular file", file)
	}
	// Check the archive here first: a damaged or wrong file fails at once, before it
	// is uploaded. The server checks it again.
	if err := checkSnapshotArchive(f); err != nil {
		return c.fail("restore snapshot: %s is not a valid snapshot: %v", file, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return c.fail("restore snapshot: %v", err)
	}
	client, err := c.snapshotClient()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := snapshotContext()
	defer cancel()
	if err := client.SnapshotRestore(ctx, f); err != nil {
		return c.fail("restore snapshot from %s: %v", file, err)
	}
	if c.json {
		return c.printJSON(snapshotResult{File: file, Bytes: fi.Size()})
	}
	c.Ui.Output(fmt.Sprintf("Restored snapshot from %s (%d bytes)", file, fi.Size()))
	return 0
}
