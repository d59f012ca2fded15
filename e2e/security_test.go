//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/auth"
	"github.com/sutragrid/grid/fsm"
	"github.com/sutragrid/grid/gossip"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// secureEvent is one entry of `grid event list -json`.
type secureEvent struct {
	Seq    uint64 `json:"seq"`
	Type   string `json:"type"`
	NodeID string `json:"node_id"`
	Agent  string `json:"agent"`
}

// secureSnapshot is what every refusal must leave as it was: the history, the
// nodes and the Raft voters, as the CLI shows them.
func secureSnapshot(t *testing.T, via string) string {
	t.Helper()
	events, stderr, code := grid("event", "list", "-json", via, "-asc", "-limit=1000")
	if code != 0 {
		t.Fatalf("grid event list: %s", stderr)
	}
	var nodes []nodeView
	if err := gridJSON(&nodes, "node", "status", via); err != nil {
		t.Fatal(err)
	}
	var peers []peer
	if err := gridJSON(&peers, "operator", "raft", "list-peers", via); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range peers {
		ids = append(ids, fmt.Sprintf("%s voter=%v", p.ID, p.Voter))
	}
	return fmt.Sprintf("events:\n%s\nnodes: %+v\nraft: %v", strings.TrimSpace(events), nodes, ids)
}

// TestSecureGrid runs three servers with TLS, gossip encryption and ACLs, two agents
// with their token and the event store over TLS: each way in without the right
// certificate, gossip key or token is refused with a clear error and changes
// nothing (a follower's order to an agent among them); a gossip key rotation and a certificate reload while a node spawns lose
// nothing.
func TestSecureGrid(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { killProcessesMentioning(dir) })
	p := newTLSPKI(t, filepath.Join(dir, "pki"))
	t.Setenv(api.CACertEnv, p.ca)
	t.Setenv(api.ClientCertEnv, p.client.CertFile)
	t.Setenv(api.ClientKeyEnv, p.client.KeyFile)
	t.Setenv(api.TokenEnv, "")
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	via := httpsAddress("127.0.0.12")

	store := start(t, "event store", append([]string{"storage", "-bind=127.0.0.31", "-port=50052",
		"-data-dir=" + filepath.Join(dir, "events")}, tlsArgs(p.node)...)...)
	c := &serverCluster{t: t, dir: dir, procs: map[string]*proc{}, extra: []string{
		"-event-store=" + eventStoreAddr, "-verify-https-client", "-encrypt=" + key, "-acl-enabled",
		"-heartbeat-interval=300ms", "-agent-degraded-after=3s", "-agent-offline-after=6s",
	}, own: p.serverTLS}
	for _, ip := range serverIPs {
		c.start(ip)
	}

	// ACL bootstrap, then the agents' policy and tokens and an operator's read token,
	// through the API as an operator would.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	anon := p.tlsAPI(t, "127.0.0.11")
	var mgmt *api.ACLToken
	cliPoll.WaitFor(t, 40*time.Second, "the ACL bootstrap", func() error {
		var err error
		mgmt, err = anon.ACLBootstrap(ctx)
		return err
	})
	t.Setenv(api.TokenEnv, mgmt.SecretID)
	cl, err := api.NewClient(&api.Config{Address: "https://127.0.0.12:7000", Token: mgmt.SecretID,
		TLS: api.TLSConfig{CACert: p.ca, ClientCert: p.client.CertFile, ClientKey: p.client.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	for name, rules := range map[string]string{
		"agents":  `agent { policy = "write" }`,
		"readers": `node { policy = "read" }` + "\n" + `event { policy = "read" }`,
		"writers": `node { policy = "write" }`,
	} {
		if _, err := cl.ACLPolicyApply(ctx, name, api.ACLPolicyRequest{Rules: rules}); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
	}
	tokens := map[string]*api.ACLToken{}
	for name, policy := range map[string]string{"agent-001": "agents", "agent-002": "agents", "ci": "readers", "revoked": "writers"} {
		tok, err := cl.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: name, Policies: []string{policy}})
		if err != nil {
			t.Fatalf("token %s: %v", name, err)
		}
		tokens[name] = tok
	}
	if err := cl.ACLTokenDelete(ctx, tokens["revoked"].AccessorID); err != nil {
		t.Fatal(err)
	}

	agents := map[string]*proc{}
	for i, name := range []string{"agent-001", "agent-002"} {
		ip := fmt.Sprintf("127.0.0.%d", 21+i)
		agents[name] = start(t, name, append([]string{"agent", "-bind=" + ip, "-name=" + name,
			"-data-dir=" + filepath.Join(dir, name), "-join=127.0.0.11", "-retry-interval=200ms",
			"-encrypt=" + key, "-token=" + tokens[name].SecretID,
			"-node-cert-file=" + p.node.CertFile, "-node-key-file=" + p.node.KeyFile}, tlsArgs(p.agent)...)...)
	}
	var agentsBefore []agentView
	cliPoll.WaitFor(t, 30*time.Second, "two healthy agents", func() error {
		if err := gridJSON(&agentsBefore, "agent", "status", via); err != nil {
			return err
		}
		if len(agentsBefore) != 2 || agentsBefore[0].Status != "healthy" || agentsBefore[1].Status != "healthy" {
			return fmt.Errorf("agents %+v", agentsBefore)
		}
		return nil
	})
	var n nodeView
	if err := gridJSON(&n, "node", "spawn", httpsAddress("127.0.0.11"), "-agent=agent-001", "-port=50061"); err != nil {
		t.Fatal(err)
	}
	if n.Status != "running" || n.PID <= 0 {
		t.Fatalf("spawned %+v", n)
	}
	waitShipped(t, cl, "events shipped to the TLS event store")
	before := secureSnapshot(t, via)

	// Each refusal, with a clear error.
	other := newTLSPKI(t, filepath.Join(dir, "other"))
	expiredCert, expiredKey := expiredClient(t, p)
	cliRefusals := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"a plaintext client", nil, []string{"-address=http://127.0.0.12:7000"}, []string{"use an https:// address"}},
		{"a wrong CA", []string{api.CACertEnv + "=" + other.ca}, nil, []string{"is not signed by the CA in " + other.ca}},
		{"an expired certificate", []string{api.ClientCertEnv + "=" + expiredCert, api.ClientKeyEnv + "=" + expiredKey}, nil,
			[]string{"the server refused the client certificate " + expiredCert + ": it has expired"}},
		{"no token", []string{api.TokenEnv + "="}, nil, []string{"HTTP 403", "needs node write"}},
		{"a read token writing", []string{api.TokenEnv + "=" + tokens["ci"].SecretID}, nil, []string{"HTTP 403", `needs node write; token "ci" has node read`}},
		{"a revoked token", []string{api.TokenEnv + "=" + tokens["revoked"].SecretID}, nil, []string{"HTTP 403", "token not found: it was deleted, or never existed"}},
		{"a forged token", []string{api.TokenEnv + "=8a1d2c5e-0000-4000-8000-000000000000"}, nil, []string{"HTTP 403", "token not found"}},
	}
	for _, tc := range cliRefusals {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			args := append([]string{"node", "stop"}, tc.args...)
			if len(tc.args) == 0 {
				args = append(args, via)
			}
			cmd := exec.Command(gridBin, append(args, n.ID)...)
			cmd.Env = append(append(os.Environ(), "GRID_ADDR="), tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.HasPrefix(string(out), "Error: ") {
				t.Fatalf("grid node stop: %v: %s; want an error", err, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("grid node stop: %s; want %q", out, want)
				}
			}
		})
	}
	stopCmd, err := fsm.Encode(&fsm.StopNode{ID: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("refused/an agent certificate calling a server-only RPC", func(t *testing.T) {
		err := rpcAs(t, p.agent, "127.0.0.12:7001", mtls.RoleServer).Invoke(ctx, gridpb.Internal_Apply_FullMethodName,
			&gridpb.ApplyRequest{Command: stopCmd}, new(gridpb.ApplyResponse))
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is agent.global.grid") {
			t.Errorf("Internal.Apply with an agent's certificate: %v", err)
		}
	})
	t.Run("refused/a forged internal Apply", func(t *testing.T) {
		// A server's certificate, but no token or a forged one: the leader authorizes
		// the command it carries, and refuses it.
		conn := rpcAs(t, p.server, "127.0.0.11:7001", mtls.RoleServer)
		for _, token := range []string{"", "forged", tokens["ci"].SecretID} {
			cctx := ctx
			if token != "" {
				cctx = metadata.AppendToOutgoingContext(ctx, auth.TokenMetadata, token)
			}
			_, err := gridpb.NewInternalClient(conn).Apply(cctx, &gridpb.ApplyRequest{Command: stopCmd})
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("a forged Apply with token %q: %v, want PermissionDenied", token, err)
			}
		}
	})
	t.Run("refused/a direct StopNode on an agent", func(t *testing.T) {
		_, err := gridpb.NewAgentClient(rpcAs(t, p.client, agentIP+":8001", mtls.RoleAgent)).StopNode(ctx, &gridpb.StopNodeRequest{NodeId: n.ID})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may be called by a server only: the caller's certificate is client.global.grid") {
			t.Errorf("StopNode with a client's certificate: %v", err)
		}
	})
	t.Run("refused/a follower's StopNode on an agent", func(t *testing.T) {
		// A server's certificate, but not the leader's: the agent asks who leads, and
		// refuses.
		var peers []peer
		if err := gridJSON(&peers, "operator", "raft", "list-peers", via); err != nil {
			t.Fatal(err)
		}
		follower := ""
		for _, pr := range peers {
			if pr.State != "leader" {
				follower = strings.TrimPrefix(pr.Node, "server-")
			}
		}
		if _, ok := p.servers[follower]; !ok {
			t.Fatalf("no follower among %+v", peers)
		}
		_, err := gridpb.NewAgentClient(rpcAs(t, p.servers[follower], agentIP+":8001", mtls.RoleAgent)).StopNode(ctx, &gridpb.StopNodeRequest{NodeId: n.ID})
		want := fmt.Sprintf(`is obeyed from the leader only: the caller is server "server-%s", and the leader is`, follower)
		if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), want) {
			t.Errorf("StopNode with follower %s's certificate: %v, want Aborted with %q", follower, err, want)
		}
	})
	t.Run("refused/a wrong gossip key", func(t *testing.T) {
		wrongKey, err := gossip.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		stale := start(t, "agent-003 (wrong key)", append([]string{"agent", "-bind=127.0.0.23", "-name=agent-003",
			"-data-dir=" + filepath.Join(dir, "agent-003"), "-join=127.0.0.11", "-retry-interval=200ms", "-retry-max=2",
			"-encrypt=" + wrongKey, "-token=" + tokens["agent-001"].SecretID,
			"-node-cert-file=" + p.node.CertFile, "-node-key-file=" + p.node.KeyFile}, tlsArgs(p.agent)...)...)
		if code := waitExit(t, stale, 30*time.Second); code != 1 {
			t.Errorf("the agent with a wrong gossip key exited %d, want 1", code)
		}
		if out := stale.out.String(); !strings.Contains(out, "gossip encryption keys do not match") {
			t.Errorf("the agent with a wrong gossip key does not say why it stopped:\n%s", out)
		}
	})
	t.Run("refused/a stranger joining as a server", func(t *testing.T) {
		// The gossip key and an agent's certificate on its "raft" port: it claims the
		// server role, and the leader never adds it to Raft.
		agentSrc, err := mtls.Load(p.agent)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.24:0", agentSrc.ServerConfig(false))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					_ = conn.(*tls.Conn).Handshake()
				}()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		mc := memberlist.DefaultLocalConfig()
		pool, err := gossip.Create(gossip.Config{Name: "server-127.0.0.24", BindAddr: "127.0.0.24", Base: mc, EncryptKey: key,
			Tags: gossip.Tags{Role: gossip.RoleServer, ID: "stranger", Version: "0", HTTPPort: port, RPCPort: port, RaftPort: port, BootstrapExpect: 3}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = pool.Leave(2 * time.Second)
			_ = pool.Shutdown()
		}()
		if _, err := pool.Join("127.0.0.11"); err != nil {
			t.Fatalf("the stranger, with the key, joins gossip: %v", err)
		}
		cliPoll.WaitFor(t, 15*time.Second, "the leader to refuse the stranger", func() error {
			for _, ip := range serverIPs {
				if strings.Contains(c.procs[ip].out.String(), "refusing to add a gossip member with the server role to raft") {
					return nil
				}
			}
			return fmt.Errorf("no refusal logged")
		})
		var peers []peer
		if err := gridJSON(&peers, "operator", "raft", "list-peers", via); err != nil {
			t.Fatal(err)
		}
		if len(peers) != 3 {
			t.Errorf("raft peers with the stranger in gossip: %+v", peers)
		}
	})
	if !alive(n.PID) {
		t.Fatal("a refused request stopped the node")
	}
	if after := secureSnapshot(t, via); after != before {
		t.Fatalf("refused requests changed the state or the history:\n before %s\n after  %s", before, after)
	}

	// A gossip key rotation and a certificate reload while another node spawns.
	var (
		spawned  nodeView
		spawnErr error
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		spawnErr = gridJSON(&spawned, "node", "spawn", httpsAddress("127.0.0.13"), "-agent=agent-002", "-port=50062")
	}()
	const members = 5
	newKey, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyring(t, httpsAddress("127.0.0.11"), "-install="+newKey)
	next := &tlsPKI{dir: filepath.Join(dir, "pki-next"), ca: p.ca, caKey: p.caKey}
	next.makeCerts(t, next.dir)
	p.replaceWith(t, next)
	procs := []*proc{store, agents["agent-001"], agents["agent-002"]}
	for _, ip := range serverIPs {
		procs = append(procs, c.procs[ip])
	}
	for _, pr := range procs {
		if err := pr.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	keyring(t, httpsAddress("127.0.0.12"), "-use="+newKey)
	waitKeyring(t, httpsAddress("127.0.0.13"), members, newKey, key)
	keyring(t, httpsAddress("127.0.0.13"), "-remove="+key)
	waitKeyring(t, httpsAddress("127.0.0.11"), members, newKey)
	for _, pr := range procs {
		cliPoll.WaitFor(t, 10*time.Second, pr.name+" reloads its certificates", func() error {
			if !strings.Contains(pr.out.String(), "TLS certificates reloaded") {
				return fmt.Errorf("not in its log yet")
			}
			return nil
		})
	}
	wg.Wait()
	if spawnErr != nil {
		t.Fatalf("spawn during the rotation: %v", spawnErr)
	}
	for _, want := range []nodeView{n, spawned} {
		var got []nodeView
		if err := gridJSON(&got, "node", "status", via, want.ID); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Status != "running" || got[0].PID != want.PID || got[0].PID <= 0 {
			t.Errorf("node %s after the rotation: %+v, want running with pid %d", want.ID, got, want.PID)
		}
	}
	waitShipped(t, cl, "every event shipped after the rotation")
	var history []secureEvent
	if err := gridJSON(&history, "event", "list", via, "-asc", "-limit=1000"); err != nil {
		t.Fatal(err)
	}
	for i, e := range history {
		if i > 0 && e.Seq != history[i-1].Seq+1 {
			t.Errorf("event seqs not contiguous: %d after %d", e.Seq, history[i-1].Seq)
		}
		if e.Type == "agent_offline" || e.Type == "agent_degraded" || e.Type == "node_crashed" {
			t.Errorf("event %s during the rotation: %+v", e.Type, e)
		}
	}
	if len(history) == 0 || history[0].Seq != 1 {
		t.Errorf("the history does not start at seq 1: %+v", history)
	}
	stored, err := storedEventsFrom(rpcAs(t, p.server, eventStoreAddr, mtls.RoleNode, mtls.RoleServer))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(history) {
		t.Errorf("the event store holds %d events, the grid %d", len(stored), len(history))
	} else {
		for i, e := range stored {
			if e.Seq != history[i].Seq {
				t.Errorf("the event store's event %d has seq %d, the grid's %d", i, e.Seq, history[i].Seq)
				break
			}
		}
	}
	var agentsAfter []agentView
	if err := gridJSON(&agentsAfter, "agent", "status", via); err != nil {
		t.Fatal(err)
	}
	for i, a := range agentsAfter {
		if a.Status != "healthy" || !a.StatusChangedAt.Equal(agentsBefore[i].StatusChangedAt) {
			t.Errorf("agent %s after the rotation: %+v, was %+v", a.Name, a, agentsBefore[i])
		}
	}
	for _, pr := range procs {
		select {
		case <-pr.done:
			t.Errorf("%s exited: %v", pr.name, pr.err)
		default:
		}
	}
}
