// Package secure is the check that servers and agents make at start: on an address
// other than loopback, a process runs with its protections on (TLS, gossip
// encryption, ACLs) unless its operator says -insecure.
package secure

import (
	"fmt"
	"net"
	"strings"
)

// Protection is one protection a process needs off loopback.
type Protection struct {
	// Name says what it is and how to turn it on: "TLS (-ca-file, -cert-file, -key-file)".
	Name string
	On   bool
}

// Check checks that a process binding bind has every protection on, unless bind is a
// loopback IP. A process missing some is refused with an error naming them, unless
// insecure: then Check returns the names of those that are off, for the caller to warn
// of (nil when nothing is off or bind is loopback).
func Check(bind string, insecure bool, ps ...Protection) (off []string, err error) {
	if ip := net.ParseIP(bind); ip != nil && ip.IsLoopback() {
		return nil, nil
	}
	for _, p := range ps {
		if !p.On {
			off = append(off, p.Name)
		}
	}
	if len(off) == 0 {
		return nil, nil
	}
	if insecure {
		return off, nil
	}
	return nil, fmt.Errorf("refusing to run on %s, which is not a loopback address, without %s: turn them on, or give -insecure to run without them",
		bind, list(off))
}

// Warning is the line a process logs at every start with -insecure, off being what
// Check returned.
func Warning(bind string, off []string) string {
	return fmt.Sprintf("running insecure (-insecure) on %s, which is not a loopback address: without %s", bind, list(off))
}

// list joins names as "a, b and c".
func list(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
