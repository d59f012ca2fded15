package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sutragrid/grid/durable"
	"github.com/sutragrid/grid/mtls"
	gridpb "github.com/sutragrid/grid/proto"
)

// Mutual TLS, when Config.TLS is set:
//
//   - The agent's gRPC endpoint takes callers with a certificate of the grid, and
//     serves the Agent service (StartNode, StopNode, NodeLogs) to a server's only: a
//     client's or another agent's certificate gets PermissionDenied. StartNode and
//     StopNode it obeys from the leader's certificate alone (leader.go). The health
//     check is open to any.
//   - The agent dials servers that must present a server certificate, and its nodes,
//     which must present a node certificate.
//   - Its storage nodes serve with the node certificate the operator gave the agent
//     (NodeCertFile, NodeKeyFile; grid tls cert create -node). The agent does not
//     hold the CA's key and issues nothing: before it starts a node it copies the
//     CA, the node certificate and its key into the node's storage directory
//     (tls/, mode 0700, files 0600), where only the agent's user can read them, and
//     starts the node with them, taking calls from servers, agents and clients. A
//     node's certificate is for serving only: it cannot call a server or an agent.
//   - ReloadTLS (SIGHUP) reloads the agent's own files and the node certificate,
//     writes the new files into every node's directory and sends each running node
//     SIGHUP, on which it reloads them; a node still starting gets its SIGHUP once
//     it is healthy. Connections already open carry on.

// nodeTLSDir is the directory, in a node's storage path, that holds its TLS files.
const nodeTLSDir = "tls"

// Roles the agent expects of its peers.
var (
	serverPeers = []mtls.Role{mtls.RoleServer}
	nodePeers   = []mtls.Role{mtls.RoleNode}
	// nodeCallers may call the agent's nodes.
	nodeCallers = "server,agent,client"
)

// rpcAllowed says which roles may call each gRPC method of the agent: the servers
// order it; anyone of the grid may ask its health.
func rpcAllowed(method string) []mtls.Role {
	if strings.HasPrefix(method, "/"+gridpb.Agent_ServiceDesc.ServiceName+"/") {
		return serverPeers
	}
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	return serverPeers
}

// nodeCerts is the certificate the agent hands its storage nodes, and which
// generation of it each node process started with.
type nodeCerts struct {
	files mtls.Files

	mu   sync.Mutex
	gen  uint64
	ca   []byte
	cert []byte
	key  []byte
	// started is the generation each node's current process started with or was
	// last told to reload.
	started map[string]uint64
}

// loadNodeCerts reads the node certificate of an agent with TLS; nil without TLS.
func loadNodeCerts(cfg *Config) (*nodeCerts, error) {
	if cfg.TLS == nil {
		if cfg.NodeCertFile != "" || cfg.NodeKeyFile != "" {
			return nil, errors.New("-node-cert-file and -node-key-file need TLS (-ca-file, -cert-file, -key-file)")
		}
		return nil, nil
	}
	if cfg.NodeCertFile == "" || cfg.NodeKeyFile == "" {
		return nil, errors.New("with TLS, an agent needs -node-cert-file and -node-key-file: the node certificate its storage nodes serve with (grid tls cert create -node)")
	}
	c := &nodeCerts{
		files:   mtls.Files{CAFile: cfg.TLS.Files().CAFile, CertFile: cfg.NodeCertFile, KeyFile: cfg.NodeKeyFile},
		started: map[string]uint64{},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c, c.loadLocked()
}

// loadLocked reads and checks the files: a node certificate signed by the CA, valid
// now, with its key.
func (c *nodeCerts) loadLocked() error {
	if _, err := mtls.LoadRole(c.files, mtls.RoleNode); err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	var data [3][]byte
	for i, f := range []string{c.files.CAFile, c.files.CertFile, c.files.KeyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("node certificate: %w", err)
		}
		data[i] = b
	}
	c.ca, c.cert, c.key = data[0], data[1], data[2]
	c.gen++
	return nil
}

// paths are a node's TLS files, in its storage path.
func nodeTLSFiles(storagePath string) mtls.Files {
	dir := filepath.Join(storagePath, nodeTLSDir)
	return mtls.Files{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
}

// args are the flags that start a node with its TLS files.
func (c *nodeCerts) args(storagePath string) []string {
	if c == nil {
		return nil
	}
	f := nodeTLSFiles(storagePath)
	return []string{"-ca-file=" + f.CAFile, "-cert-file=" + f.CertFile, "-key-file=" + f.KeyFile, "-callers=" + nodeCallers}
}

// writeLocked puts the current files in the node's directory, each replaced
// atomically, readable by the agent's user only.
func (c *nodeCerts) writeLocked(storagePath string) error {
	f := nodeTLSFiles(storagePath)
	if err := os.MkdirAll(filepath.Dir(f.CAFile), 0o700); err != nil {
		return fmt.Errorf("node TLS files: %w", err)
	}
	if err := os.Chmod(filepath.Dir(f.CAFile), 0o700); err != nil {
		return fmt.Errorf("node TLS files: %w", err)
	}
	for path, data := range map[string][]byte{f.CAFile: c.ca, f.CertFile: c.cert, f.KeyFile: c.key} {
		if err := durable.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("node TLS files: %w", err)
		}
	}
	return nil
}

// prepare writes a node's files before its process starts.
func (c *nodeCerts) prepare(n *node) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writeLocked(n.spec.StoragePath); err != nil {
		return err
	}
	c.started[n.spec.ID] = c.gen
	return nil
}

// catchUp tells a node that has just become healthy to reload, if the files changed
// while it started.
func (c *nodeCerts) catchUp(s *supervisor, n *node, p *proc) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started[n.spec.ID] == c.gen {
		return
	}
	c.tellLocked(s, n, p)
}

// tellLocked writes a node's files and has its process reload them.
func (c *nodeCerts) tellLocked(s *supervisor, n *node, p *proc) {
	if err := c.writeLocked(n.spec.StoragePath); err != nil {
		s.logger.Error("could not hand a node its new certificate", "node_id", n.spec.ID, "error", err)
		return
	}
	if !usesTLS(p.pid) {
		// Started without TLS (by an agent before this one): SIGHUP would kill it. It
		// gets its certificate when it next starts.
		return
	}
	if err := p.signal(syscall.SIGHUP); err != nil {
		s.logger.Warn("could not signal a node to reload its certificate", "node_id", n.spec.ID, "pid", p.pid, "error", err)
		return
	}
	c.started[n.spec.ID] = c.gen
	s.logger.Info("node told to reload its certificate", "node_id", n.spec.ID, "pid", p.pid)
}

// usesTLS reports whether process pid was started with TLS files. Where /proc
// cannot tell, it says no.
func usesTLS(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(raw), "\x00") {
		if strings.HasPrefix(a, "-cert-file=") {
			return true
		}
	}
	return false
}

// reload reads the node certificate again and hands it to every node: a running
// node's process is told to reload at once, a starting one once it is healthy, and
// one waiting to restart gets it when it starts.
func (c *nodeCerts) reload(s *supervisor) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(); err != nil {
		return err
	}
	type live struct {
		n       *node
		p       *proc
		running bool
	}
	var nodes []live
	s.mu.Lock()
	for _, n := range s.nodes {
		if n.proc != nil && !n.proc.exited() {
			nodes = append(nodes, live{n, n.proc, n.running})
		}
	}
	s.mu.Unlock()
	keep := map[string]uint64{}
	for _, l := range nodes {
		keep[l.n.spec.ID] = c.started[l.n.spec.ID]
	}
	c.started = keep
	for _, l := range nodes {
		if l.running {
			c.tellLocked(s, l.n, l.p)
		} else if err := c.writeLocked(l.n.spec.StoragePath); err != nil {
			s.logger.Error("could not hand a node its new certificate", "node_id", l.n.spec.ID, "error", err)
		}
	}
	return nil
}

// ReloadTLS reads the agent's CA, certificate and key again, and the node
// certificate, and hands the latter to every node (on SIGHUP). The handshakes that
// follow use them; connections already open carry on. On error the agent keeps what
// it had.
func (a *Agent) ReloadTLS() error {
	if a.config.TLS == nil {
		return errors.New("TLS is not enabled")
	}
	ch, err := a.config.TLS.Reload()
	if err != nil {
		a.logger.Error("TLS reload failed", "error", err)
		return err
	}
	a.logger.Info("TLS certificates reloaded", ch.LogArgs()...)
	if err := a.sup.certs.reload(a.sup); err != nil {
		a.logger.Error("node certificate reload failed; nodes keep theirs", "error", err)
		return err
	}
	a.logger.Info("node certificate reloaded and handed to the nodes", "file", a.config.NodeCertFile)
	return nil
}
