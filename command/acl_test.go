package command

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

var aclCommands = []string{
	"acl bootstrap",
	"acl policy apply", "acl policy list", "acl policy info", "acl policy delete",
	"acl token create", "acl token list", "acl token info", "acl token delete", "acl token self",
}

func TestACLHelp(t *testing.T) {
	isolateEnv(t)
	for _, name := range append([]string{"acl", "acl policy", "acl token"}, aclCommands...) {
		r := runCLI(t, append(strings.Fields(name), "-help")...)
		exitCode(0)(t, r)
		noStderr()(t, r)
		if !strings.HasPrefix(r.stdout, "Usage: grid "+name+" ") {
			t.Errorf("%s: help does not start with the usage line:\n%s", name, r.stdout)
		}
	}
	for _, name := range aclCommands {
		stdoutHas("-address=<addr>", "-token=<token>", "GRID_TOKEN", "-json")(t, runCLI(t, append(strings.Fields(name), "-help")...))
	}
	// Every other client command takes -token too.
	for _, name := range clientCommands {
		stdoutHas("-token=<token>", "GRID_TOKEN")(t, runCLI(t, append(strings.Fields(name), "-help")...))
	}
	for parent, subs := range map[string][]string{
		"acl": {"bootstrap", "policy", "token"}, "acl policy": {"apply", "list", "info", "delete"},
		"acl token": {"create", "list", "info", "delete", "self"},
	} {
		cmd, _ := Commands(cli.NewMockUi())[parent]()
		for _, sub := range subs {
			if !strings.Contains(cmd.Help(), "\n  "+sub+" ") {
				t.Errorf("%s -help does not list %s", parent, sub)
			}
			if _, ok := Commands(cli.NewMockUi())[parent+" "+sub]; !ok {
				t.Errorf("no command %s %s", parent, sub)
			}
		}
	}
}

const tokenJSON = `{"accessor_id":"6d4c8a1e-0b2f-4c1a-9d3e-5f6a7b8c9d0e","secret_id":"b1e2c3d4-0000-4000-8000-000000000001",
"name":"bootstrap","policies":[],"management":true,"create_time":"2026-01-02T03:04:05Z","create_index":7,"modify_index":7}`

// headerLog records the X-Grid-Token of every request.
type headerLog struct {
	mu     sync.Mutex
	tokens []string
}

func (l *headerLog) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.tokens = append(l.tokens, r.Header.Get(api.TokenHeader))
		l.mu.Unlock()
		h(w, r)
	}
}

func (l *headerLog) sent(t *testing.T, want string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tokens) != 1 || l.tokens[0] != want {
		t.Errorf("tokens sent %q, want [%q]", l.tokens, want)
	}
}

func TestACLBootstrapCommand(t *testing.T) {
	isolateEnv(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /v1/acl/bootstrap": rawReply(tokenJSON)})
	r := runCommand(t, "acl bootstrap", "-address="+f.URL)
	exitCode(0)(t, r)
	stdoutHas("Accessor ID  = 6d4c8a1e-0b2f-4c1a-9d3e-5f6a7b8c9d0e\n", "Secret ID    = b1e2c3d4-0000-4000-8000-000000000001\n",
		"Type         = management\n", "Create Index = 7")(t, r)
	requestsAre(f, "POST /v1/acl/bootstrap")(t, r)
	jsonIs(tokenJSON)(t, runCommand(t, "acl bootstrap", "-address="+f.URL, "-json"))

	f = newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/acl/bootstrap": errorReply(http.StatusBadRequest, "ACL bootstrap already done (reset index: 7)")})
	failsWith("Error: ACL bootstrap: ACL bootstrap already done (reset index: 7) (HTTP 400)")(t, runCommand(t, "acl bootstrap", "-address="+f.URL))
}

// The token goes as X-Grid-Token, from -token or else GRID_TOKEN; a refusal says why.
func TestTokenIsSent(t *testing.T) {
	isolateEnv(t)
	for _, tc := range []struct {
		env, flag, want string
	}{
		{"", "", ""}, {"from-env", "", "from-env"}, {"from-env", "from-flag", "from-flag"},
	} {
		t.Setenv(api.TokenEnv, tc.env)
		var log headerLog
		f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/members": log.wrap(rawReply(`[]`))})
		args := []string{"-address=" + f.URL}
		if tc.flag != "" {
			args = append(args, "-token="+tc.flag)
		}
		exitCode(0)(t, runCommand(t, "members", args...))
		log.sent(t, tc.want)
	}
	isolateEnv(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/nodes": errorReply(http.StatusForbidden,
		`permission denied: GET /v1/nodes needs node read; token "ci" has no node rule`)})
	failsWith("permission denied", "needs node read", "HTTP 403")(t, runCommand(t, "node status", "-address="+f.URL, "-token=x"))
}

func TestACLPolicyCommands(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "deploy.hcl")
	os.WriteFile(good, []byte("node { policy = \"write\" }\n"), 0o600)
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("node { policy = \"write\" }\nnodes { policy = \"read\" }\n"), 0o600)
	policy := `{"name":"deploy","description":"CI","rules":"node { policy = \"write\" }\n","create_index":3,"modify_index":9}`

	var body bodyRecorder
	f := newFakeAPI(t, map[string]http.HandlerFunc{"PUT /v1/acl/policy/deploy": body.wrap(rawReply(policy))})
	r := runCommand(t, "acl policy apply", "-address="+f.URL, "-name=deploy", "-description=CI", good)
	exitCode(0)(t, r)
	stdoutIs("Applied ACL policy deploy (modify index 9)")(t, r)
	body.bodyIs(`{"description":"CI","rules":"node { policy = \"write\" }\n"}`)(t, r)

	// From standard input.
	var body2 bodyRecorder
	f = newFakeAPI(t, map[string]http.HandlerFunc{"PUT /v1/acl/policy/deploy": body2.wrap(rawReply(policy))})
	ui := cli.NewMockUi()
	cmd := &ACLPolicyApplyCommand{Meta: Meta{Ui: ui}, stdin: strings.NewReader(`event { policy = "read" }`)}
	if code := cmd.Run([]string{"-address=" + f.URL, "-name=deploy", "-"}); code != 0 {
		t.Fatalf("apply from stdin: %d %s", code, ui.ErrorWriter.String())
	}
	body2.bodyIs(`{"rules":"event { policy = \"read\" }"}`)(t, result{})

	// A bad policy fails before anything is sent, naming the line and the key.
	f = newFakeAPI(t, nil)
	r = runCommand(t, "acl policy apply", "-address="+f.URL, "-name=deploy", bad)
	failsWith("line 2", `"nodes"`)(t, r)
	requestsAre(f)(t, r)
	usageFails("acl policy apply", "-name")(t, runCommand(t, "acl policy apply", good))
	usageFails("acl policy apply", "FILE")(t, runCommand(t, "acl policy apply", "-name=x"))

	f = newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/acl/policies":         rawReply(`[{"name":"deploy","description":"CI"},{"name":"readers","description":""}]`),
		"GET /v1/acl/policy/deploy":    rawReply(policy),
		"DELETE /v1/acl/policy/gone":   errorReply(http.StatusNotFound, "delete ACL policy gone: not found"),
		"DELETE /v1/acl/policy/deploy": rawReply(`{"deleted":"deploy"}`),
	})
	tableIs([]string{"Name", "Description"}, []string{"deploy", "CI"}, []string{"readers", "-"})(t, runCommand(t, "acl policy list", "-address="+f.URL))
	r = runCommand(t, "acl policy info", "-address="+f.URL, "deploy")
	exitCode(0)(t, r)
	stdoutHas("Name         = deploy\n", "Modify Index = 9\n", "Rules:\n\nnode { policy = \"write\" }")(t, r)
	jsonIs(policy)(t, runCommand(t, "acl policy info", "-address="+f.URL, "-json", "deploy"))
	stdoutIs("Deleted ACL policy deploy")(t, runCommand(t, "acl policy delete", "-address="+f.URL, "deploy"))
	failsWith(`ACL policy "gone" not found`)(t, runCommand(t, "acl policy delete", "-address="+f.URL, "gone"))
}

func TestACLTokenCommands(t *testing.T) {
	isolateEnv(t)
	created := `{"accessor_id":"a-1","secret_id":"s-1","name":"ci","policies":["readers","deploy"],"management":false,
"create_time":"2026-01-02T03:04:05Z","create_index":12,"modify_index":12}`
	var body bodyRecorder
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /v1/acl/token": body.wrap(statusReply(http.StatusCreated, created))})
	r := runCommand(t, "acl token create", "-address="+f.URL, "-name=ci", "-policy=readers", "-policy=deploy")
	exitCode(0)(t, r)
	stdoutHas("Secret ID    = s-1\n", "Type         = client\n", "Policies     = readers, deploy\n")(t, r)
	body.bodyIs(`{"name":"ci","policies":["readers","deploy"]}`)(t, r)
	usageFails("acl token create", "-policy", "-management")(t, runCommand(t, "acl token create", "-name=x"))
	usageFails("acl token create", "mutually exclusive")(t, runCommand(t, "acl token create", "-management", "-policy=a"))

	f = newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/acl/tokens": rawReply(`[{"accessor_id":"a-0","name":"bootstrap","management":true,"policies":[]},
			{"accessor_id":"a-1","name":"ci","policies":["readers","deploy"]}]`),
		"GET /v1/acl/token/a-1":    rawReply(strings.Replace(created, `"secret_id":"s-1",`, "", 1)),
		"GET /v1/acl/token/self":   rawReply(strings.Replace(created, `"secret_id":"s-1",`, "", 1)),
		"DELETE /v1/acl/token/a-1": rawReply(`{"deleted":"a-1"}`),
		"DELETE /v1/acl/token/a-9": errorReply(http.StatusNotFound, "not found"),
	})
	tableIs([]string{"Name", "Type", "Accessor", "ID", "Policies"},
		[]string{"bootstrap", "management", "a-0", "-"}, []string{"ci", "client", "a-1", "readers,deploy"})(t, runCommand(t, "acl token list", "-address="+f.URL))
	r = runCommand(t, "acl token info", "-address="+f.URL, "a-1")
	exitCode(0)(t, r)
	if strings.Contains(r.stdout, "Secret ID") {
		t.Errorf("info shows a secret: %s", r.stdout)
	}
	stdoutHas("Accessor ID  = a-1\n", "Name         = ci\n")(t, runCommand(t, "acl token self", "-address="+f.URL, "-token=s-1"))
	stdoutIs("Deleted ACL token a-1")(t, runCommand(t, "acl token delete", "-address="+f.URL, "a-1"))
	jsonIs(`{"deleted":"a-1"}`)(t, runCommand(t, "acl token delete", "-address="+f.URL, "-json", "a-1"))
	failsWith(`ACL token "a-9" not found`)(t, runCommand(t, "acl token delete", "-address="+f.URL, "a-9"))
	usageFails("acl token info", "ACCESSOR_ID")(t, runCommand(t, "acl token info"))
}
