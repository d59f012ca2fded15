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

	// info is porcupine's account of Failed's history, for Visualize.
	info *porcupine.LinearizationInfo
}

// Check reports whether ops, the history of concurrent clients, is linearizable
// with respect to the grid's nodes table, name by name (see model.go for what each
// answer allows). An operation whose outcome is Unknown may have taken effect at any
// time after its call, or never. timeout bounds the whole check (0: none); when it
// runs out the verdict is TimedOut.
func Check(ops []Op, timeout time.Duration) Result {
	res := Result{Verdict: Linearizable, Counts: map[Count]int{}}
	byName := res.partition(ops)
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		left := time.Until(deadline)
		if timeout > 0 && left <= 0 {
			res.Verdict, res.Failed = TimedOut, name
			return res
		}
		if timeout <= 0 {
			left = 0
		}
		verdict, info := porcupine.CheckOperationsVerbose(model, byName[name], left)
		switch verdict {
		case porcupine.Illegal:
			res.Verdict, res.Failed, res.info = NotLinearizable, name, &info
			return res
		case porcupine.Unknown:
			res.Verdict, res.Failed = TimedOut, name
			return res
		}
	}
	return res
}

// partition counts ops and turns those the model judges into porcupine operations,
// by node name. An operation of unknown outcome returns after every other event of
// its name: as if it never returned, so it may take effect at any time after its
// call, including after everything else, which is the same as never.
func (r *Result) partition(ops []Op) map[string][]porcupine.Operation {
	byName := map[string][]porcupine.Operation{}
	var end int64
	for _, op := range ops {
		r.Counts[Count{op.Kind, op.Outcome}]++
		end = max(end, op.Call.UnixNano(), op.Return.UnixNano())
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
		r.Checked++
		ret := op.Return.UnixNano()
		if in.unknown {
			ret = end + 1
		}
		byName[op.Name] = append(byName[op.Name], porcupine.Operation{
			ClientId: op.Client, Input: in, Output: out, Call: op.Call.UnixNano(), Return: ret,
		})
	}
	return byName
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
	if err := porcupine.VisualizePath(model, *r.info, path); err != nil {
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
