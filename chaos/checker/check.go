package checker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is what the check found.
type Verdict string

const (
	Linearizable    Verdict = "linearizable"
	NotLinearizable Verdict = "not linearizable"
	// TimedOut: the check ran out of time before it could decide.
	TimedOut Verdict = "unknown"
)

// Count is one kind of operation with one outcome, a key of Result.Counts.
type Count struct {
	Kind    Kind
	Outcome Outcome
}

// Result is the outcome of Check.
type Result struct {
	Verdict Verdict
	// Failed is the node name whose history is not linearizable (the first in
	// name order when several are), or the one being checked when time ran out.
	Failed string
	// Counts counts every operation given, stale reads included, by kind and
	// outcome.
	Counts map[Count]int
	// Checked counts the operations the model judged; Stale the reads with ?stale,
	// which may lag by design and are not judged; Skipped the operations that tell
	// nothing (a refusal for another reason than the name, an unanswered read).
	Checked, Stale, Skipped int

	// info is porcupine's account of Failed's history, and model the model it was
	// checked with, for Visualize.
	info  *porcupine.LinearizationInfo
	model porcupine.Model
}

// Check reports whether ops, the history of concurrent clients, is linearizable
// with respect to the grid's nodes table, name by name (see model.go for what each
// answer allows). An operation whose outcome is Unknown may have taken effect at any
// time after its call, or never. timeout bounds the whole check (0: none); when it
// runs out the verdict is TimedOut.
func Check(ops []Op, timeout time.Duration) Result {
	return CheckWithRollbacks(ops, nil, timeout)
}

// Rollback is a span in which the nodes table may have been put back to an earlier
// state: an operator's snapshot saved at From and restored by To.
type Rollback struct{ From, To time.Time }

// CheckWithRollbacks is Check for a history in which the state was rolled back:
// the history is checked in epochs, before the first rollback, between two, after
// the last, each name in each epoch on its own. An epoch after a rollback starts
// from any state (whatever the snapshot held); an operation that spans a rollback
// is not judged (Skipped: its effect may have been undone); an operation of unknown
// outcome also counts in every later epoch, where it may still take effect.
// Rollbacks must not overlap.
func CheckWithRollbacks(ops []Op, rollbacks []Rollback, timeout time.Duration) Result {
	res := Result{Verdict: Linearizable, Counts: map[Count]int{}}
	rb := append([]Rollback(nil), rollbacks...)
	sort.Slice(rb, func(i, j int) bool { return rb[i].From.Before(rb[j].From) })
	byKey := res.partition(ops, rb)
	keys := make([]epochKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].epoch < keys[j].epoch
	})
	deadline := time.Now().Add(timeout)
	for _, k := range keys {
		left := time.Until(deadline)
		if timeout > 0 && left <= 0 {
			res.Verdict, res.Failed = TimedOut, k.name
			return res
		}
		if timeout <= 0 {
			left = 0
		}
		m := modelFrom(1 << absent)
		if k.epoch > 0 {
			m = modelFrom(allStates)
		}
		verdict, info := porcupine.CheckOperationsVerbose(m, byKey[k], left)
		switch verdict {
		case porcupine.Illegal:
			res.Verdict, res.Failed, res.info, res.model = NotLinearizable, k.String(), &info, m
			return res
		case porcupine.Unknown:
			res.Verdict, res.Failed = TimedOut, k.String()
			return res
		}
	}
	return res
}

// epochKey is one name's history in one epoch: epoch 0 is before the first
// rollback, epoch i after the i-th.
type epochKey struct {
	name  string
	epoch int
}

func (k epochKey) String() string {
	if k.epoch == 0 {
		return k.name
	}
	return fmt.Sprintf("%s (after rollback %d)", k.name, k.epoch)
}

// partition counts ops and turns those the model judges into porcupine operations,
// by node name and epoch. An operation of unknown outcome returns after every other
// event: as if it never returned, so it may take effect at any time after its call,
// including after everything else, which is the same as never.
func (r *Result) partition(ops []Op, rollbacks []Rollback) map[epochKey][]porcupine.Operation {
	byKey := map[epochKey][]porcupine.Operation{}
	var end int64
	for _, op := range ops {
		r.Counts[Count{op.Kind, op.Outcome}]++
		end = max(end, op.Call.UnixNano(), op.Return.UnixNano())
	}
	add := func(k epochKey, op Op, in input, out answer, call, ret int64) {
		byKey[k] = append(byKey[k], porcupine.Operation{ClientId: op.Client, Input: in, Output: out, Call: call, Return: ret})
	}
	for _, op := range ops {
		if op.Kind == Read && op.Stale {
			r.Stale++
			continue
		}
		in, out, ok := interpret(op)
		if !ok {
			r.Skipped++
			continue
		}
		epoch, spans := epochOf(op, in.unknown, rollbacks)
		write := (in.kind == Spawn || in.kind == Stop) && out == done
		if spans && !write {
			r.Skipped++ // a read or a refusal across a rollback tells nothing sure
			continue
		}
		r.Checked++
		if !in.unknown && !spans {
			add(epochKey{op.Name, epoch}, op, in, out, op.Call.UnixNano(), op.Return.UnixNano())
			continue
		}
		if !spans {
			add(epochKey{op.Name, epoch}, op, in, out, op.Call.UnixNano(), end+1)
		}
		// It may take effect in any later epoch, from its start, or never: an
		// operation that spans a rollback may have taken effect before it (and been
		// undone) or after it, so it counts as of unknown outcome from then on.
		if write {
			in.unknown = true
			for e := epoch + 1; e <= len(rollbacks); e++ {
				add(epochKey{op.Name, e}, op, in, out, rollbacks[e-1].To.UnixNano(), end+1)
			}
		}
	}
	return byKey
}

// epochOf returns the epoch in which op was called, and whether it spans a
// rollback (an operation of unknown outcome is called in a rollback's span if it
// was called in it; it never returns).
func epochOf(op Op, unknown bool, rollbacks []Rollback) (epoch int, spans bool) {
	for i, rb := range rollbacks {
		if op.Call.Before(rb.From) {
			return i, !unknown && op.Return.After(rb.From)
		}
		if op.Call.Before(rb.To) {
			return i, true // called while the state was being put back
		}
	}
	return len(rollbacks), false
}

// Visualize writes porcupine's HTML view of the history that is not linearizable,
// its longest linearizable prefixes and where they fail, into dir, and returns the
// file's path. It is an error to call it unless the verdict is NotLinearizable.
func (r *Result) Visualize(dir string) (string, error) {
	if r.info == nil {
		return "", errors.New("visualize: no history failed the check")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("visualize: %w", err)
	}
	path := filepath.Join(dir, "linearizability-"+unsafeChars.ReplaceAllString(r.Failed, "_")+".html")
	if err := porcupine.VisualizePath(r.model, *r.info, path); err != nil {
		return "", fmt.Errorf("visualize %s: %w", r.Failed, err)
	}
	return path, nil
}

// unsafeChars are those a node name's file name does without.
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// String sums the result up in one line, for a test's or a run's log.
func (r *Result) String() string {
	s := fmt.Sprintf("%s: %d operations checked, %d stale reads not checked, %d skipped",
		r.Verdict, r.Checked, r.Stale, r.Skipped)
	if r.Failed != "" {
		s += fmt.Sprintf("; node %s", r.Failed)
	}
	return s
}
