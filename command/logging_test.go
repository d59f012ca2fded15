package command

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestShutdownNoise(t *testing.T) {
	tests := []struct {
		name  string
		level hclog.Level
		msg   string
		args  []interface{}
		drop  bool
	}{
		{"memberlist after its Shutdown", hclog.Error,
			"memberlist: Failed to send gossip to 127.0.0.94:7946: write udp 127.0.0.93:7946->127.0.0.94:7946: use of closed network connection", nil, true},
		{"raft transport closing", hclog.Error, "failed to decode incoming command", []interface{}{"error", errors.New("transport shutdown")}, true},
		{"as a string value", hclog.Error, "failed to appendEntries to", []interface{}{"error", "transport shutdown"}, true},
		{"a peer that is away", hclog.Error, "failed to appendEntries to", []interface{}{"error", errors.New("dial tcp 127.0.0.92:7002: connect: connection refused")}, false},
		{"below ERROR, kept as it is", hclog.Warn, "accept: use of closed network connection", nil, false},
		{"unrelated error", hclog.Error, "stream snapshot", []interface{}{"error", errors.New("broken pipe")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shutdownNoise(tt.level, tt.msg, tt.args...); got != tt.drop {
				t.Errorf("shutdownNoise = %v, want %v", got, tt.drop)
			}
		})
	}
}
