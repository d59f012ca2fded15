package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/hashicorp/go-hclog"

	gridpb "github.com/sutragrid/grid/proto"
)

// BenchmarkIngestSustained is issue 14's ingest figure: GRID_BENCH_INGEST concepts
// (scripts/bench-storage uses 5,000,000) sent through LearnBatch in batches of 1,000
// to a node on disk, beside its ceiling measured in the same run: raw pebble, with
// the store's options, committing batches of the same count and the same keys and
// values (see ceilingWriter), synced like the store's, from as many writers as there
// are clients. Enough data goes through (5 GB for 5M) that flushes and compactions
// of a growing store are part of both figures.
//
// Each sub-benchmark does its whole count once, whatever b.N; run with -benchtime 1x.
// pebble-nocompact is the ceiling with automatic compactions off: the CPU the
// ceiling spends beyond it is its compaction CPU (compact-cpu-µs/concept). For the
// store, which cannot run long without compactions (its existence probes would merge
// hundreds of L0 files), compact-s, pebble's own total of compaction durations, is
// comparable with the ceiling's. pebble-paced is the ceiling held to the rate
// LearnBatch reached: store-cpu-µs/concept, LearnBatch's CPU per concept less its,
// is what the store and gRPC cost beyond pebble at the same pace.
func BenchmarkIngestSustained(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("GRID_BENCH_INGEST"))
	if n <= 0 {
		b.Skip("set GRID_BENCH_INGEST=N (5000000 for issue 14's figure) to ingest N concepts")
	}
	batches := (n + ingestBatch - 1) / ingestBatch
	tmpl := newIngestTemplates()
	var ceiling ingestRun
	var nocompactCPU time.Duration
	b.Run("pebble-nocompact", func(b *testing.B) {
		r := runCeiling(b, tmpl, batches, false)
		nocompactCPU = r.cpu
		r.report(b)
	})
	b.Run("pebble", func(b *testing.B) {
		ceiling = runCeiling(b, tmpl, batches, true)
		ceiling.report(b)
		if nocompactCPU > 0 {
			b.ReportMetric(perConcept(ceiling.cpu-nocompactCPU, ceiling.concepts), "compact-cpu-µs/concept")
		}
	})
	var learn ingestRun
	b.Run("learnbatch", func(b *testing.B) {
		learn = runLearnBatch(b, tmpl, batches)
		learn.report(b)
		if ceiling.concepts > 0 {
			b.ReportMetric(learn.rate()/ceiling.rate(), "of-ceiling")
		}
	})
	// The ceiling again, held to LearnBatch's rate: how much of an LSM's compaction
	// falls within a run depends on its pace (a slower run leaves less debt), so the
	// store's own CPU per concept is LearnBatch's less this, at the same pace.
	b.Run("pebble-paced", func(b *testing.B) {
		if learn.concepts == 0 {
			b.Skip("no learnbatch figure to pace by")
		}
		r := runCeilingPaced(b, tmpl, batches, true, learn.rate())
		r.report(b)
		b.ReportMetric(perConcept(learn.cpu, learn.concepts)-perConcept(r.cpu, r.concepts), "store-cpu-µs/concept")
	})
}

const (
	ingestBatch   = 1000
	ingestWriters = 4 // clients, as in BenchmarkLearnBatch/clients=4
	// ingestTemplateBatches batches of distinct event contents are reused, with fresh IDs and
	// times, so that millions of concepts need not be generated (nor held) in advance.
	ingestTemplateBatches = 20
	ingestStep            = time.Millisecond
	// sampleBatch is a batch number past any run's, whose IDs are all new.
	sampleBatch = 1 << 20
)

// ingestRun is what one sustained run measured.
type ingestRun struct {
	concepts   int
	elapsed    time.Duration
	cpu        time.Duration
	batchBytes int // keys and values written per batch of 1,000
	m          *pebble.Metrics
}

func (r ingestRun) rate() float64 { return float64(r.concepts) / r.elapsed.Seconds() }

func perConcept(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / 1000 / float64(n)
}

func (r ingestRun) report(b *testing.B) {
	b.ReportMetric(r.rate(), "concepts/s")
	b.ReportMetric(perConcept(r.cpu, r.concepts), "cpu-µs/concept")
	b.ReportMetric(float64(r.batchBytes)/ingestBatch, "B/concept")
	tot := r.m.Total()
	b.ReportMetric(float64(r.m.Compact.Count), "compactions")
	b.ReportMetric(float64(tot.BytesCompacted)/(1<<20), "compacted-MB")
	b.ReportMetric(tot.WriteAmp(), "w-amp")
	b.ReportMetric(r.m.Compact.Duration.Seconds(), "compact-s")
	b.ReportMetric(float64(r.m.Compact.EstimatedDebt)/(1<<20), "debt-MB")
}

// measureIngest runs write(k) for batches 0..batches-1 from ingestWriters goroutines
// and times them, with the CPU time of the whole process; metrics are taken at the
// last acknowledgement (compactions may still be running then, their debt reported).
func measureIngest(b *testing.B, batches int, db *pebble.DB, write func(k int) error) ingestRun {
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < ingestWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1)) - 1; k < batches; k = int(next.Add(1)) - 1 {
				if err := write(k); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r := ingestRun{concepts: batches * ingestBatch, elapsed: time.Since(start), cpu: processCPU() - cpu0}
	b.StopTimer()
	r.m = db.Metrics()
	return r
}

// runLearnBatch ingests through a node over gRPC.
func runLearnBatch(b *testing.B, tmpl *ingestTemplates, batches int) ingestRun {
	_, srv := startTestServer(b, nil)
	clients := benchClients(b, srv, ingestWriters)
	var conn atomic.Int64
	r := measureIngest(b, batches, srv.store.db, func(k int) error {
		c := clients[int(conn.Add(1))%len(clients)]
		res, err := c.LearnBatch(context.Background(), tmpl.request(k))
		if err == nil && res.ConceptsCreated != ingestBatch {
			err = fmt.Errorf("batch %d: %v", k, res)
		}
		return err
	})
	r.batchBytes = storeBatchBytes(b, srv.store, tmpl)
	return r
}

// storeBatchBytes builds (without committing) the batch the store writes for a batch of
// new concepts, and returns the bytes of its keys and values.
func storeBatchBytes(b *testing.B, s *Store, tmpl *ingestTemplates) int {
	cs, as := tmpl.batch(sampleBatch)
	w := new(batchWriter)
	batch := s.db.NewBatch()
	defer batch.Close()
	w.prepare(cs, as)
	w.build(s, batch, cs, as)
	return batchKVBytes(b, batch)
}

func batchKVBytes(b *testing.B, batch *pebble.Batch) int {
	n := 0
	for r := batch.Reader(); ; {
		_, k, v, ok, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			return n
		}
		n += len(k) + len(v)
	}
}

// runCeiling ingests with raw pebble batches: the store's options, the store's keys.
func runCeiling(b *testing.B, tmpl *ingestTemplates, batches int, compact bool) ingestRun {
	return runCeilingPaced(b, tmpl, batches, compact, 0)
}

// runCeilingPaced is runCeiling that starts batch k no earlier than k batches' worth of
// time at rate concepts/s after the start; rate 0: at once.
func runCeilingPaced(b *testing.B, tmpl *ingestTemplates, batches int, compact bool, rate float64) ingestRun {
	cache := pebble.NewCache(64<<20 + memTables*64<<20)
	defer cache.Unref()
	opts := pebbleOptions(cache, 64<<20, hclog.NewNullLogger())
	if !compact {
		opts.DisableAutomaticCompactions = true
		opts.L0StopWritesThreshold = 1 << 30
	}
	db, err := pebble.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cw := newCeilingWriter(tmpl)
	// Each batch is built in the buffer of an earlier one, as the store's are (see
	// Store.newBatch): pebble reuses none over 1 MB.
	var bufs sync.Pool
	start := time.Now()
	r := measureIngest(b, batches, db, func(k int) error {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(k*ingestBatch) / rate * float64(time.Second)))))
		}
		buf, _ := bufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
			*buf = make([]byte, 0, 2<<20)
		}
		batch := db.NewBatch()
		if err := batch.SetRepr(append((*buf)[:0], make([]byte, batchBufHeader)...)); err != nil {
			return err
		}
		cw.fill(batch, k)
		err := db.Apply(batch, pebble.Sync)
		*buf = batch.Repr()
		bufs.Put(buf)
		batch.Close()
		return err
	})
	batch := db.NewBatch()
	defer batch.Close()
	cw.fill(batch, sampleBatch)
	r.batchBytes = batchKVBytes(b, batch)
	return r
}

// ingestTemplates are event batches (helpers_test.go) whose contents and attributes
// are reused for batch k with the IDs and times of events k*1000 on.
type ingestTemplates struct {
	batches [][]Concept
}

func newIngestTemplates() *ingestTemplates {
	t := &ingestTemplates{}
	for k := 0; k < ingestTemplateBatches; k++ {
		cs, _ := eventBatch(k*ingestBatch, ingestBatch, ingestStep)
		for j := range cs {
			cs[j].pairs = sortedAttributes(nil, cs[j].Attributes)
		}
		t.batches = append(t.batches, cs)
	}
	return t
}

// fastEventID is eventID without fmt: the client's share of the CPU should be the
// request's, not its generation's.
func fastEventID(i int) string {
	var buf [18]byte
	copy(buf[:], "event-000000000000")
	s := strconv.AppendInt(buf[:0:0], int64(i), 10)
	copy(buf[len(buf)-len(s):], s)
	return string(buf[:])
}

// concept returns event i's concept, from template j of batch k (i = k*1000 + j).
func (t *ingestTemplates) concept(k, j int) Concept {
	c := t.batches[k%len(t.batches)][j]
	i := k*ingestBatch + j
	c.ID = fastEventID(i)
	c.Time = epoch + int64(i)*int64(ingestStep)
	return c
}

// batch returns the concepts and associations of batch k, as eventBatch would.
func (t *ingestTemplates) batch(k int) ([]Concept, []Association) {
	cs := make([]Concept, ingestBatch)
	as := make([]Association, 0, 2*ingestBatch)
	for j := range cs {
		cs[j] = t.concept(k, j)
		c := &cs[j]
		as = append(as, Association{Source: c.Attributes["agent_id"], Target: c.ID, Type: "concerns", Confidence: 1, Time: c.Time},
			Association{Source: c.ID, Target: fastEventID(k*ingestBatch + j - 1), Type: "caused_by", Confidence: 0.5, Time: c.Time})
	}
	return cs, as
}

// request is batch k as a LearnBatch request.
func (t *ingestTemplates) request(k int) *gridpb.LearnBatchRequest {
	cs, as := t.batch(k)
	return toProtoBatch(cs, as)
}

// ceilingWriter fills pebble batches with the keys and values the store writes for
// batch k: the concept, time, attribute and association keys and values made with
// the store's own encoders, then the text index's keys and values of a real write
// (from one template, with the batch's segment), then the counters. Each table's keys
// come in order, as the store adds them. None of the store's work (existence probes,
// tokenizing, sorting) is done, and what can be is done once, in advance: the order
// of each template's attribute and association keys.
type ceilingWriter struct {
	t    *ingestTemplates
	text []textEntry
	// per template batch: its concepts by the value of each attribute (aOrder[p]),
	// and by agent (oOrder)
	aOrder [][][]int
	oOrder [][]int
	bufs   sync.Pool // of *ceilingBufs
}

type textEntry struct{ key, val []byte }

type ceilingBufs struct {
	key, val []byte
	ids      []string
}

func newCeilingWriter(t *ingestTemplates) *ceilingWriter {
	cw := &ceilingWriter{t: t}
	seg := new(textSegment)
	for j := range t.batches[0] {
		seg.add(&t.batches[0][j])
	}
	b := new(pebble.Batch)
	seg.write(b, 0)
	for r := b.Reader(); ; {
		_, k, v, ok, err := r.Next()
		if err != nil || !ok {
			break
		}
		cw.text = append(cw.text, textEntry{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	for _, cs := range t.batches {
		var byAttr [][]int
		for p := range cs[0].pairs {
			byAttr = append(byAttr, byGroup(len(cs), func(i int) string { return cs[i].pairs[p].value }))
		}
		cw.aOrder = append(cw.aOrder, byAttr)
		cw.oOrder = append(cw.oOrder, byGroup(len(cs), func(i int) string { return cs[i].pairs[0].value }))
		if cs[0].pairs[0].name != "agent_id" {
			panic("events' first attribute is not agent_id")
		}
	}
	return cw
}

// byGroup returns 0..n-1 by group (in the order of the groups' names), each group's
// in increasing order.
func byGroup(n int, group func(i int) string) []int {
	members := map[string][]int{}
	for i := 0; i < n; i++ {
		g := group(i)
		members[g] = append(members[g], i)
	}
	names := make([]string, 0, len(members))
	for g := range members {
		names = append(names, g)
	}
	slices.Sort(names)
	var order []int
	for _, g := range names {
		order = append(order, members[g]...)
	}
	return order
}

func (cw *ceilingWriter) fill(b *pebble.Batch, k int) {
	bufs, _ := cw.bufs.Get().(*ceilingBufs)
	if bufs == nil {
		bufs = new(ceilingBufs)
	}
	defer cw.bufs.Put(bufs)
	tc := cw.t.batches[k%len(cw.t.batches)]
	base := k * ingestBatch
	// ids[j+1] is concept j's, ids[0] the one before the batch's first.
	ids := bufs.ids[:0]
	for i := base - 1; i < base+len(tc); i++ {
		ids = append(ids, fastEventID(i))
	}
	bufs.ids = ids
	at := func(j int) int64 { return epoch + int64(base+j)*int64(ingestStep) }
	set := func(key, val []byte) {
		_ = b.Set(key, val, nil)
		bufs.key, bufs.val = key[:0], val[:0]
	}
	for j := range tc {
		c := tc[j]
		c.Time = at(j)
		val := appendConceptHeader(bufs.val, &c)
		val = appendAttributePairs(val, c.pairs)
		set(conceptKey(bufs.key, ids[j+1]), append(val, c.Content...))
	}
	for j := range tc {
		set(timeKey(bufs.key, at(j), ids[j+1]), appendAttributePairs(bufs.val, tc[j].pairs))
	}
	for p, order := range cw.aOrder[k%len(cw.t.batches)] {
		for _, j := range order {
			set(attrKey(bufs.key, tc[j].pairs[p].name, tc[j].pairs[p].value, at(j), ids[j+1]), nil)
		}
	}
	// j's associations: "concerns" from its agent, "caused_by" to j-1.
	edge := func(tag byte, j int, concerns bool) {
		a := Association{Source: ids[j+1], Target: ids[j], Type: "caused_by", Confidence: 0.5, Time: at(j)}
		if concerns {
			a = Association{Source: tc[j].pairs[0].value, Target: ids[j+1], Type: "concerns", Confidence: 1, Time: at(j)}
		}
		from, to := a.Source, a.Target
		if tag == tagIn {
			from, to = to, from
		}
		set(edgeKey(bufs.key, tag, from, a.Type, to), appendAssociationValue(bufs.val, &a))
	}
	// o keys: "concerns" from agents (agent-... < event-...), then "caused_by".
	for _, j := range cw.oOrder[k%len(cw.t.batches)] {
		edge(tagOut, j, true)
	}
	for j := range tc {
		edge(tagOut, j, false)
	}
	// i keys, by target then type: j-1's "caused_by" (from j), then its "concerns".
	for j := range tc {
		edge(tagIn, j, false)
		if j > 0 {
			edge(tagIn, j-1, true)
		}
	}
	edge(tagIn, len(tc)-1, true)
	for _, e := range cw.text {
		key := append(bufs.key, e.key...)
		binary.BigEndian.PutUint64(key[len(key)-8:], uint64(k)+1)
		set(key, e.val)
	}
	for _, name := range []string{counterTokens, counterConcepts, counterAssociations} {
		_ = b.Merge(counterKey(name), encodeCounter(1), nil)
	}
}
