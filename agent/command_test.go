//go:build linux

package agent

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

// TestAgentCommandSignals runs `grid agent` as a real process: SIGTERM leaves its
// nodes running for the next agent, SIGINT stops them and unregisters; both exit 0.
func TestAgentCommandSignals(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dir := t.TempDir()
	rpcPort, gossipPort := gridtest.FreePort(t), gridtest.FreePort(t)
	t.Cleanup(func() { killRecordedNodes(t, dir) })
	run := func() *exec.Cmd {
		cmd := exec.Command(gridBinary, "agent", "-bind=127.0.0.1", "-name=agent-cmd", "-data-dir="+dir,
			"-join="+srv.gossipAddr, "-rpc-port="+strconv.Itoa(rpcPort), "-gossip-port="+strconv.Itoa(gossipPort),
			"-heartbeat-interval=200ms", "-retry-interval=100ms", "-log-level=debug")
		out := &gridtest.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
			if t.Failed() {
				t.Logf("output of grid agent (pid %d):\n%s", cmd.Process.Pid, out.String())
			}
		})
		return cmd
	}
	stop := func(cmd *exec.Cmd, sig syscall.Signal) {
		t.Helper()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("grid agent after %s: %v", sig, err)
		}
	}
	registrations := func() int { regs, _, _, _, _ := srv.snapshot(); return len(regs) }

	first := run()
	gridtest.WaitUntil(t, waitLong, "registration", func() bool { return registrations() == 1 })
	c := gridpb.NewAgentClient(dialAgent(t, "127.0.0.1:"+strconv.Itoa(rpcPort)))
	resp := startNode(t, c, "n1", gridtest.FreePort(t), nil)
	stop(first, syscall.SIGTERM)
	if !alive(int(resp.GetPid())) || !healthy(resp.GetEndpoint()) {
		t.Fatal("SIGTERM stopped the node")
	}

	second := run()
	gridtest.WaitUntil(t, waitLong, "a registration listing the node", func() bool {
		regs, _, _, _, _ := srv.snapshot()
		last := regs[len(regs)-1].GetNodes()
		return len(regs) == 2 && len(last) == 1 && last[0].GetPid() == resp.GetPid()
	})
	stop(second, syscall.SIGINT)
	if alive(int(resp.GetPid())) {
		t.Fatal("SIGINT left the node running")
	}
	_, _, reports, unregs, _ := srv.snapshot()
	if len(reports) != 1 || reports[0].GetEvent() != gridpb.NodeEvent_NODE_EVENT_STOPPED || len(unregs) != 1 {
		t.Fatalf("reports %v, unregisters %v", events(reports), unregs)
	}
}
