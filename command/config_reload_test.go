package command

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
)

// TestConfigReload: a reload applies the changed keys of live flags, all or none,
// logs what it changed, logs the changed keys that need a restart without applying
// them, and after a file that is not right changes nothing.
func TestConfigReload(t *testing.T) {
	const base = "bind = \"10.0.0.1\"\nbootstrap_expect = 3\nheartbeat_interval = \"5s\"\n"
	type step struct {
		name    string
		content string
		logs    []string // in the log, in this order
		applied map[string]string
	}
	steps := []step{
		{"nothing changed", base, []string{"configuration reloaded; nothing to change"}, nil},
		{"a live key", strings.Replace(base, `"5s"`, `"7s"`, 1),
			[]string{"[INFO]  configuration reloaded: heartbeat_interval=7s"}, map[string]string{"heartbeat-interval": "7s"}},
		{"a restart key, and a live key back as it was", strings.Replace(base, "10.0.0.1", "10.0.0.2", 1),
			[]string{"[WARN]  configuration changed where a restart is needed; left as it is until then: keys=bind",
				"[INFO]  configuration reloaded: heartbeat_interval=5s"}, map[string]string{"heartbeat-interval": "5s"}},
		{"restart and live keys", "bind = \"10.0.0.2\"\nbootstrap_expect = 3\nheartbeat_interval = \"1m\"\nacl { enabled = true }\n",
			[]string{"[WARN]  configuration changed where a restart is needed; left as it is until then: keys=\"acl_enabled, bind\"",
				"[INFO]  configuration reloaded: heartbeat_interval=1m0s"}, map[string]string{"heartbeat-interval": "1m0s"}},
		{"the same again: the restart keys still wait", "bind = \"10.0.0.2\"\nbootstrap_expect = 3\nheartbeat_interval = \"1m\"\nacl { enabled = true }\n",
			[]string{"[WARN]  configuration changed where a restart is needed; left as it is until then: keys=\"acl_enabled, bind\"",
				"[INFO]  configuration reloaded; nothing to change"}, nil},
		{"syntax error", "bind = \n", []string{"[ERROR] configuration reload failed; nothing changed: error=\"{file}:1: Invalid expression"}, nil},
		{"bad value", "heartbeat_interval = \"soon\"\n", []string{"[ERROR] configuration reload failed; nothing changed: error=\"{file}:1: heartbeat_interval: invalid value \\\"soon\\\""}, nil},
		{"refused by its group: nothing applied, the other group's change included", "heartbeat_interval = \"2s\"\nbootstrap_expect = 3\nratio = 0.1\n",
			[]string{"[ERROR] configuration reload failed; nothing changed: error=\"{file}:3: ratio: too small\""}, nil},
		{"a key removed: back to the default", "bootstrap_expect = 3\n",
			[]string{"[WARN]  configuration changed where a restart is needed; left as it is until then: keys=bind",
				"[INFO]  configuration reloaded: heartbeat_interval=5s"}, map[string]string{"heartbeat-interval": "5s"}},
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "grid.hcl")
	write := func(content string) {
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	fs := testFlags()
	// Two live groups: heartbeat-interval, and ratio, which refuses 0.1 so that a
	// reload must apply neither.
	ui := cli.NewMockUi()
	m := Meta{Ui: ui}
	st, code, ok := m.parseConfigured(fs, "test", []string{"-config=" + file})
	if !ok {
		t.Fatalf("parse: exit %d: %s", code, ui.ErrorWriter.String())
	}
	var mu sync.Mutex
	applied := map[string]string{}
	record := func(names ...string) liveGroup {
		return liveGroup{names: names, prepare: func(v map[string]string) (func(), error) {
			if v["ratio"] == "0.1" {
				return nil, fmt.Errorf("too small")
			}
			return func() {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range names {
					applied[n] = v[n]
				}
			}, nil
		}}
	}
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, DisableTime: true})
	reload := st.reloader(logger, record("heartbeat-interval"), record("ratio"))
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			logs.Reset()
			for k := range applied {
				delete(applied, k)
			}
			write(s.content)
			_ = reload()
			at := 0
			for _, want := range s.logs {
				want = strings.ReplaceAll(want, "{file}", file)
				i := strings.Index(logs.String()[at:], want)
				if i < 0 {
					t.Fatalf("log %q\ndoes not hold, after byte %d, %q", logs.String(), at, want)
				}
				at += i + len(want)
			}
			if got := strings.Count(logs.String(), "\n"); got != len(s.logs) {
				t.Errorf("%d log lines, want %d: %q", got, len(s.logs), logs.String())
			}
			want := s.applied
			if want == nil {
				want = map[string]string{}
			}
			if fmt.Sprint(applied) != fmt.Sprint(want) {
				t.Errorf("applied %v, want %v", applied, want)
			}
		})
	}
}

// TestReloadWithoutConfig: without -config there is nothing to reload, and SIGHUP
// keeps its meaning unless TLS takes it.
func TestReloadWithoutConfig(t *testing.T) {
	m := Meta{Ui: cli.NewMockUi()}
	st, _, ok := m.parseConfigured(testFlags(), "test", nil)
	if !ok {
		t.Fatal("parse failed")
	}
	if st.reloader(hclog.NewNullLogger()) != nil {
		t.Error("a reloader without -config")
	}
	if hangups(nil, nil) != nil {
		t.Error("hangups of nothing is not nil")
	}
	var calls []string
	h := hangups(func() error { calls = append(calls, "config"); return fmt.Errorf("bad file") }, nil, func() error { calls = append(calls, "tls"); return nil })
	if err := h(); err == nil || fmt.Sprint(calls) != "[config tls]" {
		t.Errorf("hangups: %v, calls %v: want both run, the first error returned", err, calls)
	}
}
