package events

import (
	"fmt"
	"strings"
	"time"
)

// Describe returns the one-line, human description of e.
func Describe(e *Event) string {
	switch e.Type {
	case AgentRegistered:
		return fmt.Sprintf("Agent %s registered from %s%s", e.AgentID, e.Address, onHost(e.Hostname))
	case AgentHeartbeat:
		return fmt.Sprintf("Agent %s is alive", e.AgentID)
	case AgentDegraded:
		return fmt.Sprintf("Agent %s is degraded: no heartbeat for %.0fs", e.AgentID, e.SecondsSinceHeartbeat)
	case AgentOffline:
		return fmt.Sprintf("Agent %s is offline: no heartbeat for %.0fs", e.AgentID, e.SecondsSinceHeartbeat)
	case AgentRecovered:
		return fmt.Sprintf("Agent %s recovered after %.0fs", e.AgentID, e.DowntimeSeconds)
	case AgentUnregistered:
		return fmt.Sprintf("Agent %s unregistered", e.AgentID)
	case SpawnRequested:
		return fmt.Sprintf("Spawn of node %s requested on %s, port %d%s", node(e), e.AgentID, e.Port, by(e))
	case SpawnSucceeded:
		return fmt.Sprintf("Node %s started on %s (pid %d)", node(e), e.AgentID, e.PID)
	case SpawnFailed:
		return fmt.Sprintf("Node %s failed to start on %s: %s", node(e), e.AgentID, e.Error)
	case StopRequested:
		return fmt.Sprintf("Stop of node %s on %s requested%s", node(e), e.AgentID, by(e))
	case StopSucceeded:
		return fmt.Sprintf("Node %s on %s stopped%s", node(e), e.AgentID, exit(e))
	case StopFailed:
		return fmt.Sprintf("Node %s on %s failed to stop: %s", node(e), e.AgentID, e.Error)
	case NodeCrashed:
		s := fmt.Sprintf("Node %s on %s crashed%s", node(e), e.AgentID, exit(e))
		if e.Reason == ReasonOOMKilled {
			s = fmt.Sprintf("Node %s on %s was killed by the kernel: out of memory at its %d MB limit", node(e), e.AgentID, e.MemoryLimitMB)
			if e.Error != "" {
				s += "; " + e.Error
			}
		} else if e.Reason != "" {
			s += "; " + e.Reason
		}
		return s
	case NodeRestarted:
		return fmt.Sprintf("Node %s on %s restarted (pid %d, restart %d)", node(e), e.AgentID, e.NewPID, e.RestartCount)
	case ClusterHealthy, ClusterDegraded, ClusterCritical:
		state := strings.TrimPrefix(string(e.Type), "cluster_")
		return fmt.Sprintf("Cluster is %s: %d of %d agents healthy (%s)", state, e.HealthyAgents, e.TotalAgents, e.Reason)
	case ClusterRestored:
		s := fmt.Sprintf("Cluster state restored from the snapshot at Raft index %d", e.SnapshotIndex)
		if e.SnapshotTime != nil {
			s += " (saved " + e.SnapshotTime.UTC().Format(time.RFC3339) + ")"
		}
		return s + by(e) + "; the history goes on"
	}
	return string(e.Type)
}

// node names e's node: by its name, with the ID beside a name that differs from it.
func node(e *Event) string {
	if e.NodeName == "" || e.NodeName == e.NodeID {
		return e.NodeID
	}
	return e.NodeName + " (" + e.NodeID + ")"
}

// by names who requested a spawn, stop or restore: " by NAME", or "" when nobody is known.
func by(e *Event) string {
	if e.RequestedBy == "" {
		return ""
	}
	return " by " + e.RequestedBy
}

func onHost(h string) string {
	if h == "" {
		return ""
	}
	return " on host " + h
}

// exit renders how a process ended: " (exit code 2)", " (signal SIGKILL)".
func exit(e *Event) string {
	switch {
	case e.Signal != "":
		return " (signal " + e.Signal + ")"
	case e.ExitCode != nil && *e.ExitCode >= 0:
		return fmt.Sprintf(" (exit code %d)", *e.ExitCode)
	}
	return ""
}
