package gossip

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// keyMismatches are the words memberlist uses when a message from another member
// cannot be read for want of the right key, and what they mean. memberlist says it
// on both sides of a refused join: the member refusing a message logs it, and it
// answers with an error, encrypted with its own key or not encrypted at all, that
// the joining member cannot read either.
var keyMismatches = []struct{ words, reason string }{
	{"no installed keys could decrypt the message",
		"the other member encrypts gossip with a key that is not in this member's keyring"},
	{"remote state is encrypted and encryption is not configured",
		"the other member encrypts gossip, but this member has no gossip encryption key"},
	{"encryption is configured but remote state is not encrypted",
		"this member encrypts gossip, but the other member sends it in plaintext: it has no gossip encryption key"},
	{"decrypt packet failed",
		"a gossip packet from the other member could not be decrypted: it encrypts with a key that is not in this member's keyring, or not at all"},
}

// keyMismatch returns what a memberlist log line or error means when it says that
// the keys of two members do not match.
func keyMismatch(s string) (reason string, ok bool) {
	lower := strings.ToLower(s)
	for _, m := range keyMismatches {
		if strings.Contains(lower, m.words) {
			return m.reason, true
		}
	}
	return "", false
}

// keyHint is what a member refused for its key should check.
const keyHint = "every member needs a key of the pool's gossip keyring (-encrypt): list it with 'grid operator gossip keyring -list'"

// explainJoinError returns err on one line, and, when it says that this member's
// gossip key does not match the pool's, with what that means and what to check.
func explainJoinError(err error) error {
	if err == nil {
		return nil
	}
	msg := flatten(err)
	if reason, ok := keyMismatch(msg); ok {
		return errors.New(msg + " (gossip encryption keys do not match: " + reason + "; " + keyHint + ")")
	}
	if msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// flatten returns err's message on one line: memberlist returns the errors of a
// join, one per address, as a multierror, whose message spans several lines.
func flatten(err error) string {
	if me, ok := err.(interface{ WrappedErrors() []error }); ok {
		var parts []string
		for _, e := range me.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// keyLogInterval is how long keyLog stays quiet about one host and reason after it
// explained a refusal: a member left out of a key rotation sends a packet every
// second or so.
const keyLogInterval = 30 * time.Second

// keyLog is the writer under serf's and memberlist's standard loggers. It passes
// every line on, and after a line that says a message could not be read for want of
// the right key it logs one line of its own that says so in plain words, with the
// other member's address, at most once per host, reason and keyLogInterval. (On
// loopback every member's connections come from 127.0.0.1: the reason tells apart
// a member with a wrong key from one with none.)
type keyLog struct {
	next   io.Writer
	logger hclog.Logger

	mu   sync.Mutex
	last map[string]time.Time // by host and reason
	now  func() time.Time
}

func newKeyLog(next io.Writer, logger hclog.Logger) *keyLog {
	return &keyLog{next: next, logger: logger, last: map[string]time.Time{}, now: time.Now}
}

func (w *keyLog) Write(p []byte) (int, error) {
	n, err := w.next.Write(p)
	line := string(p)
	if reason, ok := keyMismatch(line); ok {
		peer := peerOf(line)
		if w.due(peer, reason) {
			w.logger.Error("gossip refused: encryption keys do not match", "peer", peer, "reason", reason, "hint", keyHint)
		}
	}
	return n, err
}

// due reports whether a refusal involving peer for reason is to be explained now.
func (w *keyLog) due(peer, reason string) bool {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	host += " " + reason
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if last, ok := w.last[host]; ok && now.Sub(last) < keyLogInterval {
		return false
	}
	for h, t := range w.last { // forget what was not heard of for a while
		if now.Sub(t) >= keyLogInterval {
			delete(w.last, h)
		}
	}
	w.last[host] = now
	return true
}

// peerOf returns the other member's address in a memberlist log line: "from=ADDR"
// where a message came from, "failed to join ADDR:" where a join went.
func peerOf(line string) string {
	if i := strings.Index(line, "from="); i >= 0 {
		if f := strings.Fields(line[i+len("from="):]); len(f) > 0 {
			return f[0]
		}
	}
	if i := strings.Index(line, "failed to join "); i >= 0 {
		if f := strings.Fields(line[i+len("failed to join "):]); len(f) > 0 {
			return strings.TrimSuffix(f[0], ":")
		}
	}
	return "unknown"
}
