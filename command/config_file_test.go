package command

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/agent"
)

// testFlags is a flag set with a flag of every kind the commands use, and flags of
// the blocks: -acl-*, -autopilot-* and the TLS flags.
func testFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.String("bind", "127.0.0.1", "")
	fs.String("data-dir", "", "")
	fs.Int("bootstrap-expect", 0, "")
	fs.Uint64("event-outbox-limit", 1000, "")
	fs.Duration("heartbeat-interval", 5*time.Second, "")
	fs.Var(new(stringList), "join", "")
	fs.Bool("acl-enabled", false, "")
	fs.Duration("autopilot-dead-server-cleanup-after", 0, "")
	fs.Bool("autopilot-cleanup-dead-servers", true, "")
	fs.String("ca-file", "", "")
	fs.String("cert-file", "", "")
	fs.String("key-file", "", "")
	fs.Bool("verify-https-client", false, "")
	fs.Float64("ratio", 0.5, "")
	return fs
}

// writeFiles writes name → content under dir and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadTestConfig parses args (with -config) into fs the way the commands do.
func loadTestConfig(fs *flag.FlagSet, args []string) error {
	var paths stringList
	fs.Var(&paths, configFlag, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	settings, err := readConfig(fs, paths)
	if err != nil {
		return err
	}
	return applyConfig(fs, settings, given)
}

func TestConfigFiles(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string          // {dir} is the directory of the files
		want  map[string]string // flag → its text after loading; the others keep their defaults
	}{
		{
			name: "hcl",
			files: map[string]string{"a.hcl": `
bind             = "10.0.0.5"
data_dir         = "/var/grid"
bootstrap_expect = 3
join             = ["10.0.0.6", "10.0.0.7"]
heartbeat_interval = "7s"
acl_enabled      = true
event_outbox_limit = 5000
ratio = 0.25
`},
			args: []string{"-config={dir}/a.hcl"},
			want: map[string]string{"bind": "10.0.0.5", "data-dir": "/var/grid", "bootstrap-expect": "3", "join": "10.0.0.6,10.0.0.7",
				"heartbeat-interval": "7s", "acl-enabled": "true", "event-outbox-limit": "5000", "ratio": "0.25"},
		},
		{
			name: "json",
			files: map[string]string{"a.json": `{"bind": "10.0.0.5", "bootstrap_expect": 3, "join": ["10.0.0.6"], "acl_enabled": true,
				"heartbeat_interval": "1m"}`},
			args: []string{"-config={dir}/a.json"},
			want: map[string]string{"bind": "10.0.0.5", "bootstrap-expect": "3", "join": "10.0.0.6", "acl-enabled": "true", "heartbeat-interval": "1m0s"},
		},
		{
			name: "blocks",
			files: map[string]string{"a.hcl": `
tls {
  ca_file             = "/etc/grid/ca.pem"
  cert_file           = "/etc/grid/server.pem"
  key_file            = "/etc/grid/server-key.pem"
  verify_https_client = true
}
acl {
  enabled = true
}
autopilot {
  dead_server_cleanup_after = "10m"
  cleanup_dead_servers      = false
}
bootstrap {
  expect = 5
}
`},
			args: []string{"-config={dir}/a.hcl"},
			want: map[string]string{"ca-file": "/etc/grid/ca.pem", "cert-file": "/etc/grid/server.pem", "key-file": "/etc/grid/server-key.pem",
				"verify-https-client": "true", "acl-enabled": "true", "autopilot-dead-server-cleanup-after": "10m0s",
				"autopilot-cleanup-dead-servers": "false", "bootstrap-expect": "5"},
		},
		{
			name:  "json blocks",
			files: map[string]string{"a.json": `{"tls": {"ca_file": "/ca.pem"}, "acl": [{"enabled": true}], "autopilot": {"cleanup_dead_servers": false}}`},
			args:  []string{"-config={dir}/a.json"},
			want:  map[string]string{"ca-file": "/ca.pem", "acl-enabled": "true", "autopilot-cleanup-dead-servers": "false"},
		},
		{
			name: "directory in name order, later files win, other files ignored",
			files: map[string]string{
				"conf/10-base.hcl":  `bind = "10.0.0.1"` + "\n" + `join = ["a", "b"]` + "\n" + `data_dir = "/base"`,
				"conf/20-site.json": `{"bind": "10.0.0.2", "join": ["c"]}`,
				"conf/30-tls.hcl":   `tls { ca_file = "/ca.pem" }`,
				"conf/README.md":    `not = "read"`,
				"conf/sub/x.hcl":    `not = "read"`,
			},
			args: []string{"-config={dir}/conf"},
			want: map[string]string{"bind": "10.0.0.2", "join": "c", "data-dir": "/base", "ca-file": "/ca.pem"},
		},
		{
			name: "several -config, in order",
			files: map[string]string{
				"b.hcl": `bind = "10.0.0.2"`,
				"a.hcl": `bind = "10.0.0.1"` + "\n" + `bootstrap_expect = 1`,
			},
			args: []string{"-config={dir}/b.hcl", "-config={dir}/a.hcl"},
			want: map[string]string{"bind": "10.0.0.1", "bootstrap-expect": "1"},
		},
		{
			name:  "flags win over files, lists included",
			files: map[string]string{"a.hcl": `bind = "10.0.0.5"` + "\n" + `join = ["x", "y"]` + "\n" + `acl { enabled = true }` + "\n" + `bootstrap_expect = 3`},
			args:  []string{"-bind=10.9.9.9", "-config={dir}/a.hcl", "-join=z", "-acl-enabled=false"},
			want:  map[string]string{"bind": "10.9.9.9", "join": "z", "acl-enabled": "false", "bootstrap-expect": "3"},
		},
		{
			name:  "one string for a list",
			files: map[string]string{"a.hcl": `join = "10.0.0.6"`},
			args:  []string{"-config={dir}/a.hcl"},
			want:  map[string]string{"join": "10.0.0.6"},
		},
		{
			name:  "empty file",
			files: map[string]string{"a.hcl": "# nothing yet\n"},
			args:  []string{"-config={dir}/a.hcl"},
			want:  map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), tt.files)
			fs := testFlags()
			defaults := map[string]string{}
			fs.VisitAll(func(f *flag.Flag) { defaults[f.Name] = f.Value.String() })
			var args []string
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{dir}", dir))
			}
			if err := loadTestConfig(fs, args); err != nil {
				t.Fatal(err)
			}
			fs.VisitAll(func(f *flag.Flag) {
				if f.Name == configFlag {
					return
				}
				want, ok := tt.want[f.Name]
				if !ok {
					want = defaults[f.Name]
				}
				if got := f.Value.String(); got != want {
					t.Errorf("-%s = %q, want %q", f.Name, got, want)
				}
			})
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                string // the error, after "{file}:"
	}{
		{"hcl syntax", "a.hcl", "bind = \"10.0.0.5\"\nbootstrap_expect = = 3\n", `:2: Invalid expression`},
		{"json syntax", "a.json", "{\n\"bind\": \"10.0.0.5\",\n}", `:2: Trailing comma in object`},
		{"unknown key", "a.hcl", "data_dir = \"x\"\nbindd = \"10.0.0.5\"\n", `:2: Unsupported argument: An argument named "bindd" is not expected here. Did you mean "bind"?`},
		{"unknown key in json", "a.json", "{\n\"bind\": \"x\",\n\"data_dri\": \"/d\"}", `:3: Extraneous JSON object property: No argument or block type is named "data_dri". Did you mean "data_dir"?`},
		{"unknown block", "a.hcl", "raft {\n  port = 1\n}\n", `:1: Unsupported block type: Blocks of type "raft" are not expected here.`},
		{"unknown key in a block", "a.hcl", "acl {\n  enable = true\n}\n", `:2: Unsupported argument: An argument named "enable" is not expected here. Did you mean "enabled"?`},
		{"block with a label", "a.hcl", "acl \"x\" {\n  enabled = true\n}\n", `:1: Extraneous label for acl`},
		{"string for a number", "a.hcl", "\n\nbootstrap_expect = \"3\"\n", `:3: bootstrap_expect: wants a whole number, not a string ("3")`},
		{"fraction for a whole number", "a.hcl", "bootstrap_expect = 2.5\n", `:1: bootstrap_expect: wants a whole number, not 2.5`},
		{"negative for unsigned", "a.hcl", "event_outbox_limit = -1\n", `:1: event_outbox_limit: invalid value "-1"`},
		{"number for a duration", "a.hcl", "heartbeat_interval = 5\n", `:1: heartbeat_interval: wants a duration such as "30s" or "5m" (a string), not a number (5)`},
		{"bad duration", "a.hcl", "heartbeat_interval = \"5 seconds\"\n", `:1: heartbeat_interval: invalid value "5 seconds"`},
		{"string for a bool", "a.json", `{"acl": {"enabled": "yes"}}`, `:1: acl.enabled: wants true or false, not a string ("yes")`},
		{"number for a string", "a.hcl", "tls {\n  ca_file = 3\n}\n", `:2: tls.ca_file: wants a string, not a number (3)`},
		{"list for a string", "a.hcl", "bind = [\"a\"]\n", `:1: bind: wants a string, not a list`},
		{"number in a list", "a.hcl", "join = [\"a\", 1]\n", `:1: join: wants a list of strings, and an element is a number (1)`},
		{"empty in a list", "a.hcl", "join = [\"a\", \"\"]\n", `:1: join: invalid value "": empty value`},
		{"null", "a.hcl", "bind = null\n", `:1: bind: null is not a value`},
		{"variable", "a.hcl", "bind = var.x\n", `:1: Variables not allowed`},
		{"twice in a file", "a.hcl", "acl_enabled = true\nacl {\n  enabled = false\n}\n", `:3: acl.enabled: set twice in this file, also as acl_enabled at line 1`},
		{"config in a file", "a.hcl", "config = \"/etc/grid\"\n", `:1: config: the files to read are named on the command line only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), map[string]string{tt.file: tt.content})
			path := filepath.Join(dir, tt.file)
			err := loadTestConfig(testFlags(), []string{"-config=" + path})
			if err == nil || !strings.HasPrefix(err.Error(), path+tt.want) {
				t.Fatalf("error = %v\nwant it to start with %s", err, path+tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.hcl")
		if err := loadTestConfig(testFlags(), []string{"-config=" + path}); err == nil || !strings.Contains(err.Error(), path+": no such file") {
			t.Fatalf("error = %v", err)
		}
	})
}

// commandFlags returns the flag set of a long-running command, as its Run builds it.
func commandFlags(t *testing.T, cmd string) *flag.FlagSet {
	t.Helper()
	if cmd == "agent" && agent.CheckPlatform() != nil {
		t.Skip(agent.CheckPlatform())
	}
	var got *flag.FlagSet
	flagSetHook = func(name string, fs *flag.FlagSet) { got = fs }
	defer func() { flagSetHook = nil }()
	r := runCommand(t, cmd, "-help")
	if got == nil {
		t.Fatalf("grid %s -help did not build its flags (exit %d, stderr %q)", cmd, r.code, r.stderr)
	}
	return got
}

// exampleArgs returns a value of a file for every kind of flag, other than its
// default, and the text the flag shows once set with it.
func exampleValue(t *testing.T, f *flag.Flag, i int) (hcl, json, text string) {
	switch typ := flagType(f); typ {
	case "bool":
		v := f.DefValue != "true"
		return fmt.Sprint(v), fmt.Sprint(v), fmt.Sprint(v)
	case "whole number":
		return fmt.Sprint(100 + i), fmt.Sprint(100 + i), fmt.Sprint(100 + i)
	case "number":
		return "0.75", "0.75", "0.75"
	case "duration":
		d := time.Duration(100+i) * time.Second
		return fmt.Sprintf("%q", d.String()), fmt.Sprintf("%q", d.String()), d.String()
	case "list":
		return `["a", "b"]`, `["a", "b"]`, "a,b"
	case "string":
		if f.Name == "log-level" {
			return `"debug"`, `"debug"`, "debug"
		}
		s := fmt.Sprintf("value-%d", i)
		return fmt.Sprintf("%q", s), fmt.Sprintf("%q", s), s
	default:
		t.Fatalf("flag -%s of a type the test does not know: %s", f.Name, typ)
		return
	}
}

// TestEveryFlagHasAKey walks every flag of server, agent and storage, as their Run
// builds them, and sets each from a file: as a top-level key in HCL and in JSON, and
// in its block where it has one. A flag added tomorrow is checked with no change here.
func TestEveryFlagHasAKey(t *testing.T) {
	for _, cmd := range []string{"server", "agent", "storage"} {
		t.Run(cmd, func(t *testing.T) {
			names := []string{}
			commandFlags(t, cmd).VisitAll(func(f *flag.Flag) {
				if f.Name != configFlag {
					names = append(names, f.Name)
				}
			})
			sort.Strings(names)
			for _, form := range []string{"hcl", "json", "blocks"} {
				t.Run(form, func(t *testing.T) {
					fs := commandFlags(t, cmd)
					want := map[string]string{}
					var hclText strings.Builder
					var jsonParts []string
					blocks := map[string][]string{}
					_, blockKeys := configSchema(fs)
					for i, name := range names {
						f := fs.Lookup(name)
						h, j, text := exampleValue(t, f, i)
						want[name] = text
						block, key := "", configKey(name)
						if form == "blocks" {
							block, key = blockOf(blockKeys, name)
						}
						switch {
						case form == "json":
							jsonParts = append(jsonParts, fmt.Sprintf("%q: %s", key, j))
						case block != "":
							blocks[block] = append(blocks[block], fmt.Sprintf("  %s = %s", key, h))
						default:
							fmt.Fprintf(&hclText, "%s = %s\n", key, h)
						}
					}
					for b, lines := range blocks {
						fmt.Fprintf(&hclText, "%s {\n%s\n}\n", b, strings.Join(lines, "\n"))
					}
					file, content := "all.hcl", hclText.String()
					if form == "json" {
						file, content = "all.json", "{"+strings.Join(jsonParts, ",\n")+"}"
					}
					dir := writeFiles(t, t.TempDir(), map[string]string{file: content})
					settings, err := readConfig(fs, []string{filepath.Join(dir, file)})
					if err == nil {
						err = applyConfig(fs, settings, nil)
					}
					if err != nil {
						t.Fatalf("%v\n%s", err, content)
					}
					for _, name := range names {
						if got := fs.Lookup(name).Value.String(); got != want[name] {
							t.Errorf("-%s = %q after the file, want %q", name, got, want[name])
						}
					}
				})
			}
		})
	}
}

// blockOf returns the block a flag may be written in and its key there; the tls block
// first, then its prefix's.
func blockOf(blocks map[string]map[string]string, name string) (block, key string) {
	var names []string
	for b := range blocks {
		if b != "" {
			names = append(names, b)
		}
	}
	sort.Strings(names)
	for _, b := range append([]string{"tls"}, names...) {
		for k, n := range blocks[b] {
			if n == name {
				return b, k
			}
		}
	}
	return "", configKey(name)
}
