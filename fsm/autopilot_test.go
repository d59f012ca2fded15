package fsm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func apConfig(stabilize time.Duration) AutopilotConfig {
	return AutopilotConfig{CleanupDeadServers: true, LastContactThreshold: 200 * time.Millisecond,
		MaxTrailingLogs: 250, ServerStabilizationTime: stabilize, DeadServerCleanupAfter: time.Hour}
}

func TestAutopilotSetConfig(t *testing.T) {
	cases := []struct {
		name  string
		setup []*AutopilotSetConfig
		cmd   AutopilotSetConfig
		// want is the stored stabilization time and indexes afterwards; wantErr the
		// error's text ("" for none).
		wantStabilize       time.Duration
		wantCreate, wantMod uint64
		wantErr             string
	}{
		{"first write", nil, AutopilotSetConfig{Config: apConfig(10 * time.Second)}, 10 * time.Second, 1, 1, ""},
		{"seed when none", nil, AutopilotSetConfig{Config: apConfig(10 * time.Second), IfAbsent: true}, 10 * time.Second, 1, 1, ""},
		{"seed keeps an operator's", []*AutopilotSetConfig{{Config: apConfig(time.Minute)}},
			AutopilotSetConfig{Config: apConfig(10 * time.Second), IfAbsent: true}, time.Minute, 1, 1, ""},
		{"replace keeps the create index", []*AutopilotSetConfig{{Config: apConfig(time.Minute)}},
			AutopilotSetConfig{Config: apConfig(time.Second)}, time.Second, 1, 2, ""},
		{"cas on the current index", []*AutopilotSetConfig{{Config: apConfig(time.Minute)}},
			AutopilotSetConfig{Config: apConfig(time.Second), CAS: true, Index: 1}, time.Second, 1, 2, ""},
		{"cas on a stale index", []*AutopilotSetConfig{{Config: apConfig(time.Minute)}, {Config: apConfig(2 * time.Minute)}},
			AutopilotSetConfig{Config: apConfig(time.Second), CAS: true, Index: 1}, 2 * time.Minute, 1, 2, "last changed at 2"},
		{"cas 0 when none", nil, AutopilotSetConfig{Config: apConfig(time.Second), CAS: true}, time.Second, 1, 1, ""},
		{"cas 0 when one exists", []*AutopilotSetConfig{{Config: apConfig(time.Minute)}},
			AutopilotSetConfig{Config: apConfig(time.Second), CAS: true}, time.Minute, 1, 1, "last changed at 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t)
			var idx uint64
			for _, c := range tc.setup {
				if err := applyStep(t, f, &idx, c); err != nil {
					t.Fatal(err)
				}
			}
			err := applyStep(t, f, &idx, &tc.cmd)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("apply: %v, want a rejection with %q", err, tc.wantErr)
			}
			got, err := f.State().AutopilotConfig()
			if err != nil || got == nil {
				t.Fatalf("stored: %v, %v", got, err)
			}
			if got.ServerStabilizationTime != tc.wantStabilize || got.CreateIndex != tc.wantCreate || got.ModifyIndex != tc.wantMod {
				t.Fatalf("stored %+v, want stabilization %s, indexes %d/%d", got, tc.wantStabilize, tc.wantCreate, tc.wantMod)
			}
		})
	}
}

func TestAutopilotSetConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cmd  AutopilotSetConfig
		want string
	}{
		{"zero last contact", AutopilotSetConfig{Config: AutopilotConfig{}}, "last_contact_threshold must be positive"},
		{"negative stabilization", AutopilotSetConfig{Config: AutopilotConfig{LastContactThreshold: time.Second, ServerStabilizationTime: -1}}, "server_stabilization_time"},
		{"negative cleanup", AutopilotSetConfig{Config: AutopilotConfig{LastContactThreshold: time.Second, DeadServerCleanupAfter: -1}}, "dead_server_cleanup_after"},
		{"cas and if absent", AutopilotSetConfig{Config: apConfig(0), CAS: true, IfAbsent: true}, "exclude each other"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(&tc.cmd); !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("encode: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAutopilotConfigInSnapshots: a new leader restored from a snapshot uses the
// configuration an operator set; a snapshot from before autopilot restores with none.
func TestAutopilotConfigInSnapshots(t *testing.T) {
	f := newFSM(t)
	var idx uint64
	if err := applyStep(t, f, &idx, &AutopilotSetConfig{Config: apConfig(42 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	g := newFSM(t)
	if err := g.Restore(io.NopCloser(strings.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	got, err := g.State().AutopilotConfig()
	if err != nil || got == nil || got.ServerStabilizationTime != 42*time.Second || got.ModifyIndex != 1 {
		t.Fatalf("restored %+v, %v", got, err)
	}

	old := newFSM(t)
	if err := old.Restore(io.NopCloser(strings.NewReader(`{"version":1}` + "\n"))); err != nil {
		t.Fatal(err)
	}
	if got, err := old.State().AutopilotConfig(); got != nil || err != nil {
		t.Fatalf("a snapshot without the table: %+v, %v", got, err)
	}
}
