package checker

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/anishathalye/porcupine"
)

// nodeState is what the model knows of one node name. The grid never deletes a node
// nor gives its name to another (fsm/node_apply.go refuses a name any node ever had),
// so a name only moves forward: absent, then present, then stop requested.
type nodeState int

const (
	absent nodeState = iota
	// present: a node has the name and no stop was requested since it was spawned
	// or since its last stop failed.
	present
	// stopRequested: a stop of the node was accepted.
	stopRequested
)

func (s nodeState) String() string {
	return [...]string{"absent", "present", "stop requested"}[s]
}

// answer is what one operation told about its node name: the model's output.
type answer int

const (
	// done: a spawn or a stop took effect (2xx), or may have (Unknown).
	done answer = iota
	// notFound: the name names no node (a stop's or a read's 404, a read's
	// Found=false).
	notFound
	// nameTaken: a spawn was refused because the name was taken.
	nameTaken
	// alreadyStopped: a stop was refused because the node is stopped (409).
	alreadyStopped
	// found: a read found the node, with the status in input.status.
	found
)

// input is an operation as the model sees it.
type input struct {
	kind    Kind
	unknown bool   // the outcome is unknown: the operation may not have happened
	status  string // a found read's status
}

// Statuses a read may see while no stop is requested, and once one is. A node
// is pending only until its first stop (no transition leads back to pending), and
// stopping only after a stop. The rest can be seen either way: an agent may
// report a node stopped on its own (fsm NodeStopped from any status); a failed
// node is stopped at once when asked, and a node whose agent cannot stop it is
// running again (NodeStopFailed) and may then crash and restart or fail; "lost" is
// any active node whose agent is offline (server/nodes.go apiNode).
var (
	statusesBeforeStop = setOf("pending", "running", "restarting", "failed", "stopped", "lost")
	statusesAfterStop  = setOf("stopping", "stopped", "running", "restarting", "failed", "lost")
)

func setOf(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// step is the model of one node name: whether the operation in could have
// answered out in state s, and the state after it.
func step(s nodeState, in input, out answer) (bool, nodeState) {
	switch out {
	case notFound:
		return s == absent, s
	case nameTaken, alreadyStopped:
		return s != absent, s
	case found:
		if s == absent {
			return false, s
		}
		if s == present {
			return statusesBeforeStop[in.status], s
		}
		return statusesAfterStop[in.status], s
	}
	// done: a spawn or a stop that took effect; an unknown one may also have been
	// refused, which leaves the state as it is.
	switch in.kind {
	case Spawn:
		if s == absent {
			return true, present
		}
		return in.unknown, s
	case Stop:
		if s != absent {
			return true, stopRequested
		}
		return in.unknown, s
	}
	return false, s
}

// states is a set of nodeStates, a bit each: what the model may hold when the history
// does not say (after a snapshot restore, the state of a name is whatever the
// snapshot had). The model steps every state of the set and keeps those the answer
// allows: porcupine's own power-set construction, written out for three states.
type states uint8

const allStates = states(1<<absent | 1<<present | 1<<stopRequested)

func (ss states) has(s nodeState) bool { return ss&(1<<s) != 0 }

func (ss states) String() string {
	var names []string
	for s := absent; s <= stopRequested; s++ {
		if ss.has(s) {
			names = append(names, s.String())
		}
	}
	return strings.Join(names, " or ")
}

// stepAll steps every state of ss; ok is false when the answer fits none.
func stepAll(ss states, in input, out answer) (bool, states) {
	var next states
	for s := absent; s <= stopRequested; s++ {
		if !ss.has(s) {
			continue
		}
		if ok, n := step(s, in, out); ok {
			next |= 1 << n
		}
	}
	return next != 0, next
}

// modelFrom is the porcupine model of one node name's history from a set of
// states; Check partitions by name itself, to tell which name failed.
func modelFrom(init states) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return init },
		Step: func(state, in, out interface{}) (bool, interface{}) {
			return stepAll(state.(states), in.(input), out.(answer))
		},
		DescribeOperation: func(in, out interface{}) string {
			i, okIn := in.(input)
			o, okOut := out.(answer)
			if !okIn || !okOut {
				return "?" // porcupine's visualization asks of its own entries too
			}
			return describe(i, o)
		},
		DescribeState: func(state interface{}) string {
			if ss, ok := state.(states); ok {
				return ss.String()
			}
			return "?"
		},
	}
}

func describe(in input, out answer) string {
	verb := string(in.kind)
	if in.unknown {
		verb += "?"
	}
	switch out {
	case notFound:
		return verb + " → not found"
	case nameTaken:
		return verb + " → name taken"
	case alreadyStopped:
		return verb + " → already stopped"
	case found:
		return fmt.Sprintf("%s → %s", verb, in.status)
	}
	return verb + " → ok"
}

// interpret turns an operation into the model's input and output; ok is false
// for an operation that tells nothing: a failure that did not happen for a reason
// the model knows (a bad request, a refused token, a full agent), or a read
// without an answer.
func interpret(op Op) (in input, out answer, ok bool) {
	in = input{kind: op.Kind, unknown: op.Outcome == Unknown, status: op.Status}
	switch op.Kind {
	case Spawn:
		switch {
		case op.Outcome == OK, op.Outcome == Unknown:
			return in, done, true
		case spawnNameTaken(op):
			return in, nameTaken, true
		}
	case Stop:
		switch {
		case op.Outcome == OK, op.Outcome == Unknown:
			return in, done, true
		case op.HTTPStatus == http.StatusNotFound:
			return in, notFound, true
		case op.HTTPStatus == http.StatusConflict:
			return in, alreadyStopped, true
		}
	case Read:
		switch {
		case op.Outcome == OK && op.Found:
			return in, found, true
		case op.Outcome == OK, op.Outcome == Failed && op.HTTPStatus == http.StatusNotFound:
			return in, notFound, true
		}
	}
	return in, done, false
}

// spawnNameTaken reports whether a spawn was refused because its name was taken.
// The grid answers every refusal of a spawn by the state with 400 (fsm.ErrRejected
// maps to FailedPrecondition), a taken port or a full agent alike, so only the
// message tells: fsm/node_apply.go's "name %s is already used by node %s".
func spawnNameTaken(op Op) bool {
	return op.Outcome == Failed && op.HTTPStatus == http.StatusBadRequest &&
		strings.Contains(op.Error, "is already used by node")
}
