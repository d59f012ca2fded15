package acl

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Resource is what a policy grants access to.
type Resource string

// The resources of a policy, one block each.
const (
	// Agent: the agents' own calls (register, heartbeat, node reports) to write, and
	// the list of agents and gossip members to read.
	Agent Resource = "agent"
	// Node: storage nodes; write spawns and stops them.
	Node Resource = "node"
	// Event: the events, their stream, counts and questions (POST /v1/ask). Events are
	// derived by the servers: there is nothing to write.
	Event Resource = "event"
	// Operator: the cluster's status, Raft peers (write removes one) and derived events.
	Operator Resource = "operator"
)

// Resources lists the resources in the order policies are written in.
var Resources = []Resource{Agent, Node, Event, Operator}

// Level is how much of a resource a policy grants.
type Level string

// The levels, from none to the most. Write implies read. Deny refuses the resource
// whatever another policy of the same token grants.
const (
	LevelNone Level = ""
	Deny      Level = "deny"
	Read      Level = "read"
	Write     Level = "write"
)

// Allows reports whether holding l is enough for need (Read or Write).
func (l Level) Allows(need Level) bool {
	switch l {
	case Write:
		return need == Read || need == Write
	case Read:
		return need == Read
	}
	return false
}

// Rules is a parsed policy: the level it sets for each resource (LevelNone where it
// says nothing).
type Rules struct {
	Agent    Level `json:"agent,omitempty"`
	Node     Level `json:"node,omitempty"`
	Event    Level `json:"event,omitempty"`
	Operator Level `json:"operator,omitempty"`
}

// Level returns the level r sets for res.
func (r *Rules) Level(res Resource) Level {
	if p := r.field(res); p != nil {
		return *p
	}
	return LevelNone
}

func (r *Rules) field(res Resource) *Level {
	switch res {
	case Agent:
		return &r.Agent
	case Node:
		return &r.Node
	case Event:
		return &r.Event
	case Operator:
		return &r.Operator
	}
	return nil
}

// HCL renders r as a policy that parses back to r, one line per resource it sets.
func (r *Rules) HCL() string {
	var b strings.Builder
	for _, res := range Resources {
		if l := r.Level(res); l != LevelNone {
			fmt.Fprintf(&b, "%s { policy = %q }\n", res, l)
		}
	}
	return b.String()
}

// MaxPolicyBytes bounds a policy's source.
const MaxPolicyBytes = 64 << 10

// ParsePolicy parses a policy written in HCL: one block per resource, each with a
// policy attribute of "deny", "read" or "write":
//
//	agent    { policy = "read" }
//	node     { policy = "write" }
//	event    { policy = "read" }
//	operator { policy = "deny" }
//
// An error names the line and the key at fault ("line 2: node: ...").
func ParsePolicy(src string) (*Rules, error) {
	if len(src) > MaxPolicyBytes {
		return nil, fmt.Errorf("the policy is %d bytes, over the limit of %d", len(src), MaxPolicyBytes)
	}
	file, diags := hclsyntax.ParseConfig([]byte(src), "policy.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError("", diags)
	}
	schema := &hcl.BodySchema{}
	for _, res := range Resources {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: string(res)})
	}
	content, diags := file.Body.Content(schema)
	if diags.HasErrors() {
		return nil, diagError("", diags)
	}
	rules := &Rules{}
	first := map[string]int{}
	for _, block := range content.Blocks {
		line := block.DefRange.Start.Line
		if prev, dup := first[block.Type]; dup {
			return nil, fmt.Errorf("line %d: %s: set twice (first on line %d)", line, block.Type, prev)
		}
		first[block.Type] = line
		level, err := blockLevel(block)
		if err != nil {
			return nil, err
		}
		*rules.field(Resource(block.Type)) = level
	}
	if len(content.Blocks) == 0 {
		return nil, errors.New("the policy grants nothing: give at least one of the blocks agent, node, event and operator, such as node { policy = \"read\" }")
	}
	return rules, nil
}

// blockLevel reads the policy attribute of one resource block.
func blockLevel(block *hcl.Block) (Level, error) {
	content, diags := block.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "policy", Required: true}},
	})
	if diags.HasErrors() {
		return "", diagError(block.Type, diags)
	}
	attr := content.Attributes["policy"]
	line := attr.Range.Start.Line
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return "", diagError(block.Type+".policy", diags)
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", fmt.Errorf("line %d: %s.policy: must be a string: \"deny\", \"read\" or \"write\"", line, block.Type)
	}
	switch l := Level(v.AsString()); l {
	case Deny, Read, Write:
		return l, nil
	default:
		return "", fmt.Errorf("line %d: %s.policy: %q is not one of \"deny\", \"read\", \"write\"", line, block.Type, v.AsString())
	}
}

// diagError turns HCL's diagnostics into one error: each problem (up to three) on
// its line, in the order of the lines, with key, when set, naming the block at fault.
func diagError(key string, diags hcl.Diagnostics) error {
	errs := diags.Errs()
	sort.SliceStable(errs, func(i, j int) bool { return line(errs[i]) < line(errs[j]) })
	var msgs []string
	for _, err := range errs[:min(len(errs), 3)] {
		var d *hcl.Diagnostic
		if !errors.As(err, &d) {
			msgs = append(msgs, err.Error())
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + strings.TrimSuffix(d.Detail, ".")
		}
		if key != "" {
			msg = key + ": " + msg
		}
		if d.Subject != nil {
			msg = fmt.Sprintf("line %d: %s", d.Subject.Start.Line, msg)
		}
		msgs = append(msgs, msg)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func line(err error) int {
	var d *hcl.Diagnostic
	if errors.As(err, &d) && d.Subject != nil {
		return d.Subject.Start.Line
	}
	return 0
}
