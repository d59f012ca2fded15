package agent

import (
	"strings"
	"testing"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
	"github.com/sutragrid/grid/restart"
)

func TestPolicyFromProto(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *gridpb.RestartPolicy
		want restart.Policy
		err  string
	}{
		{"absent is the default", nil, restart.Default(), ""},
		{"all zero never restarts", &gridpb.RestartPolicy{}, restart.Policy{Interval: 30 * time.Minute, MaxDelay: 5 * time.Minute}, ""},
		{"as given", &gridpb.RestartPolicy{Attempts: 1, IntervalMs: 1000, DelayMs: 50, MaxDelayMs: 200},
			restart.Policy{Attempts: 1, Interval: time.Second, Delay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}, ""},
		{"zero interval and max delay take defaults", &gridpb.RestartPolicy{Attempts: 2, DelayMs: 100},
			restart.Policy{Attempts: 2, Interval: 30 * time.Minute, Delay: 100 * time.Millisecond, MaxDelay: 5 * time.Minute}, ""},
		{"max delay raised to delay", &gridpb.RestartPolicy{Attempts: 2, DelayMs: 2000, MaxDelayMs: 1000},
			restart.Policy{Attempts: 2, Interval: 30 * time.Minute, Delay: 2 * time.Second, MaxDelay: 2 * time.Second}, ""},
		{"attempts zero means never", &gridpb.RestartPolicy{IntervalMs: 1000},
			restart.Policy{Interval: time.Second, MaxDelay: 5 * time.Minute}, ""},
		{"negative", &gridpb.RestartPolicy{Attempts: -1}, restart.Policy{}, "negative"},
		{"too long", &gridpb.RestartPolicy{Attempts: 1, DelayMs: maxPolicyMs + 1}, restart.Policy{}, "under a year"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := policyFromProto(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("policy = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
