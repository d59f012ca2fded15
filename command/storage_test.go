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
		{"zero message size", []string{"-data-dir=" + dir, "-max-message-mb=0"}, []check{usageFails("storage", "-max-message-mb must be positive")}},
		{"negative concurrent batches", []string{"-data-dir=" + dir, "-max-concurrent-batches=-1"}, []check{usageFails("storage", "-max-concurrent-batches must not be negative")}},
		{"disk reserve below -1", []string{"-data-dir=" + dir, "-disk-reserve-mb=-2"}, []check{usageFails("storage", "-disk-reserve-mb must be -1")}},
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
