package server

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/gossip"
)

// raftLogger is the logger Raft gets. Raft logs each failed attempt to reach a peer
// at ERROR, a few times a second for as long as the peer is away. For a server that
// left gossip, which it does only when it is stopped on purpose, that is expected and
// `grid members` shows it as left: such lines go to DEBUG, so that stopping a server
// cleanly does not fill the other servers' logs with errors. A peer that failed, or
// that gossip does not know, keeps its errors.
type raftLogger struct {
	hclog.Logger
	members *gossip.Members
}

func newRaftLogger(l hclog.Logger, members *gossip.Members) hclog.Logger {
	return &raftLogger{Logger: l, members: members}
}

func (l *raftLogger) Error(msg string, args ...interface{}) {
	l.Log(hclog.Error, msg, args...)
}

func (l *raftLogger) Log(level hclog.Level, msg string, args ...interface{}) {
	if level == hclog.Error && l.aboutLeftPeer(args) {
		level = hclog.Debug
	}
	l.Logger.Log(level, msg, args...)
}

func (l *raftLogger) Named(name string) hclog.Logger {
	return newRaftLogger(l.Logger.Named(name), l.members)
}

func (l *raftLogger) ResetNamed(name string) hclog.Logger {
	return newRaftLogger(l.Logger.ResetNamed(name), l.members)
}

func (l *raftLogger) With(args ...interface{}) hclog.Logger {
	return newRaftLogger(l.Logger.With(args...), l.members)
}

// aboutLeftPeer reports whether a line's "peer" or "target" is a server that left
// gossip. Raft names a peer by its raft.Server, or by its address alone.
func (l *raftLogger) aboutLeftPeer(args []interface{}) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k != "peer" && k != "target" {
			continue
		}
		var id raft.ServerID
		var addr raft.ServerAddress
		switch v := args[i+1].(type) {
		case raft.Server:
			id, addr = v.ID, v.Address
		case raft.ServerAddress:
			addr = v
		default:
			continue
		}
		for _, m := range l.members.List() {
			if m.Status != gossip.StatusLeft || m.Tags.Role != RoleServer {
				continue
			}
			if (id != "" && string(id) == m.Tags.ID) || string(addr) == m.HostPort(m.Tags.RaftPort) {
				return true
			}
		}
	}
	return false
}
