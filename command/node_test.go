package command

import (
	"testing"
	"time"
)

func TestFormatAge(t *testing.T) {
	now := testNow
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now, "0s ago"},
		{now.Add(time.Second), "0s ago"}, // the server's clock is ahead
		{now.Add(-2900 * time.Millisecond), "2s ago"},
		{now.Add(-59 * time.Second), "59s ago"},
		{now.Add(-60 * time.Second), "1m0s ago"},
		{now.Add(-(4*time.Minute + 10*time.Second)), "4m10s ago"},
		{now.Add(-(2*time.Hour + 5*time.Minute + 9*time.Second)), "2h5m ago"},
		{now.Add(-(3*24*time.Hour + 4*time.Hour + 30*time.Minute)), "3d4h ago"},
	}
	for _, tt := range tests {
		if got := formatAge(now, tt.t); got != tt.want {
			t.Errorf("formatAge(%v) = %q, want %q", now.Sub(tt.t), got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{5 * time.Second, "5s"},
		{1500 * time.Millisecond, "1.5s"},
		{30 * time.Minute, "30m"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{10 * time.Minute, "10m"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// The wait for a node polls soon, as a node runs within about a hundred
// milliseconds, then backs off to nodePollInterval.
func TestNodePollBacksOff(t *testing.T) {
	var c clock
	var waits []time.Duration
	for w := c.pollInterval(0); len(waits) < 30; w = c.pollInterval(w) {
		waits = append(waits, w)
	}
	if waits[0] != nodePollFirst || waits[len(waits)-1] != nodePollInterval {
		t.Fatalf("waits %v: want from %s up to %s", waits, nodePollFirst, nodePollInterval)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Fatalf("waits %v shrink", waits)
		}
	}
	if fixed := (clock{interval: time.Millisecond}); fixed.pollInterval(0) != time.Millisecond || fixed.pollInterval(time.Second) != time.Millisecond {
		t.Fatal("a clock's interval must be used as it is")
	}
}
