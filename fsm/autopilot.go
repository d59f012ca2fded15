package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// The autopilot configuration lives in the replicated state, not in each server's
// flags, so that what an operator sets with `grid operator autopilot set-config`
// holds on whichever server leads next, and survives in snapshots. The flags only
// seed it: the first leader writes them when the state has none (SetIfAbsent).

// CmdAutopilotSetConfig replaces the autopilot configuration.
const CmdAutopilotSetConfig CommandType = 20

const (
	tableAutopilot = "autopilot"
	// autopilotRow is the key of the table's one row.
	autopilotRow = "config"
)

// AutopilotConfig is the autopilot configuration, the table's one row. Durations
// travel in JSON as nanoseconds.
type AutopilotConfig struct {
	ID string `json:"id"`
	// CleanupDeadServers lets autopilot remove failed servers from the Raft
	// configuration (when a replacement joins, or after DeadServerCleanupAfter).
	CleanupDeadServers bool `json:"cleanup_dead_servers"`
	// LastContactThreshold is how long a server may go without hearing from the
	// leader and still count as healthy.
	LastContactThreshold time.Duration `json:"last_contact_threshold"`
	// MaxTrailingLogs is how many entries a healthy server may lag the leader by.
	MaxTrailingLogs uint64 `json:"max_trailing_logs"`
	// MinQuorum is the fewest voters that dead-server cleanup leaves.
	MinQuorum uint `json:"min_quorum"`
	// ServerStabilizationTime is how long a new server must stay healthy before it
	// is promoted to voter.
	ServerStabilizationTime time.Duration `json:"server_stabilization_time"`
	// DeadServerCleanupAfter is how long a server may stay failed before it is
	// removed though no replacement joined; 0 waits for a replacement.
	DeadServerCleanupAfter time.Duration `json:"dead_server_cleanup_after"`
	// CreateIndex and ModifyIndex are the Raft indexes that first wrote and last
	// changed the row; ModifyIndex is what a check-and-set compares.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Validate rejects settings autopilot cannot work with.
func (c *AutopilotConfig) Validate() error {
	switch {
	case c.LastContactThreshold <= 0:
		return fmt.Errorf("last_contact_threshold must be positive, got %s", c.LastContactThreshold)
	case c.ServerStabilizationTime < 0:
		return fmt.Errorf("server_stabilization_time must not be negative, got %s", c.ServerStabilizationTime)
	case c.DeadServerCleanupAfter < 0:
		return fmt.Errorf("dead_server_cleanup_after must not be negative, got %s", c.DeadServerCleanupAfter)
	}
	return nil
}

var autopilotTable = table{
	// Snapshots taken before this table existed restore with no row: the next
	// leader seeds it from its flags.
	schema: &memdb.TableSchema{
		Name: tableAutopilot,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		},
	},
	decode: decodeRow[AutopilotConfig],
}

// AutopilotSetConfig writes the autopilot configuration. With CAS it is rejected
// unless the stored row's ModifyIndex is Index (0: no row yet), so that two
// read-modify-write updates cannot lose one another. With IfAbsent it does nothing
// when a row exists: the leader seeds the configuration so, and a configuration an
// operator set is never overwritten by a server's flags.
type AutopilotSetConfig struct {
	Config   AutopilotConfig `json:"config"`
	CAS      bool            `json:"cas,omitempty"`
	Index    uint64          `json:"index,omitempty"`
	IfAbsent bool            `json:"if_absent,omitempty"`
}

func (*AutopilotSetConfig) Type() CommandType { return CmdAutopilotSetConfig }
func (c *AutopilotSetConfig) Validate() error {
	if c.CAS && c.IfAbsent {
		return fmt.Errorf("cas and if_absent exclude each other")
	}
	return c.Config.Validate()
}

func (x *applyCtx) autopilotSetConfig(c *AutopilotSetConfig) error {
	old, err := autopilotConfig(x.txn)
	if err != nil {
		return err
	}
	switch {
	case c.IfAbsent && old != nil:
		return nil
	case c.CAS && old == nil && c.Index != 0:
		return rejected("autopilot configuration: check-and-set index %d, but none is stored", c.Index)
	case c.CAS && old != nil && old.ModifyIndex != c.Index:
		return rejected("autopilot configuration: check-and-set index %d, but it was last changed at %d", c.Index, old.ModifyIndex)
	}
	row := c.Config
	row.ID, row.CreateIndex, row.ModifyIndex = autopilotRow, x.index, x.index
	if old != nil {
		row.CreateIndex = old.CreateIndex
	}
	return x.txn.Insert(tableAutopilot, &row)
}

func autopilotConfig(txn *memdb.Txn) (*AutopilotConfig, error) {
	raw, err := txn.First(tableAutopilot, "id", autopilotRow)
	if err != nil {
		return nil, fmt.Errorf("get autopilot configuration: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*AutopilotConfig), nil
}

// AutopilotConfig returns the autopilot configuration, or nil when none was
// written yet.
func (s *State) AutopilotConfig() (*AutopilotConfig, error) { return autopilotConfig(s.txn) }
