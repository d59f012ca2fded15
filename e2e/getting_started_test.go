//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sutragrid/grid/internal/gridtest"
)

// The getting-started page is run as written, so that it cannot drift from what Grid
// does. The page marks what the test does with HTML comments, which Markdown does not
// show:
//
//	<!-- test: run -->              the next ```sh block: each line is a command, run
//	                                in one shell session in order; each must exit 0
//	<!-- test: run until="TEXT" --> the same, and the block's last command is run again
//	                                until its output holds TEXT (the page waits too);
//	                                until-gone="TEXT": until it does not
//	<!-- test: terminal -->         the next ```sh block: each line is a long-running
//	                                process in a terminal of its own
//	<!-- test: output -->           the next block is the output of the command before
//	                                it: its first line and its number of lines must
//	                                match, once IDs, numbers and spacing are masked
//	<!-- test: ctrl-c ARG -->       Ctrl-C in the terminal whose -bind or -name is ARG
//	                                (expanded by the shell); it must exit 0
//
// Blocks without a mark are illustrative and not run. The page's /tmp/grid is a
// temporary directory here, and its example node ID the node the test spawned.
const gettingStartedPage = "../website/getting-started.md"

// pageStep is one thing the page has the reader do.
type pageStep struct {
	kind string // run, terminal, output, ctrl-c
	arg  string // ctrl-c: its argument
	// until and untilGone: run's last command is retried until its output holds
	// until and does not hold untilGone.
	until, untilGone string
	lines            []string
	line             int // in the page, for messages
}

var (
	directive = regexp.MustCompile(`^<!-- test: ([a-z-]+)(?: (.*?))? -->$`)
	attribute = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
)

// readPageSteps extracts the marked steps of a Markdown page.
func readPageSteps(t *testing.T, path string) []pageStep {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		steps   []pageStep
		pending *pageStep // a mark waiting for its block
		inBlock bool
		cur     *pageStep
	)
	for i, line := range strings.Split(string(raw), "\n") {
		n := i + 1
		switch {
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
			if cur != nil {
				steps = append(steps, *cur)
				cur = nil
			}
		case inBlock:
			if cur != nil && (cur.kind == "output" || strings.TrimSpace(line) != "") {
				cur.lines = append(cur.lines, line)
			}
		case strings.HasPrefix(line, "```"):
			inBlock = true
			if pending != nil {
				if pending.kind != "output" && line != "```sh" {
					t.Fatalf("%s:%d: a %q mark needs a ```sh block", path, n, pending.kind)
				}
				cur, pending = pending, nil
			}
		default:
			m := directive.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if pending != nil {
				t.Fatalf("%s:%d: mark %q has no block", path, pending.line, pending.kind)
			}
			step := pageStep{kind: m[1], line: n}
			switch step.kind {
			case "run", "terminal", "output":
				for _, a := range attribute.FindAllStringSubmatch(m[2], -1) {
					switch a[1] {
					case "until":
						step.until = a[2]
					case "until-gone":
						step.untilGone = a[2]
					default:
						t.Fatalf("%s:%d: unknown attribute %q", path, n, a[1])
					}
				}
				pending = &step
			case "ctrl-c":
				step.arg = m[2]
				steps = append(steps, step)
			default:
				t.Fatalf("%s:%d: unknown mark %q", path, n, step.kind)
			}
		}
	}
	return steps
}

func TestGettingStartedPage(t *testing.T) {
	steps := readPageSteps(t, gettingStartedPage)
	kinds := map[string]int{}
	for _, s := range steps {
		kinds[s.kind]++
	}
	for _, k := range []string{"run", "terminal", "output", "ctrl-c"} {
		if kinds[k] == 0 {
			t.Fatalf("%s has no %q step: are its marks intact?", gettingStartedPage, k)
		}
	}
	home := t.TempDir()     // the reader's checkout: bin/grid
	gridDir := t.TempDir()  // the page's /tmp/grid
	termLogs := t.TempDir() // the terminals' output
	if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(gridBin, filepath.Join(home, "bin", "grid")); err != nil {
		t.Fatal(err)
	}
	sh := startShell(t, home)
	defer killPageProcesses(t, gridDir)

	hostname, _ := os.Hostname()
	subst := map[string]string{"/tmp/grid": gridDir}
	// toPage turns what the test sees back into what the page shows.
	toPage := func(s string) string {
		for page, here := range subst {
			s = strings.ReplaceAll(s, here, page)
		}
		return strings.ReplaceAll(s, hostname+"-127.0.0.", "laptop-127.0.0.")
	}
	fromPage := func(s string) string {
		for page, here := range subst {
			s = strings.ReplaceAll(s, page, here)
		}
		return s
	}

	var lastOut string // the output of the last command run
	terminals := map[int]string{}
	for _, step := range steps {
		at := fmt.Sprintf("%s:%d", filepath.Base(gettingStartedPage), step.line)
		switch step.kind {
		case "run":
			for i, line := range step.lines {
				cmd := fromPage(line)
				var until, untilGone string
				if i == len(step.lines)-1 {
					until, untilGone = step.until, step.untilGone
				}
				lastOut = runPageCommand(t, sh, at, cmd, until, untilGone)
				checkKeyOutput(t, at, cmd, lastOut)
				if m := spawnedNode.FindStringSubmatch(lastOut); m != nil {
					subst["node-3fcaac10"] = m[1]
				}
			}
		case "terminal":
			for _, line := range step.lines {
				log := filepath.Join(termLogs, fmt.Sprintf("terminal-%d.log", len(terminals)+1))
				out, code := sh.run(t, fromPage(line)+" >"+log+" 2>&1 &\necho $!", 10*time.Second)
				pid, err := strconv.Atoi(strings.TrimSpace(out))
				if code != 0 || err != nil {
					t.Fatalf("%s: start %q: %q, exit %d", at, line, out, code)
				}
				terminals[pid] = log
				t.Cleanup(func() {
					if t.Failed() {
						b, _ := os.ReadFile(log)
						t.Logf("terminal %q (pid %d):\n%s", line, pid, b)
					}
				})
				// The reader sees it start before going on in the next terminal.
				gridtest.Poller{Interval: 100 * time.Millisecond}.WaitFor(t, 30*time.Second, at+": "+line+" to start", func() error {
					b, _ := os.ReadFile(log)
					if regexp.MustCompile(`(server|agent) started`).Match(b) {
						return nil
					}
					if !running(pid) {
						return fmt.Errorf("it exited:\n%s", b)
					}
					return fmt.Errorf("not yet: %s", b)
				})
			}
		case "output":
			checkPageOutput(t, at, step.lines, toPage(lastOut))
		case "ctrl-c":
			arg, code := sh.run(t, `printf '%s' `+step.arg, 10*time.Second)
			if code != 0 || arg == "" {
				t.Fatalf("%s: ctrl-c %s: expands to %q", at, step.arg, arg)
			}
			pid := terminalOf(t, at, terminals, arg)
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Fatalf("%s: SIGINT to %d: %v", at, pid, err)
			}
			// The shell started it, so the shell has its exit status.
			out, code := sh.run(t, fmt.Sprintf("wait %d", pid), 90*time.Second)
			if code != 0 {
				b, _ := os.ReadFile(terminals[pid])
				t.Fatalf("%s: Ctrl-C in the terminal of %s: exit %d %s\n%s", at, arg, code, out, b)
			}
			delete(terminals, pid)
		}
	}
}

// spawnedNode finds the node that `grid node spawn` started.
var spawnedNode = regexp.MustCompile(`Node (node-[0-9a-f]{8}) is running`)

// runPageCommand runs one command of the page, which must exit 0; with until or
// untilGone, it is run again until its output holds until and lacks untilGone.
func runPageCommand(t *testing.T, sh *shell, at, cmd, until, untilGone string) string {
	t.Helper()
	var out string
	var code int
	gridtest.Poller{Interval: 250 * time.Millisecond}.WaitFor(t, 60*time.Second, at+": "+cmd, func() error {
		out, code = sh.run(t, cmd, 60*time.Second)
		switch {
		case code != 0:
			if until == "" && untilGone == "" {
				t.Fatalf("%s: %s: exit %d:\n%s", at, cmd, code, out)
			}
			return fmt.Errorf("exit %d: %s", code, out)
		case !strings.Contains(out, until):
			return fmt.Errorf("output lacks %q:\n%s", until, out)
		case untilGone != "" && strings.Contains(out, untilGone):
			return fmt.Errorf("output still holds %q:\n%s", untilGone, out)
		}
		return nil
	})
	return out
}

// checkKeyOutput checks what the page says about the cluster beyond what its output
// blocks show: every list of peers has three voters and one leader.
func checkKeyOutput(t *testing.T, at, cmd, out string) {
	t.Helper()
	if !strings.HasPrefix(cmd, "grid operator raft list-peers") || strings.Contains(cmd, "|") {
		return
	}
	voters, leaders := 0, 0
	for _, row := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(row)
		if len(f) == 6 && f[4] == "true" {
			voters++
		}
		if len(f) == 6 && f[3] == "leader" {
			leaders++
		}
	}
	if voters != 3 || leaders != 1 {
		t.Errorf("%s: %s: %d voters and %d leaders, want 3 and 1:\n%s", at, cmd, voters, leaders, out)
	}
}

var (
	uuidPattern   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	nodeIDPattern = regexp.MustCompile(`node-[0-9a-f]{8}`)
	digits        = regexp.MustCompile(`[0-9]+`)
)

// maskOutput hides what differs from run to run: IDs, numbers, spacing.
func maskOutput(s string) string {
	s = uuidPattern.ReplaceAllString(s, "UUID")
	s = nodeIDPattern.ReplaceAllString(s, "node-ID")
	s = digits.ReplaceAllString(s, "9")
	return strings.Join(strings.Fields(s), " ")
}

// checkPageOutput compares the output the page shows with what the command printed:
// the first line (a table's header, or the one line) and the number of lines.
func checkPageOutput(t *testing.T, at string, page []string, got string) {
	t.Helper()
	gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	for len(page) > 0 && page[len(page)-1] == "" {
		page = page[:len(page)-1]
	}
	if len(page) == 0 {
		t.Fatalf("%s: empty output block", at)
	}
	if maskOutput(gotLines[0]) != maskOutput(page[0]) || len(gotLines) != len(page) {
		t.Errorf("%s: the page shows\n%s\nbut the command printed\n%s", at, strings.Join(page, "\n"), got)
	}
}

// terminalOf returns the terminal process whose -bind or -name is arg.
func terminalOf(t *testing.T, at string, terminals map[int]string, arg string) int {
	t.Helper()
	for pid := range terminals {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(raw), "\x00") {
			if a == "-bind="+arg || a == "-name="+arg {
				return pid
			}
		}
	}
	t.Fatalf("%s: no terminal runs with -bind or -name %s", at, arg)
	return 0
}

// running reports whether pid runs (and is not a zombie waiting for the shell).
func running(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(raw), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// shell is one bash session, like the reader's terminal: variables and exports carry
// from one command to the next.
type shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

const shellSentinel = "__grid_page_exit_"

func startShell(t *testing.T, dir string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	// The reader's environment, without a GRID_ADDR of the developer's.
	cmd.Env = append(os.Environ(), "GRID_ADDR=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sh := &shell{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		defer close(sh.lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sh.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return sh
}

// run runs a command line in the session and returns its output (stdout and stderr,
// in order) and exit code. A command that takes longer than timeout fails the test.
func (sh *shell) run(t *testing.T, line string, timeout time.Duration) (string, int) {
	t.Helper()
	// Commands read nothing: the session's input is the test's.
	fmt.Fprintf(sh.stdin, "{\n%s\n} </dev/null; printf '\\n%s%%d\\n' $?\n", line, shellSentinel)
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-sh.lines:
			if !ok {
				t.Fatalf("the shell exited during %q:\n%s", line, strings.Join(out, "\n"))
			}
			if code, ok := strings.CutPrefix(l, shellSentinel); ok {
				c, _ := strconv.Atoi(code)
				// The sentinel starts on a new line: drop the empty one that
				// made sure of it.
				if n := len(out); n > 0 && out[n-1] == "" {
					out = out[:n-1]
				}
				return strings.Join(out, "\n"), c
			}
			out = append(out, l)
		case <-deadline:
			t.Fatalf("%q did not finish within %s:\n%s", line, timeout, strings.Join(out, "\n"))
		}
	}
}

// killPageProcesses kills what the page's commands left running: the terminals' grid
// processes, and storage nodes, found by their data directories under dir.
func killPageProcesses(t *testing.T, dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(raw), dir) {
			continue
		}
		t.Logf("killing pid %d, left running: %s", pid, strings.ReplaceAll(string(raw), "\x00", " "))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
