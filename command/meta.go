package command

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// Meta carries what every command shares: the UI, and for client commands the
// -address and -json flags.
type Meta struct {
	Ui cli.Ui

	address string
	json    bool
	tls     api.TLSConfig // -ca-cert, -client-cert, -client-key (tls_flags.go)
	token   string
}

// clientFlags returns a flag set with -address and -json, for commands that talk to the
// HTTP API. Parse errors are reported by the command, not by the flag package.
func (m *Meta) clientFlags(name string) *flag.FlagSet {
	fs := m.flagSet(name)
	fs.StringVar(&m.address, "address", "", "")
	fs.StringVar(&m.token, "token", "", "")
	fs.BoolVar(&m.json, "json", false, "")
	m.clientTLSFlags(fs)
	return fs
}

// flagSet returns an empty flag set whose usage output is silenced: commands print
// their own Help().
func (m *Meta) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// client builds an API client from -address, then GRID_ADDR, then the default, with
// the token of -token, else GRID_TOKEN.
func (m *Meta) client() (*api.Client, error) {
	return api.NewClient(m.apiConfig())
}

// fail prints one error line to stderr and returns the exit code for failures.
func (m *Meta) fail(format string, args ...any) int {
	m.Ui.Error("Error: " + fmt.Sprintf(format, args...))
	return 1
}

// usageError reports bad flags or arguments: exit code 1 and a pointer to -help.
func (m *Meta) usageError(cmd string, err error) int {
	m.Ui.Error(fmt.Sprintf("Error: %v\nRun 'grid %s -help' for usage.", err, cmd))
	return 1
}

// printJSON writes v as indented JSON to stdout.
func (m *Meta) printJSON(v any) int {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // the output is JSON, never HTML: keep & and < as they are
	if err := enc.Encode(v); err != nil {
		return m.fail("encode JSON: %v", err)
	}
	m.Ui.Output(strings.TrimSuffix(b.String(), "\n"))
	return 0
}

// show runs the one request of a command that reads, and shows its answer: as JSON
// with -json, else as text writes it. A failure says what failed ("get status: …").
// get takes the client first, so that a method expression of api.Client fits:
// show(&c.Meta, "get status", (*api.Client).Status, c.printStatus).
func show[T any](m *Meta, what string, get func(*api.Client, context.Context) (T, error), text func(T)) int {
	client, err := m.client()
	if err != nil {
		return m.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	v, err := get(client, ctx)
	if err != nil {
		return m.fail("%s: %v", what, err)
	}
	if m.json {
		return m.printJSON(v)
	}
	text(v)
	return 0
}

// listOf makes get's nil list an empty one, so that -json prints [] and not null.
func listOf[T any](get func(*api.Client, context.Context) ([]T, error)) func(*api.Client, context.Context) ([]T, error) {
	return func(c *api.Client, ctx context.Context) ([]T, error) {
		l, err := get(c, ctx)
		if l == nil {
			l = []T{}
		}
		return l, err
	}
}

// printTable writes rows under header, aligned in columns.
func (m *Meta) printTable(header []string, rows [][]string) {
	var b strings.Builder
	writeTable(&b, header, rows)
	m.Ui.Output(strings.TrimRight(b.String(), "\n"))
}

// writeTable writes rows under header (none when nil), aligned in columns, with
// no padding left at the ends of lines.
func writeTable(w io.Writer, header []string, rows [][]string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		nl := strings.HasSuffix(line, "\n")
		line = strings.TrimRight(line, " \n")
		if nl {
			line += "\n"
		}
		io.WriteString(w, line)
	}
}

// clientHelp is the help text of the flags every client command takes.
const clientHelp = `
HTTP API Options:

  -address=<addr>
    The address of a Grid server's HTTP API. Overrides GRID_ADDR.
    Default: http://127.0.0.1:7000 (https:// with a CA certificate)` + clientTLSHelp + `

  -token=<token>
    The ACL token (its secret ID) sent as X-Grid-Token, when the servers run
    with -acl-enabled. Overrides GRID_TOKEN.

Output Options:

  -json
    Print the output as JSON.`
