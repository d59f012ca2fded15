package command

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// logStderr is where the long-running commands log, besides -log-file. Tests that run
// a command in this process point it elsewhere.
var logStderr io.Writer = os.Stderr

// newLogger returns the root logger of a long-running command, on stderr.
func newLogger(name, level string) (hclog.Logger, error) {
	lf := logFlags{level: level}
	logger, _, err := lf.newLogger(name)
	return logger, err
}

// parseLevel reads a -log-level.
func parseLevel(level string) (hclog.Level, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return lvl, fmt.Errorf("unknown log level %q: use trace, debug, info, warn or error", level)
	}
	return lvl, nil
}

// logFlags are the logging flags of server, agent and storage.
type logFlags struct {
	level          string
	json           bool
	file           string
	rotateBytes    int64
	rotateMaxFiles int
}

// Defaults of -log-rotate-bytes and -log-rotate-max-files: a log file takes at most
// about 6 × 64 MiB.
const (
	defaultLogRotateBytes    = 64 << 20
	defaultLogRotateMaxFiles = 5
)

func (lf *logFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&lf.level, "log-level", "info", "")
	fs.BoolVar(&lf.json, "log-json", false, "")
	fs.StringVar(&lf.file, "log-file", "", "")
	fs.Int64Var(&lf.rotateBytes, "log-rotate-bytes", defaultLogRotateBytes, "")
	fs.IntVar(&lf.rotateMaxFiles, "log-rotate-max-files", defaultLogRotateMaxFiles, "")
}

// newLogger returns the root logger of a command, and what closes its log file when
// the command is done. Its named sub-loggers share its level, so that SetLevel (a
// SIGHUP reload) changes them all.
func (lf *logFlags) newLogger(name string) (hclog.Logger, func(), error) {
	lvl, err := parseLevel(lf.level)
	if err != nil {
		return nil, nil, err
	}
	out, closeFile := logStderr, func() {}
	if lf.file != "" {
		f, err := openLogFile(lf.file, lf.rotateBytes, lf.rotateMaxFiles)
		if err != nil {
			return nil, nil, err
		}
		out, closeFile = io.MultiWriter(logStderr, f), func() { _ = f.Close() }
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: name, Level: lvl, Output: out, JSONFormat: lf.json, Exclude: shutdownNoise,
		IndependentLevels: false,
	})
	return logger, closeFile, nil
}

// live is the log level, as a reload may change it.
func (lf *logFlags) live(logger hclog.Logger) liveGroup {
	return liveGroup{names: []string{"log-level"}, prepare: func(v map[string]string) (func(), error) {
		lvl, err := parseLevel(v["log-level"])
		if err != nil {
			return nil, err
		}
		return func() { logger.SetLevel(lvl) }, nil
	}}
}

// logHelp is the help text of the logging flags.
const logHelp = `
  -log-level=LEVEL
    trace, debug, info, warn or error. SIGHUP reloads it from the configuration
    files. Default: info.

  -log-json
    Log in JSON, one object a line. Default: false.

  -log-file=PATH
    Log to PATH too, besides stderr. Once PATH would grow past -log-rotate-bytes
    it is renamed PATH.1 (PATH.1 becomes PATH.2, and so on) and a new PATH begun.

  -log-rotate-bytes=N
    The size at which the log file is rotated; 0 never rotates it.
    Default: 67108864 (64 MiB).

  -log-rotate-max-files=N
    How many rotated log files to keep, the oldest removed first; 0 keeps them
    all. Default: 5.`

// configHelp is the help text of -config.
const configHelp = `
  -config=PATH
    A configuration file (HCL, or JSON when it ends in .json), or a directory
    whose *.hcl and *.json files are read in name order. May be given several
    times; a key in a later file replaces the same key in an earlier one. Every
    flag has a key, its name with _ for - (data_dir = "/var/grid"); flags on the
    command line win over the files. SIGHUP reads the files again and applies
    what can change without a restart. See website/configuration.md.`

// shutdownNoiseMarks are what the libraries' errors say when the process itself
// closed what they were using: memberlist's gossip loop writes to the UDP socket its
// Shutdown just closed ("use of closed network connection"), and Raft's transport
// fails the reads of connections it is closing ("transport shutdown"). Raft, memberlist
// and the net package log these at ERROR from their own goroutines, which no stopping
// order avoids; they only ever follow a shutdown this process started, and an
// operator reading ERROR after a clean stop would look for a fault that is not there.
var shutdownNoiseMarks = []string{
	"use of closed network connection",
	"transport shutdown",
}

// shutdownNoise reports whether a log line is an error that only says that this
// process closed a connection or a listener (see shutdownNoiseMarks). It looks at the
// message and at string and error values, as hclog passes them.
func shutdownNoise(level hclog.Level, msg string, args ...interface{}) bool {
	if level < hclog.Error {
		return false
	}
	texts := []string{msg}
	for _, a := range args {
		switch v := a.(type) {
		case string:
			texts = append(texts, v)
		case error:
			texts = append(texts, v.Error())
		}
	}
	for _, t := range texts {
		for _, mark := range shutdownNoiseMarks {
			if strings.Contains(t, mark) {
				return true
			}
		}
	}
	return false
}
