package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sutragrid/grid/internal/gridtest"
	gridpb "github.com/sutragrid/grid/proto"
)

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeStore1M()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gridBinary builds ./cmd/grid once per test run.
func gridBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "grid-storage-test-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "grid")
		binError = gridtest.BuildGrid(binPath)
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

var addrRE = regexp.MustCompile(`storage node started: address=(\S+)`)

// node is a `grid storage` process.
type node struct {
	cmd     *exec.Cmd
	addr    string
	done    chan struct{} // closed when the process has exited
	exitErr error
}

func startNode(t *testing.T, dir string) *node {
	t.Helper()
	cmd := exec.Command(gridBinary(t), "storage", "-data-dir="+dir, "-port=0", "-log-level=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, done: make(chan struct{})}
	// Whatever happens to the test, the process does not outlive it.
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-n.done
	})
	addrc := make(chan string, 1)
	lines := make(chan string, 100)
	go func() {
		// Read the log to its end, so that the node never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
			select {
			case lines <- sc.Text():
			default:
			}
		}
		n.exitErr = cmd.Wait()
		close(n.done)
	}()
	select {
	case n.addr = <-addrc:
	case <-n.done:
		close(lines)
		var log []string
		for l := range lines {
			log = append(log, l)
		}
		t.Fatalf("node exited before serving: %v\n%v", n.exitErr, log)
	case <-time.After(60 * time.Second):
		t.Fatal("node did not start")
	}
	return n
}

func (n *node) client(t *testing.T) gridpb.StorageClient {
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return gridpb.NewStorageClient(conn)
}

// TestAcknowledgedWritesSurviveKill9 kills the node with writes in flight, many
// times, and checks after each restart that every acknowledged write is there and
// that the counters and indexes agree with the data.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the grid binary")
	}
	dir := t.TempDir()
	const iterations = 6
	acked := map[string]bool{}
	var mu sync.Mutex
	ack := func(ids ...string) {
		mu.Lock()
		for _, id := range ids {
			acked[id] = true
		}
		mu.Unlock()
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	for it := 0; it <= iterations; it++ {
		n := startNode(t, dir)
		client := n.client(t)
		verifyAfterRestart(t, client, acked)
		if it == iterations {
			// Last round: a clean stop on SIGTERM exits 0.
			n.cmd.Process.Signal(syscall.SIGTERM)
			<-n.done
			if n.exitErr != nil {
				t.Fatalf("exit after SIGTERM: %v", n.exitErr)
			}
			break
		}

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for k := 0; ctx.Err() == nil; k++ {
					base := fmt.Sprintf("it%d-w%d-k%d", it, w, k)
					if w%2 == 0 {
						var cs []*gridpb.Concept
						var ids []string
						for j := 0; j < 50; j++ {
							id := fmt.Sprintf("%s-%d", base, j)
							ids = append(ids, id)
							cs = append(cs, &gridpb.Concept{Id: id, Content: []byte("crash test " + id),
								Attributes: map[string]string{"writer": fmt.Sprint(w)}, Timestamp: ts(epoch + int64(k))})
						}
						as := []*gridpb.Association{{Source: ids[0], Target: ids[1], Type: "next"}}
						if _, err := client.LearnBatch(ctx, &gridpb.LearnBatchRequest{Concepts: cs, Associations: as}); err != nil {
							return // the node is gone
						}
						ack(ids...)
					} else {
						_, err := client.LearnConcept(ctx, &gridpb.LearnConceptRequest{Id: base, Content: []byte("single " + base),
							Attributes: map[string]string{"writer": fmt.Sprint(w)}, Timestamp: ts(epoch + int64(k))})
						if err != nil {
							return
						}
						ack(base)
					}
				}
			}(w)
		}
		// Kill once this round has some acknowledged writes, with writers still going.
		target := ackedCount() + 500
		deadline := time.Now().Add(60 * time.Second)
		for ackedCount() < target {
			if time.Now().After(deadline) {
				t.Fatal("writes are not being acknowledged")
			}
			time.Sleep(time.Millisecond)
		}
		if err := n.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-n.done
		cancel()
		wg.Wait()
	}
}

func verifyAfterRestart(t *testing.T, client gridpb.StorageClient, acked map[string]bool) {
	t.Helper()
	ctx := context.Background()
	found := map[string]bool{}
	req := &gridpb.QueryRequest{Limit: MaxLimit}
	for {
		resp, err := client.Query(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Concepts {
			found[c.Id] = true
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	for id := range acked {
		if !found[id] {
			t.Fatalf("acknowledged concept %s lost (%d acknowledged, %d found)", id, len(acked), len(found))
		}
	}
	// Unacknowledged writes may or may not be there, but what is there is consistent.
	st, err := client.Stats(ctx, &gridpb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := client.Aggregate(ctx, &gridpb.AggregateRequest{GroupBy: []string{"writer"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Concepts != uint64(len(found)) || agg.Total != uint64(len(found)) {
		t.Fatalf("after restart: %d concepts found, stats says %d, aggregate %d", len(found), st.Concepts, agg.Total)
	}
	var byWriter uint64
	for _, w := range []string{"0", "1", "2", "3", "4", "5"} {
		resp, err := client.Aggregate(ctx, &gridpb.AggregateRequest{Filters: []*gridpb.Filter{{Attribute: "writer", Values: []string{w}}}})
		if err != nil {
			t.Fatal(err)
		}
		byWriter += resp.Total
	}
	if byWriter != uint64(len(found)) {
		t.Fatalf("attribute index holds %d concepts, time index %d", byWriter, len(found))
	}
}

// TestSecondProcessOnDataDirFails: a second node on a data dir in use exits 1 with a
// clear error, and the first keeps serving.
func TestSecondProcessOnDataDirFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the grid binary")
	}
	dir := t.TempDir()
	n := startNode(t, dir)
	out, err := exec.Command(gridBinary(t), "storage", "-data-dir="+dir, "-port=0").CombinedOutput()
	if code := exitCode(err); code != 1 || !regexp.MustCompile(`in use by another process`).Match(out) {
		t.Fatalf("second node: exit %d, output:\n%s", code, out)
	}
	if _, err := n.client(t).Stats(context.Background(), &gridpb.StatsRequest{}); err != nil {
		t.Fatalf("first node: %v", err)
	}
	// Bad flags are refused before anything starts.
	out, err = exec.Command(gridBinary(t), "storage", "-port=0").CombinedOutput()
	if code := exitCode(err); code != 1 || !regexp.MustCompile(`-data-dir is required`).Match(out) {
		t.Fatalf("no -data-dir: exit %d, output:\n%s", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
