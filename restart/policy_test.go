package restart

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	p := Policy{Attempts: 3, Interval: 30 * time.Minute, Delay: 5 * time.Second, MaxDelay: 12 * time.Second}
	for _, tc := range []struct {
		name    string
		policy  Policy
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
		{"zero attempts never restarts", Policy{Interval: time.Minute, MaxDelay: time.Second}, nil, 0, 0, false},
		{"zero delay restarts at once", Policy{Attempts: 2, Interval: time.Minute, MaxDelay: time.Second}, nil, 0.5, 0, true},
		{"default policy", Default(), nil, 0, 5 * time.Second, true},
		{"long backoffs double too", Policy{Attempts: 100, Interval: time.Hour, Delay: time.Hour, MaxDelay: 300 * 24 * time.Hour},
			[]time.Time{ago(1), ago(2), ago(3), ago(4), ago(5), ago(6), ago(7), ago(8), ago(9), ago(10), ago(11), ago(12)}, 0, 4096 * time.Hour, true},
		{"the largest policy does not overflow", Policy{Attempts: 100, Interval: time.Hour, Delay: 365 * 24 * time.Hour, MaxDelay: 365 * 24 * time.Hour},
			[]time.Time{ago(1), ago(2), ago(3), ago(4), ago(5), ago(6), ago(7), ago(8), ago(9), ago(10), ago(11), ago(12)}, 0.99, 365 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay, ok := tc.policy.Next(now, tc.history, tc.jitter)
			if delay != tc.delay || ok != tc.ok {
				t.Fatalf("next = %s, %v; want %s, %v", delay, ok, tc.delay, tc.ok)
			}
		})
	}
}

func TestTrim(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	p := Policy{Attempts: 3, Interval: time.Hour}
	got := p.Trim(now, []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour), now.Add(-time.Minute)})
	if len(got) != 1 || !got[0].Equal(now.Add(-time.Minute)) {
		t.Fatalf("trim = %v", got)
	}
}

func TestWithDefaultsAndValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Policy
		want Policy
		err  string
	}{
		{"zero attempts stay zero: no restart", Policy{}, Policy{Interval: DefaultInterval, Delay: DefaultDelay, MaxDelay: DefaultMaxDelay}, ""},
		{"given values stay", Policy{Attempts: 1, Interval: time.Second, Delay: time.Millisecond, MaxDelay: time.Second}, Policy{Attempts: 1, Interval: time.Second, Delay: time.Millisecond, MaxDelay: time.Second}, ""},
		{"max delay defaults to at least delay", Policy{Attempts: 1, Delay: time.Hour}, Policy{Attempts: 1, Interval: DefaultInterval, Delay: time.Hour, MaxDelay: time.Hour}, ""},
		{"negative", Policy{Attempts: -1}, Policy{}, "negative"},
		{"a year", Policy{Attempts: 1, Interval: MaxDuration}, Policy{}, "under"},
		{"delay over max delay", Policy{Attempts: 1, Delay: time.Minute, MaxDelay: time.Second}, Policy{}, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Validate = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.in.WithDefaults(); got != tc.want {
				t.Fatalf("WithDefaults = %+v, want %+v", got, tc.want)
			}
		})
	}
}
