package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sutragrid/grid/durable"
	gridpb "github.com/sutragrid/grid/proto"
)

// reportsFile is the file in the data dir that holds the reports not yet delivered,
// so that an agent restarted (SIGTERM, or a crash after the report was queued) still
// delivers them, in order, before any new one.
const reportsFile = "agent-reports.json"

// reportQueue keeps node reports in the order they happened until a server has
// accepted them. Every change is written through to the reports file.
type reportQueue struct {
	path   string // "" keeps the queue in memory only
	logger hclog.Logger

	mu     sync.Mutex
	items  []*gridpb.NodeReport
	pushed chan struct{} // a signal after each push; signals coalesce
	popped chan struct{} // a signal after each pop; signals coalesce
}

func newReportQueue(path string, logger hclog.Logger) *reportQueue {
	return &reportQueue{path: path, logger: logger, pushed: make(chan struct{}, 1), popped: make(chan struct{}, 1)}
}

// openReportQueue returns the queue persisted at path, holding the reports an
// earlier agent left undelivered.
func openReportQueue(path string, logger hclog.Logger) (*reportQueue, error) {
	q := newReportQueue(path, logger)
	if err := q.load(); err != nil {
		return nil, err
	}
	return q, nil
}

// persistedReports is the reports file's content: reports in protobuf's JSON form.
type persistedReports struct {
	Reports []json.RawMessage `json:"reports"`
}

// load reads the reports an earlier agent left undelivered into the queue. It comes
// before any push, which would overwrite the file.
func (q *reportQueue) load() error {
	if q.path == "" {
		return nil
	}
	b, err := os.ReadFile(q.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read undelivered reports: %w", err)
	}
	var pr persistedReports
	if err := json.Unmarshal(b, &pr); err != nil {
		return fmt.Errorf("undelivered reports %s are corrupt: %w", q.path, err)
	}
	var loaded []*gridpb.NodeReport
	for _, raw := range pr.Reports {
		r := &gridpb.NodeReport{}
		if err := protojson.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("undelivered reports %s are corrupt: %w", q.path, err)
		}
		loaded = append(loaded, r)
	}
	q.mu.Lock()
	q.items = append(loaded, q.items...)
	q.mu.Unlock()
	if len(loaded) > 0 {
		signal(q.pushed)
	}
	return nil
}

// saveLocked writes the queue through to its file. A failure is logged: the report
// is still delivered unless the agent also restarts before that.
func (q *reportQueue) saveLocked() {
	if q.path == "" {
		return
	}
	pr := persistedReports{Reports: make([]json.RawMessage, 0, len(q.items))}
	for _, r := range q.items {
		b, err := protojson.Marshal(r)
		if err != nil {
			q.logger.Error("cannot encode a node report", "error", err)
			continue
		}
		pr.Reports = append(pr.Reports, b)
	}
	b, err := json.MarshalIndent(pr, "", "  ")
	if err == nil {
		err = durable.WriteFile(q.path, append(b, '\n'), 0o600)
	}
	if err != nil {
		q.logger.Error("cannot persist undelivered node reports", "error", err)
	}
}

func (q *reportQueue) push(r *gridpb.NodeReport) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.saveLocked()
	q.mu.Unlock()
	signal(q.pushed)
}

func (q *reportQueue) peek() (*gridpb.NodeReport, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, false
	}
	return q.items[0], true
}

func (q *reportQueue) pop() {
	q.mu.Lock()
	q.items[0] = nil
	q.items = q.items[1:]
	q.saveLocked()
	q.mu.Unlock()
	signal(q.popped)
}

func (q *reportQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// waitEmpty waits until every queued report was delivered.
func (q *reportQueue) waitEmpty(ctx context.Context) error {
	for q.len() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d node reports not delivered: %w", q.len(), ctx.Err())
		case <-q.popped:
		}
	}
	return nil
}
