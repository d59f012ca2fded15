package command

import (
	"testing"
)

func TestStorageFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		checks []check
	}{
		{"no data dir", nil, []check{usageFails("storage", "-data-dir is required")}},
		{"negative metrics port", []string{"-data-dir=" + dir, "-metrics-port=-1"}, []check{usageFails("storage", "-metrics-port -1 is out of range")}},
		{"metrics port too big", []string{"-data-dir=" + dir, "-metrics-port=65536"}, []check{usageFails("storage", "-metrics-port 65536 is out of range")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCommand(t, "storage", tt.args...)
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}
}
