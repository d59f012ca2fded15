package command

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/gossip"
)

// Keys of the keyring fixtures.
const (
	keyA = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	keyB = "3JlvX7a8gxbmeG1Bk0Tz2sl3d7ZC8B3ux1R4cy0pq0E="
)

// keyringFixture is GET /v1/operator/keyring in the middle of a rotation: keyB is
// installed everywhere and primary on one member of four.
const keyringFixture = `{"members":4,"responses":4,"keys":[
  {"key":"` + keyA + `","members":4,"primary_members":3},
  {"key":"` + keyB + `","members":4,"primary_members":1}
]}`

func TestOperatorGossipKeyring(t *testing.T) {
	const cmd = "operator gossip keyring"
	var install, use, remove bodyRecorder
	changed := rawReply(`{"members":4,"responses":4}`)
	runAPICases(t, cmd, []apiCase{
		{
			name:   "list",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/keyring": rawReply(keyringFixture)},
			args:   []string{"-address=ADDR", "-list"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), tableIs(
					[]string{"Key", "Primary", "Installed"},
					[]string{keyA, "3/4", "4/4"},
					[]string{keyB, "1/4", "4/4"},
				), requestsAre(f, "GET /v1/operator/keyring")}
			},
		},
		{
			name:   "list json",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/keyring": rawReply(keyringFixture)},
			args:   []string{"-address=ADDR", "-json", "-list"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), noStderr(), jsonIs(keyringFixture)} },
		},
		{
			name: "list with a member's note",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/keyring": rawReply(`{"members":1,"responses":1,
				"keys":[{"key":"` + keyA + `","members":1,"primary_members":1}],
				"messages":{"agent-001":"truncated key list response, showing first 1 of 2 keys"}}`)},
			args: []string{"-address=ADDR", "-list"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), tableIs([]string{"Key", "Primary", "Installed"}, []string{keyA, "1/1", "1/1"}),
					stderrIs("Note: agent-001: truncated key list response, showing first 1 of 2 keys")}
			},
		},
		{
			name:   "list without encryption",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/keyring": errorReply(http.StatusConflict, "gossip encryption is not enabled: start every member with -encrypt to have a keyring")},
			args:   []string{"-address=ADDR", "-list"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("list gossip keys: gossip encryption is not enabled", "(HTTP 409)")}
			},
		},
		{
			name:   "install",
			routes: map[string]http.HandlerFunc{"POST /v1/operator/keyring": install.wrap(changed)},
			args:   []string{"-address=ADDR", "-install=" + keyB},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("Installed the key on all 4 members"),
					requestsAre(f, "POST /v1/operator/keyring"), install.bodyIs(`{"key":"` + keyB + `"}`)}
			},
		},
		{
			name:   "use",
			routes: map[string]http.HandlerFunc{"PUT /v1/operator/keyring": use.wrap(changed)},
			args:   []string{"-address=ADDR", "-use", keyB},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("Made the key primary on all 4 members"),
					requestsAre(f, "PUT /v1/operator/keyring"), use.bodyIs(`{"key":"` + keyB + `"}`)}
			},
		},
		{
			name:   "remove json",
			routes: map[string]http.HandlerFunc{"DELETE /v1/operator/keyring": remove.wrap(changed)},
			args:   []string{"-address=ADDR", "-json", "-remove=" + keyA},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs(`{"members":4,"responses":4}`),
					requestsAre(f, "DELETE /v1/operator/keyring"), remove.bodyIs(`{"key":"` + keyA + `"}`)}
			},
		},
		{
			name:   "install on a grid of one",
			routes: map[string]http.HandlerFunc{"POST /v1/operator/keyring": rawReply(`{"members":1,"responses":1}`)},
			args:   []string{"-address=ADDR", "-install=" + keyB},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("Installed the key on the one member")}
			},
		},
		{
			name: "a member fails",
			routes: map[string]http.HandlerFunc{"POST /v1/operator/keyring": errorReply(http.StatusInternalServerError,
				"1 of 4 members failed; agent-001: No keyring to modify (encryption not enabled)")},
			args: []string{"-address=ADDR", "-install=" + keyB},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("install gossip key: 1 of 4 members failed; agent-001: No keyring to modify", "(HTTP 500)")}
			},
		},
		{
			name:   "remove the primary key",
			routes: map[string]http.HandlerFunc{"DELETE /v1/operator/keyring": errorReply(http.StatusBadRequest, "the key is the primary key, which every member encrypts with: make another key primary first (-use)")},
			args:   []string{"-address=ADDR", "-remove=" + keyA},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("remove gossip key: the key is the primary key", "(HTTP 400)")}
			},
		},
		{
			name:   "no server",
			args:   []string{"-address=" + deadAddress(t), "-list"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("list gossip keys:", "connection refused")} },
		},
	})
}

func TestOperatorGossipKeyringUsage(t *testing.T) {
	const cmd = "operator gossip keyring"
	runAPICases(t, cmd, []apiCase{
		{name: "no operation", args: []string{"-address=ADDR"}, checks: func(f *fakeAPI) []check {
			return []check{usageFails(cmd, "one of -generate, -list, -install, -use or -remove is required"), requestsAre(f)}
		}},
		{name: "two operations", args: []string{"-address=ADDR", "-list", "-install=" + keyA}, checks: func(f *fakeAPI) []check {
			return []check{usageFails(cmd, "-list and -install are mutually exclusive"), requestsAre(f)}
		}},
		{name: "malformed key", args: []string{"-address=ADDR", "-install=c2VjcmV0"}, checks: func(f *fakeAPI) []check {
			return []check{usageFails(cmd, "-install: invalid gossip encryption key: 6 bytes, want 32"), requestsAre(f)}
		}},
		{name: "empty key", args: []string{"-address=ADDR", "-use="}, checks: func(f *fakeAPI) []check {
			return []check{usageFails(cmd, "-use: invalid gossip encryption key"), requestsAre(f)}
		}},
		{name: "argument", args: []string{"-list", "now"}, checks: func(f *fakeAPI) []check {
			return []check{usageFails(cmd, `unexpected argument "now"`)}
		}},
		{name: "help", args: []string{"-help"}, checks: func(f *fakeAPI) []check {
			return []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()}
		}},
	})
}

func TestOperatorGossipKeyringGenerate(t *testing.T) {
	isolateEnv(t)
	// No server is asked: the address is one where none listens.
	r := runCommand(t, "operator gossip keyring", "-address="+deadAddress(t), "-generate")
	exitCode(0)(t, r)
	noStderr()(t, r)
	key := strings.TrimSuffix(r.stdout, "\n")
	if err := gossip.ValidKey(key); err != nil {
		t.Fatalf("generated key %q: %v", key, err)
	}
	if again := runCommand(t, "operator gossip keyring", "-generate"); again.stdout == r.stdout {
		t.Fatal("two generated keys are equal")
	}
	r = runCommand(t, "operator gossip keyring", "-json", "-generate")
	var out struct{ Key string }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || gossip.ValidKey(out.Key) != nil {
		t.Fatalf("-json -generate printed %q (%v)", r.stdout, err)
	}
}

func TestServerRefusesMalformedEncryptKey(t *testing.T) {
	r := runCommand(t, "server", "-data-dir="+filepath.Join(t.TempDir(), "s"), "-encrypt=not-a-key")
	exitCode(1)(t, r)
	noStdout()(t, r)
	stderrHas("Error: start server: -encrypt: invalid gossip encryption key: not base64")(t, r)
}
