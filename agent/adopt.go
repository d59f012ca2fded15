package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sutragrid/grid/durable"
	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
)

// stateFile is the file in the data dir where the agent keeps the nodes it runs, so
// that after a restart it can adopt the ones still alive and restart the others.
const stateFile = "agent-state.json"

// stateVersion is the format version of the state file.
const stateVersion = 1

// persistedState is the state file's content.
type persistedState struct {
	Version int `json:"version"`
	// BootID is the machine's boot when the file was written: after a reboot no
	// recorded pid is a node any more.
	BootID string          `json:"boot_id"`
	Nodes  []persistedNode `json:"nodes"`
}

// persistedNode is one node the agent should be running.
type persistedNode struct {
	NodeID        string          `json:"node_id"`
	Port          int             `json:"port"`
	StoragePath   string          `json:"storage_path"`
	MemoryLimitMB int             `json:"memory_limit_mb"`
	CPULimit      float64         `json:"cpu_limit,omitempty"`
	Restart       persistedPolicy `json:"restart"`
	// Cgroup names the node's cgroup under the agent's, if it has one.
	Cgroup string `json:"cgroup,omitempty"`
	// PID and StartTime (from /proc/<pid>/stat, in clock ticks since boot) name the
	// node's process; both are zero while the node waits to be restarted.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	// Restarts counts the node's restarts since it was started; RestartTimes are the
	// ones that still count against its restart policy (Unix nanoseconds).
	Restarts     int     `json:"restarts"`
	RestartTimes []int64 `json:"restart_times,omitempty"`
}

type persistedPolicy struct {
	Attempts   int   `json:"attempts"`
	IntervalMs int64 `json:"interval_ms"`
	DelayMs    int64 `json:"delay_ms"`
	MaxDelayMs int64 `json:"max_delay_ms"`
}

func persistPolicy(p restart.Policy) persistedPolicy {
	return persistedPolicy{
		Attempts:   p.Attempts,
		IntervalMs: p.Interval.Milliseconds(),
		DelayMs:    p.Delay.Milliseconds(),
		MaxDelayMs: p.MaxDelay.Milliseconds(),
	}
}

// loadState reads the state file; a missing file is an empty state. Pids recorded
// in an earlier boot are dropped: those processes are gone.
func loadState(dataDir string) (persistedState, error) {
	path := filepath.Join(dataDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return persistedState{Version: stateVersion}, nil
	}
	if err != nil {
		return persistedState{}, fmt.Errorf("read agent state: %w", err)
	}
	var st persistedState
	if err := json.Unmarshal(b, &st); err != nil {
		return persistedState{}, fmt.Errorf("agent state %s is corrupt: %w", path, err)
	}
	if st.Version != stateVersion {
		return persistedState{}, fmt.Errorf("agent state %s has version %d; this agent reads %d", path, st.Version, stateVersion)
	}
	if st.BootID != bootID() {
		for i := range st.Nodes {
			st.Nodes[i].PID, st.Nodes[i].StartTime = 0, 0
		}
	}
	return st, nil
}

// saveState writes the state file atomically.
func saveState(dataDir string, st persistedState) error {
	st.Version = stateVersion
	st.BootID = bootID()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(dataDir, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write agent state: %w", err)
	}
	return nil
}

// adopt takes over the nodes in the state file, as an agent does when it starts
// again after SIGTERM or a crash: a node whose process still runs, and is really the
// node (same start time, its ID on the command line), is watched again; any other is
// restarted at once, as after a crash.
func (s *supervisor) adopt(st persistedState) {
	for _, pn := range st.Nodes {
		spec, err := s.specFromPersisted(pn)
		if err != nil {
			s.logger.Error("not adopting a node whose recorded state is invalid", "node_id", pn.NodeID, "error", err)
			continue
		}
		n := newNode(spec, s.cfg.DataDir)
		n.spawned, n.restarts = true, pn.Restarts
		for _, t := range pn.RestartTimes {
			n.history = append(n.history, time.Unix(0, t))
		}
		close(n.ready)
		s.adoptGroup(n, pn.Cgroup)
		p, err := adoptProc(pn.PID, pn.StartTime, spec.ID, s.ctx.Done())
		s.mu.Lock()
		s.nodes[spec.ID] = n
		if err == nil {
			n.proc, n.running = p, true
		} else {
			n.lostPid = pn.PID
		}
		s.mu.Unlock()
		if err == nil {
			s.logger.Info("adopted running node", "node_id", spec.ID, "pid", p.pid)
		} else {
			s.logger.Warn("node is not running; restarting it", "node_id", spec.ID, "recorded_pid", pn.PID, "reason", err)
		}
		s.goWatch(n, err != nil)
	}
	s.mu.Lock()
	s.persistLocked()
	s.mu.Unlock()
}

// specFromPersisted checks a recorded node as strictly as a StartNode request: the
// state file is ours, but the storage root may have changed since.
func (s *supervisor) specFromPersisted(pn persistedNode) (nodeSpec, error) {
	return s.specFrom(&gridpb.StartNodeRequest{
		NodeId:        pn.NodeID,
		Port:          int32(pn.Port),
		StoragePath:   pn.StoragePath,
		MemoryLimitMb: int32(pn.MemoryLimitMB),
		CpuLimit:      pn.CPULimit,
		Restart: &gridpb.RestartPolicy{
			Attempts:   int32(pn.Restart.Attempts),
			IntervalMs: pn.Restart.IntervalMs,
			DelayMs:    pn.Restart.DelayMs,
			MaxDelayMs: pn.Restart.MaxDelayMs,
		},
	})
}
