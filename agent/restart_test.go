package agent

import (
	"strings"
	"testing"
	"time"

	gridpb "github.com/sutragrid/grid/proto"
)

func TestRestartPolicyNext(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	p := RestartPolicy{Attempts: 3, Interval: 30 * time.Minute, Delay: 5 * time.Second, MaxDelay: 12 * time.Second}
	for _, tc := range []struct {
		name    string
		policy  RestartPolicy
		history []time.Time
		jitter  float64
		delay   time.Duration
		ok      bool
	}{
		{"first restart waits the delay", p, nil, 0, 5 * time.Second, true},
		{"jitter adds up to a quarter", p, nil, 0.5, 5*time.Second + 625*time.Millisecond, true},
		{"second restart doubles", p, []time.Time{ago(time.Minute)}, 0, 10 * time.Second, true},
		{"third is capped at max delay", p, []time.Time{ago(2 * time.Minute), ago(time.Minute)}, 0, 12 * time.Second, true},
		{"jitter never exceeds max delay", p, []time.Time{ago(2 * time.Minute), ago(time.Minute)}, 0.99, 12 * time.Second, true},
		{"attempts used up within the interval", p, []time.Time{ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute)}, 0, 0, false},
		{"restarts out of the window do not count", p, []time.Time{ago(2 * time.Hour), ago(time.Hour), ago(time.Minute)}, 0, 10 * time.Second, true},
		{"zero attempts never restarts", RestartPolicy{Interval: time.Minute, MaxDelay: time.Second}, nil, 0, 0, false},
		{"zero delay restarts at once", RestartPolicy{Attempts: 2, Interval: time.Minute, MaxDelay: time.Second}, nil, 0.5, 0, true},
		{"default policy", DefaultRestartPolicy, nil, 0, 5 * time.Second, true},
		{"long backoffs double too", RestartPolicy{Attempts: 100, Interval: time.Hour, Delay: time.Hour, MaxDelay: 300 * 24 * time.Hour},
			[]time.Time{ago(1), ago(2), ago(3), ago(4), ago(5), ago(6), ago(7), ago(8), ago(9), ago(10), ago(11), ago(12)}, 0, 4096 * time.Hour, true},
		{"the largest policy does not overflow", RestartPolicy{Attempts: 100, Interval: time.Hour, Delay: 365 * 24 * time.Hour, MaxDelay: 365 * 24 * time.Hour},
			[]time.Time{ago(1), ago(2), ago(3), ago(4), ago(5), ago(6), ago(7), ago(8), ago(9), ago(10), ago(11), ago(12)}, 0.99, 365 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay, ok := tc.policy.next(now, tc.history, tc.jitter)
			if delay != tc.delay || ok != tc.ok {
				t.Fatalf("next = %s, %v; want %s, %v", delay, ok, tc.delay, tc.ok)
			}
		})
	}
}

func TestRestartPolicyTrim(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	p := RestartPolicy{Attempts: 3, Interval: time.Hour}
	got := p.trim(now, []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour), now.Add(-time.Minute)})
	if len(got) != 1 || !got[0].Equal(now.Add(-time.Minute)) {
		t.Fatalf("trim = %v", got)
	}
}

func TestPolicyFromProto(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *gridpb.RestartPolicy
		want RestartPolicy
		err  string
	}{
		{"absent is the default", nil, DefaultRestartPolicy, ""},
		{"all zero is the default", &gridpb.RestartPolicy{}, DefaultRestartPolicy, ""},
		{"as given", &gridpb.RestartPolicy{Attempts: 1, IntervalMs: 1000, DelayMs: 50, MaxDelayMs: 200},
			RestartPolicy{Attempts: 1, Interval: time.Second, Delay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}, ""},
		{"zero interval and max delay take defaults", &gridpb.RestartPolicy{Attempts: 2, DelayMs: 100},
			RestartPolicy{Attempts: 2, Interval: 30 * time.Minute, Delay: 100 * time.Millisecond, MaxDelay: 5 * time.Minute}, ""},
		{"max delay raised to delay", &gridpb.RestartPolicy{Attempts: 2, DelayMs: 2000, MaxDelayMs: 1000},
			RestartPolicy{Attempts: 2, Interval: 30 * time.Minute, Delay: 2 * time.Second, MaxDelay: 2 * time.Second}, ""},
		{"attempts zero means never", &gridpb.RestartPolicy{IntervalMs: 1000},
			RestartPolicy{Interval: time.Second, MaxDelay: 5 * time.Minute}, ""},
		{"negative", &gridpb.RestartPolicy{Attempts: -1}, RestartPolicy{}, "negative"},
		{"too long", &gridpb.RestartPolicy{Attempts: 1, DelayMs: maxPolicyMs + 1}, RestartPolicy{}, "under a year"},
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
