package command

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/server"
)

// flagSetHook, when set, sees the flag set of server, agent and storage before it
// parses: the test that every flag has a key walks them with it, without a copy of
// the flag lists that could drift from them.
var flagSetHook func(cmd string, fs *flag.FlagSet)

// configState is what a command read from the command line and its -config files,
// kept to read the files again on SIGHUP.
type configState struct {
	fs    *flag.FlagSet
	paths []string
	// given are the flags set on the command line, which the files never change.
	given map[string]bool
	// inForce is every flag's text (Value.String) as the command runs with it.
	inForce map[string]string
}

// parseConfigured adds -config to fs, parses args, then sets from the files every flag
// that args did not. When the command must stop it returns false and the exit code:
// for -help, for a bad flag, and for a file that is not right, which is reported with
// its file, line and key before anything starts.
func (m *Meta) parseConfigured(fs *flag.FlagSet, cmd string, args []string) (*configState, int, bool) {
	var paths stringList
	fs.Var(&paths, configFlag, "")
	if flagSetHook != nil {
		flagSetHook(cmd, fs)
	}
	if code, ok := m.parseFlags(fs, cmd, args); !ok {
		return nil, code, false
	}
	st := &configState{fs: fs, paths: paths, given: map[string]bool{}, inForce: map[string]string{}}
	fs.Visit(func(f *flag.Flag) { st.given[f.Name] = true })
	if len(paths) > 0 {
		settings, err := readConfig(fs, paths)
		if err == nil {
			err = applyConfig(fs, settings, st.given)
		}
		if err != nil {
			return nil, m.usageError(cmd, fmt.Errorf("-config: %w", err)), false
		}
	}
	fs.VisitAll(func(f *flag.Flag) { st.inForce[f.Name] = f.Value.String() })
	return st, 0, true
}

// liveGroup is flags that a reload may change while the command runs, all together:
// prepare checks their new values (every one of the group's names, changed or not)
// and returns what applies them, so that a reload applies all its changes or none.
type liveGroup struct {
	names   []string
	prepare func(values map[string]string) (commit func(), err error)
}

// hasFiles reports whether -config was given: SIGHUP then reloads the files.
func (st *configState) hasFiles() bool { return st != nil && len(st.paths) > 0 }

// reloader returns what reads the files again on SIGHUP, or nil when no -config was
// given.
func (st *configState) reloader(logger hclog.Logger, live ...liveGroup) func() error {
	if !st.hasFiles() {
		return nil
	}
	return func() error { return st.reload(logger, live) }
}

// reload reads the files again and applies the changes of the live flags, logging
// what it changed; a changed key of any other flag is logged as needing a restart and
// left alone. A file that is not right is logged and changes nothing.
func (st *configState) reload(logger hclog.Logger, live []liveGroup) error {
	changed, where, err := st.changes()
	if err != nil {
		logger.Error("configuration reload failed; nothing changed", "error", err)
		return err
	}
	var commits []func()
	var applied []string
	for _, g := range live {
		hit := false
		values := map[string]string{}
		for _, name := range g.names {
			values[name] = st.inForce[name]
			if v, ok := changed[name]; ok {
				values[name], hit = v, true
			}
		}
		if !hit {
			continue
		}
		commit, err := g.prepare(values)
		if err != nil {
			err = fmt.Errorf("%s: %w", groupWhere(g.names, changed, where), err)
			logger.Error("configuration reload failed; nothing changed", "error", err)
			return err
		}
		commits = append(commits, commit)
		for _, name := range g.names {
			if _, ok := changed[name]; ok {
				applied = append(applied, name)
			}
		}
	}
	for _, c := range commits {
		c()
	}
	var args []any
	for _, name := range applied {
		st.inForce[name] = changed[name]
		args = append(args, configKey(name), changed[name])
		delete(changed, name)
	}
	if len(changed) > 0 {
		var later []string
		for name := range changed {
			later = append(later, name)
		}
		sort.Strings(later)
		// The values are not logged: some are secrets (encrypt, token).
		logger.Warn("configuration changed where a restart is needed; left as it is until then", "keys", strings.Join(keys(later), ", "))
	}
	if len(applied) == 0 {
		logger.Info("configuration reloaded; nothing to change")
		return nil
	}
	logger.Info("configuration reloaded", args...)
	return nil
}

// changes reads the files and returns the flags whose text would differ from the one
// in force, with their new text: a key's value, or the flag's default when its key
// is gone. Flags given on the command line keep their value.
func (st *configState) changes() (changed map[string]string, where map[string]setting, err error) {
	settings, err := readConfig(st.fs, st.paths)
	if err != nil {
		return nil, nil, err
	}
	byFlag := map[string]setting{}
	for _, s := range settings {
		byFlag[s.flag.Name] = s
	}
	changed = map[string]string{}
	var firstErr error
	st.fs.VisitAll(func(f *flag.Flag) {
		if st.given[f.Name] || f.Name == configFlag || firstErr != nil {
			return
		}
		text := f.DefValue
		if s, ok := byFlag[f.Name]; ok {
			if text, err = flagText(f, s.args); err != nil {
				firstErr = fmt.Errorf("%s: %w", s, err)
				return
			}
		}
		if text != st.inForce[f.Name] {
			changed[f.Name] = text
		}
	})
	return changed, byFlag, firstErr
}

// groupWhere names, for an error about a live group's values, where its changed keys
// are written (file:line: key), or the keys when they were taken out of the files.
func groupWhere(names []string, changed map[string]string, where map[string]setting) string {
	var out []string
	for _, n := range names {
		if _, ok := changed[n]; !ok {
			continue
		}
		if s, ok := where[n]; ok {
			out = append(out, s.String())
		} else {
			out = append(out, configKey(n))
		}
	}
	return strings.Join(out, ", ")
}

// keys returns the configuration keys of flag names.
func keys(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = configKey(n)
	}
	return out
}

// liveThresholds is the heartbeat thresholds of a server, as a reload may change them.
func liveThresholds(srv *server.Server) liveGroup {
	names := []string{"heartbeat-interval", "agent-degraded-after", "agent-offline-after"}
	return liveGroup{names: names, prepare: func(v map[string]string) (func(), error) {
		var d [3]time.Duration
		for i, name := range names {
			var err error
			if d[i], err = time.ParseDuration(v[name]); err != nil {
				return nil, err
			}
		}
		th := server.Thresholds{HeartbeatInterval: d[0], AgentDegradedAfter: d[1], AgentOfflineAfter: d[2]}
		// SetThresholds checks them too; asking first keeps a reload all or nothing.
		if err := th.Validate(); err != nil {
			return nil, err
		}
		return func() { _ = srv.SetThresholds(th) }, nil
	}}
}

// hangups runs every non-nil reload in turn, or is nil when none is: SIGHUP then
// keeps its default effect.
func hangups(reloads ...func() error) func() error {
	var rs []func() error
	for _, r := range reloads {
		if r != nil {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return func() error {
		var first error
		for _, r := range rs {
			if err := r(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}
