package fsm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CommandType identifies a command in the Raft log. Values are persisted in the log and
// in snapshots' history: never renumber one, only add.
type CommandType uint8

const (
	// CmdRegisterAgent inserts an agent or updates a known one.
	CmdRegisterAgent CommandType = 1
	// CmdDeregisterAgent removes an agent.
	CmdDeregisterAgent CommandType = 2
	// CmdSetAgentStatus records a change of an agent's health.
	CmdSetAgentStatus CommandType = 3
	// Storage-node commands; see node.go.
	CmdSpawnNode      CommandType = 4
	CmdNodeStarted    CommandType = 5
	CmdNodeFailed     CommandType = 6
	CmdNodeCrashed    CommandType = 7
	CmdNodeRestarted  CommandType = 8
	CmdStopNode       CommandType = 9
	CmdNodeStopped    CommandType = 10
	CmdNodeStopFailed CommandType = 11
	// CmdEventsShipped acknowledges events stored in the event store.
	CmdEventsShipped CommandType = 12
	// CmdSampleHeartbeat records a sampled agent_heartbeat event.
	CmdSampleHeartbeat CommandType = 13
	// CmdStrayStopped records that the leader stopped a process the state does not
	// expect to run.
	CmdStrayStopped CommandType = 14
)

// commandNames names every command type, for logs and errors.
var commandNames = map[CommandType]string{
	CmdRegisterAgent:      "register_agent",
	CmdDeregisterAgent:    "deregister_agent",
	CmdSetAgentStatus:     "set_agent_status",
	CmdSpawnNode:          "spawn_node",
	CmdNodeStarted:        "node_started",
	CmdNodeFailed:         "node_failed",
	CmdNodeCrashed:        "node_crashed",
	CmdNodeRestarted:      "node_restarted",
	CmdStopNode:           "stop_node",
	CmdNodeStopped:        "node_stopped",
	CmdNodeStopFailed:     "node_stop_failed",
	CmdEventsShipped:      "events_shipped",
	CmdSampleHeartbeat:    "sample_heartbeat",
	CmdStrayStopped:       "stray_stopped",
	CmdACLBootstrap:       "acl_bootstrap",
	CmdACLPolicyUpsert:    "acl_policy_upsert",
	CmdACLPolicyDelete:    "acl_policy_delete",
	CmdACLTokenCreate:     "acl_token_create",
	CmdACLTokenDelete:     "acl_token_delete",
	CmdAutopilotSetConfig: "autopilot_set_config",
	CmdEventStoreAdd:      "event_store_add",
	CmdEventStoreAck:      "event_store_ack",
	CmdEventStoreFault:    "event_store_fault",
	CmdEventStoreRemove:   "event_store_remove",
}

func (t CommandType) String() string {
	if n, ok := commandNames[t]; ok {
		return n
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// CommandVersion is the highest encoding version this build reads and the one it
// writes. A server that meets a newer version rejects the command rather than guess.
const CommandVersion = 1

// headerLen is the size of the envelope in front of a command's JSON body:
// type (1 byte), version (1 byte), timestamp (8 bytes, Unix nanoseconds, big endian).
const headerLen = 10

// MaxCommandBytes bounds an encoded command; Raft entries should stay small.
const MaxCommandBytes = 1 << 20

// Command is the body of one Raft log entry.
type Command interface {
	// Type tells which command this is.
	Type() CommandType
	// Validate checks the command before it is proposed and again before it is applied,
	// so a command that slipped into the log is rejected, not half-applied.
	Validate() error
}

// Envelope is a decoded log entry: the command and the time the leader stamped on it.
type Envelope struct {
	Time    time.Time
	Command Command
}

// Encode serialises cmd with a zero timestamp; the leader stamps it with Stamp just
// before it proposes the entry, so every server derives the same time from the log.
func Encode(cmd Command) ([]byte, error) {
	if err := cmd.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidCommand, cmd.Type(), err)
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd.Type(), err)
	}
	if headerLen+len(body) > MaxCommandBytes {
		return nil, fmt.Errorf("encode %s: %d bytes exceeds the limit of %d", cmd.Type(), headerLen+len(body), MaxCommandBytes)
	}
	buf := make([]byte, headerLen+len(body))
	buf[0] = byte(cmd.Type())
	buf[1] = CommandVersion
	copy(buf[headerLen:], body)
	return buf, nil
}

// Stamp sets the proposal time of an encoded command in place.
func Stamp(buf []byte, t time.Time) error {
	if len(buf) < headerLen {
		return errors.New("command too short to stamp")
	}
	binary.BigEndian.PutUint64(buf[2:headerLen], uint64(t.UnixNano()))
	return nil
}

// ErrInvalidCommand wraps every error about a command's encoding or content.
var ErrInvalidCommand = errors.New("invalid command")

// Decode parses a log entry. It never panics: anything it cannot read is an error
// that wraps ErrInvalidCommand.
func Decode(buf []byte) (Envelope, error) {
	env, err := decode(buf)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	return env, nil
}

func decode(buf []byte) (Envelope, error) {
	if len(buf) < headerLen {
		return Envelope{}, fmt.Errorf("command of %d bytes is shorter than its %d-byte header", len(buf), headerLen)
	}
	if len(buf) > MaxCommandBytes {
		return Envelope{}, fmt.Errorf("command of %d bytes exceeds the limit of %d", len(buf), MaxCommandBytes)
	}
	typ, ver := CommandType(buf[0]), buf[1]
	if ver == 0 || ver > CommandVersion {
		return Envelope{}, fmt.Errorf("%s: unsupported command version %d (this server reads up to %d)", typ, ver, CommandVersion)
	}
	cmd := newCommand(typ)
	if cmd == nil {
		return Envelope{}, fmt.Errorf("unknown command type %d", uint8(typ))
	}
	if err := json.Unmarshal(buf[headerLen:], cmd); err != nil {
		return Envelope{}, fmt.Errorf("decode %s: %w", typ, err)
	}
	if err := cmd.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%s: %w", typ, err)
	}
	nanos := binary.BigEndian.Uint64(buf[2:headerLen])
	return Envelope{Time: time.Unix(0, int64(nanos)).UTC(), Command: cmd}, nil
}

// newCommand returns a pointer to a zero command of type t, or nil if t is unknown.
func newCommand(t CommandType) Command {
	switch t {
	case CmdRegisterAgent:
		return &RegisterAgent{}
	case CmdDeregisterAgent:
		return &DeregisterAgent{}
	case CmdSetAgentStatus:
		return &SetAgentStatus{}
	case CmdSpawnNode:
		return &SpawnNode{}
	case CmdNodeStarted:
		return &NodeStarted{}
	case CmdNodeFailed:
		return &NodeFailed{}
	case CmdNodeCrashed:
		return &NodeCrashed{}
	case CmdNodeRestarted:
		return &NodeRestarted{}
	case CmdStopNode:
		return &StopNode{}
	case CmdNodeStopped:
		return &NodeStopped{}
	case CmdNodeStopFailed:
		return &NodeStopFailed{}
	case CmdEventsShipped:
		return &EventsShipped{}
	case CmdStrayStopped:
		return &StrayStopped{}
	case CmdSampleHeartbeat:
		return &SampleHeartbeat{}
	case CmdAutopilotSetConfig:
		return &AutopilotSetConfig{}
	case CmdEventStoreAdd:
		return &EventStoreAdd{}
	case CmdEventStoreAck:
		return &EventStoreAck{}
	case CmdEventStoreFault:
		return &EventStoreFault{}
	case CmdEventStoreRemove:
		return &EventStoreRemove{}
	}
	return newACLCommand(t)
}

// RegisterAgent inserts an agent, or updates the one with the same name.
type RegisterAgent struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Hostname string `json:"hostname"`
	Platform string `json:"platform"`
	Version  string `json:"version"`
	MaxNodes int    `json:"max_nodes"`
	// StorageRoot is the directory inside which the agent's nodes keep their data.
	StorageRoot string `json:"storage_root"`
	// ReservedPaths are the agent's own files and directories: no node's storage path
	// may be one, lie inside one, or contain one.
	ReservedPaths []string `json:"reserved_paths,omitempty"`
	// ReservedPorts are the ports the agent itself listens on: no node may take one.
	ReservedPorts []int `json:"reserved_ports,omitempty"`
	// Isolation says how the agent isolates its nodes, for operators: e.g. "cgroup v2
	// under /grid.slice", or "none: " and why. Empty from agents that predate it.
	Isolation string `json:"isolation,omitempty"`
}

func (*RegisterAgent) Type() CommandType { return CmdRegisterAgent }

func (c *RegisterAgent) Validate() error {
	if err := validName("name", c.Name); err != nil {
		return err
	}
	if c.MaxNodes < 0 {
		return fmt.Errorf("max_nodes must not be negative, got %d", c.MaxNodes)
	}
	for field, v := range map[string]string{"address": c.Address, "hostname": c.Hostname, "platform": c.Platform, "version": c.Version, "storage_root": c.StorageRoot, "isolation": c.Isolation} {
		if len(v) > maxFieldLen || !utf8.ValidString(v) {
			return fmt.Errorf("%s must be valid UTF-8 of at most %d bytes", field, maxFieldLen)
		}
	}
	// Isolation is free text that the CLI prints as one line of a terminal, so no
	// control characters (newlines, escape sequences) may ride along in it.
	if i := strings.IndexFunc(c.Isolation, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("isolation %q holds a character that is not printable, at byte %d", c.Isolation, i)
	}
	if len(c.ReservedPaths) > maxReserved || len(c.ReservedPorts) > maxReserved {
		return fmt.Errorf("at most %d reserved paths and %d reserved ports", maxReserved, maxReserved)
	}
	for _, p := range c.ReservedPaths {
		if err := validPath("reserved path", p); err != nil {
			return err
		}
	}
	for _, p := range c.ReservedPorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("reserved port %d is out of range 1-65535", p)
		}
	}
	return nil
}

// CleanIsolation makes an agent's report of its isolation pass RegisterAgent's
// checks: one line of printable text (whitespace and control characters become single
// spaces), cut to the length bound. The report is for operators to read, and often
// ends in an error's text, which may span lines (errors.Join); it must not cost the
// agent its registration.
func CleanIsolation(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }), " ")
	if len(s) > maxFieldLen {
		s = strings.ToValidUTF8(s[:maxFieldLen], "") // drop a rune cut in two
	}
	return s
}

// maxReserved bounds an agent's reserved paths and ports.
const maxReserved = 64

// validPath accepts a file path that fits a Raft entry and the file system: valid
// UTF-8, at most maxFieldLen bytes, no NUL byte.
func validPath(field, p string) error {
	if len(p) > maxFieldLen || !utf8.ValidString(p) {
		return fmt.Errorf("%s must be valid UTF-8 of at most %d bytes", field, maxFieldLen)
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("%s must not contain a NUL byte", field)
	}
	return nil
}

// DeregisterAgent removes an agent.
type DeregisterAgent struct {
	Name string `json:"name"`
}

func (*DeregisterAgent) Type() CommandType { return CmdDeregisterAgent }

func (c *DeregisterAgent) Validate() error { return validName("name", c.Name) }

// SetAgentStatus records an agent's new health status.
type SetAgentStatus struct {
	Name   string      `json:"name"`
	Status AgentStatus `json:"status"`
	// LastSeen is when the leader last heard from the agent (zero if unknown).
	LastSeen time.Time `json:"last_seen,omitempty"`
}

func (*SetAgentStatus) Type() CommandType { return CmdSetAgentStatus }

func (c *SetAgentStatus) Validate() error {
	if err := validName("name", c.Name); err != nil {
		return err
	}
	if !c.Status.Valid() {
		return fmt.Errorf("status %q is not one of healthy, degraded, offline", c.Status)
	}
	return nil
}

const (
	maxNameLen  = 128
	maxFieldLen = 1024
)

// validName accepts the names of agents and nodes: 1-128 bytes of letters, digits,
// '-', '_' and '.', so that names are safe in URLs, file paths and log lines.
func validName(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", field)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s is longer than %d bytes", field, maxNameLen)
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%s %q may hold only letters, digits, '-', '_' and '.'", field, s)
		}
	}
	return nil
}

// EventsShipped acknowledges that the event store holds every event up to UpTo, so
// the outbox can let go of them.
type EventsShipped struct {
	UpTo uint64 `json:"up_to"`
}

func (*EventsShipped) Type() CommandType { return CmdEventsShipped }

func (c *EventsShipped) Validate() error {
	if c.UpTo == 0 {
		return errors.New("up_to must be positive")
	}
	return nil
}

// SampleHeartbeat records one sampled agent_heartbeat event.
type SampleHeartbeat struct {
	Name     string    `json:"name"`
	LastSeen time.Time `json:"last_seen"`
}

func (*SampleHeartbeat) Type() CommandType { return CmdSampleHeartbeat }
func (c *SampleHeartbeat) Validate() error { return validName("name", c.Name) }
