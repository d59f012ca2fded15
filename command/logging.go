package command

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newLogger returns the root logger of a long-running command.
func newLogger(name, level string) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("unknown log level %q: use trace, debug, info, warn or error", level)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, Output: os.Stderr, Exclude: shutdownNoise}), nil
}

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
