package checker

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Kind is what a client asked of the grid's nodes table.
type Kind string

const (
	// Spawn asks for a node by name (POST /v1/nodes); Stop for a node to stop
	// (DELETE /v1/node/NAME); Read for one node (GET /v1/node/NAME).
	Spawn Kind = "spawn"
	Stop  Kind = "stop"
	Read  Kind = "read"
)

// Outcome is how the call ended as the client saw it.
type Outcome string

const (
	// OK: the server answered with success. Failed: the server answered with a
	// definite refusal (a 4xx: the operation did not happen). Unknown: no answer, a
	// timeout or a 5xx: the operation may or may not have happened.
	OK      Outcome = "ok"
	Failed  Outcome = "failed"
	Unknown Outcome = "unknown"
)

// Op is one call a load client made, with its outcome as that client saw it.
type Op struct {
	Client int  `json:"client"`
	Kind   Kind `json:"kind"`
	// Name is the node's name: the load generator names every node it spawns, and
	// addresses it by that name afterwards.
	Name string `json:"name"`
	// Server is the HTTP address the call went to; Stale is whether a read asked
	// with ?stale (such reads may lag and are not checked for linearizability).
	Server string `json:"server"`
	Stale  bool   `json:"stale,omitempty"`
	// Call and Return are when the call was made and when its answer came back.
	Call    time.Time `json:"call"`
	Return  time.Time `json:"return"`
	Outcome Outcome   `json:"outcome"`
	// HTTPStatus is the answer's status code (0: none came).
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
	// Found and Status are a successful read's answer: whether the node exists, and
	// its status (pending, running, restarting, stopping, stopped, failed).
	Found  bool   `json:"found,omitempty"`
	Status string `json:"status,omitempty"`
	// NodeID is the ID the grid gave the node, when the answer said it.
	NodeID string `json:"node_id,omitempty"`
}

// History collects the operations of concurrent clients.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records one finished operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// WriteFile writes the history as JSON, one operation per line, for a failed run to
// be examined later.
func (h *History) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, op := range h.Ops() {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
