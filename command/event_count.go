package command

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/events"
)

// EventCountCommand is `grid event count`.
type EventCountCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *EventCountCommand) Synopsis() string {
	return "Count events, grouped by type, agent or node and by time"
}

// Help implements cli.Command.
func (c *EventCountCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid event count [options]

  Count the cluster's events that match the same filters as 'grid event list',
  grouped by type, severity, agent and/or node, and, with -bucket, by time.
  Events still waiting in the outbox are counted too, each event once.

  The table has a column for each grouping, a Bucket column with -bucket, and
  the Count; with -bucket and -since every bucket of the range is listed, the
  empty ones with 0. With -json the output is the answer of
  GET /v1/events/aggregate: groups (values, bucket, count), total and
  truncated.

  Crashes per agent today:

      $ grid event count -type=node_crashed -by=agent -since=24h

  Warnings and worse per hour, by type, the 3 largest types:

      $ grid event count -severity=warning -by=type -bucket=1h -since=24h -top=3

Count Options:

  -by=<what>[,<what>...]
    Count by these: type, severity, agent, node. Default: one total.

  -bucket=<size>
    Count by time too, in buckets of 1m, 5m, 10m, 15m, 30m, 1h, 3h, 6h, 12h,
    1d or 7d (UTC, aligned to the Unix epoch).

  -top=<n>
    Keep only the n largest groups (by their count over all buckets).

  -agent, -node, -entity, -type, -severity, -since, -until
    Count only the events that these select, as for 'grid event list'.
` + clientHelp)
}

// Run implements cli.Command.
func (c *EventCountCommand) Run(args []string) int {
	const name = "event count"
	var (
		f          eventFilterFlags
		by, bucket string
		top        int
	)
	fs := c.clientFlags(name)
	f.register(fs)
	fs.StringVar(&by, "by", "", "")
	fs.StringVar(&bucket, "bucket", "", "")
	fs.IntVar(&top, "top", 0, "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	types, err := f.check()
	if err != nil {
		return c.usageError(name, err)
	}
	groupBy := splitComma(by)
	for _, g := range groupBy {
		if !slices.Contains([]string{"type", "severity", "agent", "node"}, g) {
			return c.usageError(name, fmt.Errorf("-by takes type, severity, agent and node, not %q", g))
		}
	}
	if bucket != "" && !slices.Contains(bucketSizes, bucket) {
		return c.usageError(name, fmt.Errorf("-bucket must be one of %s, not %q", strings.Join(bucketSizes, ", "), bucket))
	}
	if top < 0 {
		return c.usageError(name, fmt.Errorf("-top must not be negative, not %d", top))
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	counts, err := client.EventCounts(ctx, api.EventCountQuery{
		Agents: splitComma(f.agent), Nodes: splitComma(f.node), Entities: splitComma(f.entity), Types: types,
		Since: f.since, Until: f.until, GroupBy: groupBy, Bucket: bucket, Top: top,
	})
	if err != nil {
		return c.fail("count events: %v", err)
	}
	c.warnPartial(counts.Partial)
	if c.json {
		return c.printJSON(counts)
	}
	c.printTable(countTable(groupBy, bucket != "", counts))
	if counts.Truncated {
		c.progress(fmt.Sprintf("More groups exist; the total counts them all (%d)", counts.Total))
	}
	return 0
}

// bucketSizes are the time buckets the servers count by.
var bucketSizes = []string{"1m", "5m", "10m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d"}

// countTable lays counts out as a table: a column per grouping, the bucket, the count.
func countTable(groupBy []string, buckets bool, counts *api.EventCounts) ([]string, [][]string) {
	var header []string
	for _, g := range groupBy {
		header = append(header, strings.ToUpper(g[:1])+g[1:])
	}
	if buckets {
		header = append(header, "Bucket")
	}
	header = append(header, "Count")
	rows := make([][]string, 0, len(counts.Groups))
	for _, g := range counts.Groups {
		var row []string
		for _, by := range groupBy {
			v := g.Values[by]
			if v == "" {
				v = "-"
			}
			row = append(row, v)
		}
		if buckets && g.Bucket != nil {
			row = append(row, g.Bucket.UTC().Format(time.RFC3339))
		}
		rows = append(rows, append(row, strconv.FormatUint(g.Count, 10)))
	}
	if len(groupBy) == 0 && !buckets {
		rows = [][]string{{strconv.FormatUint(counts.Total, 10)}}
	}
	return header, rows
}

// eventFilterFlags are the filters that 'grid event list' and 'grid event count'
// share.
type eventFilterFlags struct {
	agent, node, entity, typ, severity, since, until string
}

func (f *eventFilterFlags) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&f.agent, "agent", "", "")
	fs.StringVar(&f.node, "node", "", "")
	fs.StringVar(&f.entity, "entity", "", "")
	fs.StringVar(&f.typ, "type", "", "")
	fs.StringVar(&f.severity, "severity", "", "")
	fs.StringVar(&f.since, "since", "", "")
	fs.StringVar(&f.until, "until", "", "")
}

// check validates the flags and returns the event types they select: those of
// -type, of at least -severity (both: those of -type of at least -severity).
func (f *eventFilterFlags) check() ([]events.Type, error) {
	// The servers refuse this too; saying so here points at -help.
	if f.entity != "" && (f.agent != "" || f.node != "") {
		return nil, errors.New("-entity cannot be combined with -agent or -node: name every agent and node in -entity")
	}
	types, err := events.ParseTypes(f.typ)
	if err != nil {
		return nil, fmt.Errorf("-type: %w", err)
	}
	for _, t := range []struct{ name, v string }{{"since", f.since}, {"until", f.until}} {
		if err := parseEventTimeFlag(t.name, t.v); err != nil {
			return nil, err
		}
	}
	if f.severity == "" {
		return types, nil
	}
	min, err := events.ParseSeverity(f.severity)
	if err != nil {
		return nil, fmt.Errorf("-severity: %w", err)
	}
	severe := events.TypesAtLeast(min)
	if len(types) == 0 {
		return severe, nil
	}
	types = slices.DeleteFunc(types, func(t events.Type) bool { return !slices.Contains(severe, t) })
	if len(types) == 0 {
		return nil, fmt.Errorf("no event type of -type=%s is of severity %s or more", f.typ, min)
	}
	return types, nil
}
