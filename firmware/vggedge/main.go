package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
)

// version is set at release time with -ldflags "-X main.version=…".
var version = "dev"

// Exit statuses.
const (
	exitOK       = 0
	exitNotFit   = 1
	exitBadInput = 2
)

type command struct {
	name, usage string
	run         func(args []string, stdout io.Writer) (int, error)
}

var commands []command

func init() {
	commands = []command{
		{"run", "classify frames from a camera, pipe, files or idx data, live", runRun},
		{"fleet", "show the devices publishing to an MQTT broker: online, fps, latency, last event", runFleet},
		{"check", "check a model against a board's memory and latency budget", runCheck},
		{"summary", "print a model as PyTorch does, with per-layer params and MACs", runSummary},
		{"boards", "list the board profiles and detect this board", runBoards},
		{"quantize", "turn float weights into a calibrated int8 model file", runQuantize},
		{"reduce", "slim a model with 1x1 channel-reduction layers fitted on calibration data", runReduce},
		{"eval", "measure a model's top-1 and top-5 accuracy on labelled images", runEval},
		{"classify", "classify image files, folders or globs once: top-k per file (and accuracy for class folders)", runClassify},
		{"info", "print a model file's summary, input spec and provenance", runInfo},
		{"train", "train a small float model on idx data (the digits demo)", runTrain},
		{"bench", "time int8 inference: median, p90, per layer, peak RSS, conditions", runBench},
		{"version", "print the version", func(_ []string, w io.Writer) (int, error) {
			fmt.Fprintln(w, "vggedge", versionString())
			return exitOK, nil
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-v" || args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			code, err := c.run(args[1:], stdout)
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			if err != nil {
				fmt.Fprintf(stderr, "vggedge %s: %s\n", c.name, oneLine(err))
				if code == exitOK {
					code = exitBadInput
				}
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "vggedge: unknown command %q (commands: %s)\n", args[0], commandNames())
	return exitBadInput
}

// versionString is the release version, or for other builds what the Go
// toolchain recorded: the module version (go install …@vX) or the VCS
// revision the binary was built from.
func versionString() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return "dev (" + rev + ")"
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "vggedge %s: int8 VGG classification and budget checks for edge boards\n\nCommands:\n", versionString())
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintf(w, "\nRun 'vggedge COMMAND -h' for its flags.\n")
}

func commandNames() string {
	var ns []string
	for _, c := range commands {
		ns = append(ns, c.name)
	}
	return strings.Join(ns, ", ")
}

// oneLine keeps error messages to one line on stderr, with the password
// of any URL in them (a broker's, an rtsp:// camera's) redacted and any
// control character (a broker's reason string, a file name) escaped.
func oneLine(err error) string {
	return termSafe(redactURLs(strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")), 8192)
}

// urlUserinfo matches the user:password@ of a URL inside any text.
// (userinfo characters of RFC 3986 only: "mqtt://[user:pass@]host" in a
// usage text is no URL).
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=-]*):[A-Za-z0-9._~%!$&'()*+,;=:@-]*@`)

// redactURLs replaces the password of every scheme://user:password@ in s
// by xxxxx, as url.URL.Redacted does: for log lines and errors that quote
// a source URI or a command line.
func redactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlUserinfo.ReplaceAllString(s, "${1}:xxxxx@")
}

// newFlags makes a FlagSet that reports errors through the returned error
// (one line) instead of printing usage, and prints usage for -h.
func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: vggedge %s [flags]\n", name)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses and rejects stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	// The flag package prints the whole usage on every bad value; a bad
	// value deserves one line, so usage is printed here for -h only.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return err
		}
		return fmt.Errorf("%v (see vggedge %s -h)", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before arguments; see vggedge %s -h)", fs.Arg(0), fs.Name())
	}
	return nil
}
