package ask

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sutragrid/grid/events"
)

// Intent is what kind of answer a question asks for. The values are the contract's.
type Intent string

// The intents of website/ask.md.
const (
	IntentHistory       Intent = "history"
	IntentList          Intent = "list"
	IntentCount         Intent = "count"
	IntentRate          Intent = "rate"
	IntentTop           Intent = "top"
	IntentCause         Intent = "cause"
	IntentBefore        Intent = "before"
	IntentAfter         Intent = "after"
	IntentChain         Intent = "chain"
	IntentState         Intent = "state"
	IntentLast          Intent = "last"
	IntentUnanswerable  Intent = "unanswerable"
	IntentUnknownEntity Intent = "unknown_entity"
	IntentAction        Intent = "action"
)

// Intents lists every intent in the contract's order.
var Intents = []Intent{
	IntentHistory, IntentList, IntentCount, IntentRate, IntentTop, IntentCause,
	IntentBefore, IntentAfter, IntentChain, IntentState, IntentLast,
	IntentUnanswerable, IntentUnknownEntity, IntentAction,
}

// Interpretation is how a question was understood: the "interpretation" object of
// website/ask.md, field for field. Empty strings, zero and empty lists are
// meaningful values in the contract, so no field is omitted from the JSON; Types
// is the one list that is null (all types) rather than empty.
type Interpretation struct {
	Intent       Intent        `json:"intent"`
	Entities     []string      `json:"entities"`
	EntitiesKind string        `json:"entities_kind"`
	State        string        `json:"state"`
	Types        []events.Type `json:"types"`
	Severity     string        `json:"severity"`
	// Since and Until bound the half-open range [Since, Until); nil is unbounded.
	Since         *time.Time `json:"since"`
	Until         *time.Time `json:"until"`
	DefaultWindow bool       `json:"default_window"`
	Order         string     `json:"order"`
	GroupBy       []string   `json:"group_by"`
	Bucket        string     `json:"bucket"`
	Limit         int        `json:"limit"`
	Window        string     `json:"window"`
	Reason        string     `json:"reason"`
}

// Names is what the grid has ever known, so that a name can be told apart from a
// typo: Interpret answers unknown_entity for an agent or node name not in it.
type Names struct {
	// Agents are agent names.
	Agents []string
	// Nodes are storage nodes; a question may name one by Name or by ID.
	Nodes []Node

	// ix is the lookup index Indexed builds; nil until then.
	ix index
}

// Indexed returns the names with their lookup index built. Interpret otherwise
// builds it for every question: a caller that asks many questions against the
// same names (a server between changes of its state) builds it once, and spares
// its heap and its garbage collector an index per question.
func (n Names) Indexed() Names {
	n.ix = newIndex(n)
	return n
}

func (n Names) index() index {
	if n.ix != nil {
		return n.ix
	}
	return newIndex(n)
}

// Node is one storage node the grid has known.
type Node struct {
	ID    string
	Name  string
	Agent string
}

// The values the contract allows in the smaller fields.
var (
	groupKeys    = []string{"type", "agent_id", "node_id"}
	buckets      = []string{"", "1m", "1h", "1d"}
	orders       = []string{"", "asc", "desc"}
	severities   = []string{"", string(events.SeverityWarning), string(events.SeverityError), string(events.SeverityCritical)}
	entityKinds  = []string{"", "agent", "node", "cluster"}
	entityStates = []string{"", "healthy", "degraded", "critical", "offline", "running", "stopped", "failed", "pending", "restarting", "stopping"}
)

// Validate reports the first way in which in breaks the contract. Interpret never
// returns an interpretation that fails it; the fuzz test holds it to that, and a
// caller that builds interpretations by hand can use it too.
func (in Interpretation) Validate() error {
	if !slices.Contains(Intents, in.Intent) {
		return fmt.Errorf("intent %q is not one of the contract's", in.Intent)
	}
	if in.Entities == nil || in.GroupBy == nil {
		return fmt.Errorf("entities and group_by must be lists, not null")
	}
	for _, e := range in.Entities {
		if e == "" || strings.TrimSpace(e) != e {
			return fmt.Errorf("entity %q is not a name", e)
		}
	}
	if !slices.Contains(entityKinds, in.EntitiesKind) {
		return fmt.Errorf("entities_kind %q is not agent, node or cluster", in.EntitiesKind)
	}
	if !slices.Contains(entityStates, in.State) {
		return fmt.Errorf("state %q is no status", in.State)
	}
	if in.Types != nil && len(in.Types) == 0 {
		return fmt.Errorf("types is empty: all types is null")
	}
	for i, t := range in.Types {
		if !t.Valid() {
			return fmt.Errorf("type %q is no event type", t)
		}
		if slices.Contains(in.Types[:i], t) {
			return fmt.Errorf("type %q is listed twice", t)
		}
	}
	if in.Intent == IntentRate && len(in.Types) != 2 {
		return fmt.Errorf("a rate needs types [numerator, denominator], got %v", in.Types)
	}
	if !slices.Contains(severities, in.Severity) {
		return fmt.Errorf("severity %q is not warning, error or critical", in.Severity)
	}
	for _, t := range []*time.Time{in.Since, in.Until} {
		if t != nil && t.Location() != time.UTC {
			return fmt.Errorf("time %s is not in UTC", t)
		}
		if !writable(t) {
			return fmt.Errorf("time %s has no RFC 3339 form", t)
		}
	}
	// An empty range is well formed: "today" asked at midnight.
	if in.Since != nil && in.Until != nil && in.Since.After(*in.Until) {
		return fmt.Errorf("since %s is after until %s", in.Since, in.Until)
	}
	if in.DefaultWindow && (in.Since == nil || in.Until == nil) {
		return fmt.Errorf("default_window without a window")
	}
	if !slices.Contains(orders, in.Order) {
		return fmt.Errorf("order %q is not asc or desc", in.Order)
	}
	for _, g := range in.GroupBy {
		if !slices.Contains(groupKeys, g) {
			return fmt.Errorf("group_by %q is not type, agent_id or node_id", g)
		}
	}
	if !slices.Contains(buckets, in.Bucket) {
		return fmt.Errorf("bucket %q is not 1m, 1h or 1d", in.Bucket)
	}
	if in.Limit < 0 || (in.Intent == IntentTop) != (in.Limit > 0) {
		return fmt.Errorf("limit %d: only top has one, and it is positive", in.Limit)
	}
	if in.Window != "" {
		if d, err := time.ParseDuration(in.Window); err != nil || d <= 0 {
			return fmt.Errorf("window %q is not a positive Go duration", in.Window)
		}
	}
	switch in.Intent {
	case IntentUnanswerable, IntentUnknownEntity, IntentAction:
		if in.Reason == "" {
			return fmt.Errorf("%s without a reason", in.Intent)
		}
	}
	return nil
}
