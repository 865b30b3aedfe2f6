package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/output"
	"go.yaml.in/yaml/v3"
)

// writeConfig writes a config file into a test directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vggedge.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Malformed config files, through the real command: exit 2 and one line
// "FILE: line N: key: message" (or "FILE: line N: message" where no key
// applies). {idx} is the GoMNIST test set, so that checks that come after
// opening the source are reached.
func TestConfigErrors(t *testing.T) {
	idx := "idx:" + gomnistDir(t)
	for _, tt := range []struct {
		name, yaml string
		want       string // after "FILE: "
	}{
		// Not YAML.
		{"unclosed list", "model: digits\nsource: [unclosed\nthreads: 1\n", `line 2: source: did not find expected ',' or ']' (not valid YAML)`},
		{"tab indent", "model: digits\ngpio:\n\tpin: 17\n", `line 3: gpio: found character that cannot start any token (not valid YAML)`},
		{"bad indent", "gpio:\n  pin: 17\n when: 7\n", `line 3: gpio.when: did not find expected key (not valid YAML)`},
		{"two colons", "threads: 1: 2\n", `line 1: threads: mapping values are not allowed in this context (not valid YAML)`},
		{"open quote", "model: \"digits\n", `line 1: model: found unexpected end of stream (not valid YAML)`},
		{"two documents", "threads: 1\n---\nthreads: 2\n", `line 2: a second YAML document (---); put every key in one`},
		{"a list", "- model\n- digits\n", `line 1: want a mapping of keys (model:, source:, output:, gpio:, …), got a list`},
		{"a scalar", "digits\n", `line 1: want a mapping of keys`},
		// Unknown keys.
		{"unknown top", "model: digits\nthread: 2\n", `line 2: thread: unknown key (keys: format, fps, gpio:, http, http_allow_host, max_frames, model, mqtt:, output, quiet, size, snapshot:, source, source_timeout, stats_every, threads, topk)`},
		{"unknown in group", "gpio:\n  pin: 17\n  pinn: 18\n", `line 3: gpio.pinn: unknown key (gpio has hold, off_score, on_score, pin, when)`},
		{"unknown group", "camera:\n  fps: 5\n", `line 1: camera: unknown key`},
		{"flag name not key", "max-frames: 3\n", `line 1: max-frames: unknown key`},
		{"config in config", "config: /etc/other.yaml\n", `line 1: config: unknown key`},
		{"duplicate", "threads: 1\nmodel: digits\nthreads: 2\n", `line 3: threads: given twice (first on line 1)`},
		{"duplicate in group", "gpio:\n  hold: 1s\n  hold: 2s\n", `line 3: gpio.hold: given twice (first on line 2)`},
		// Wrong types.
		{"int word", "threads: many\n", `line 1: threads: want a whole number, got "many"`},
		{"int float", "topk: 2.5\n", `line 1: topk: want a whole number, got "2.5"`},
		{"float word", "fps: fast\n", `line 1: fps: want a number, got "fast"`},
		{"bool yes", "quiet: yes\n", `line 1: quiet: want true or false, got "yes"`},
		{"duration unitless", "gpio:\n  hold: 5\n", `line 2: gpio.hold: want a duration such as 500ms, 10s or 2m, got "5"`},
		{"duration word", "stats_every: often\n", `line 1: stats_every: want a duration such as 500ms, 10s or 2m, got "often"`},
		{"group scalar", "gpio: 17\n", `line 1: gpio: want a mapping of gpio keys (hold, off_score, on_score, pin, when), got "17"`},
		{"list for string", "model: [digits]\n", `line 1: model: want a string, got a list`},
		{"mapping for list", "output:\n  jsonl: x\n", `line 2: output: want a list of strings, got a mapping`},
		{"nested list item", "output:\n  - [jsonl]\n", `line 2: output: want a list of strings, got an item that is a list`},
		{"no value", "model:\n", `line 1: model: no value; remove the key for the default, or give a string`},
		{"empty output", "output: []\n", `line 1: output: empty list; remove the key for the default`},
		{"comma in host item", "http_allow_host: [\"a.example,b.example\"]\n", `line 1: http_allow_host: item "a.example,b.example" holds a comma; give one name per item`},
		{"empty when item", "gpio:\n  when: [7, \" \"]\n", `line 2: gpio.when: an empty item; give a label`},
		{"int overflow", "threads: 99999999999999999999\n", `line 1: threads: want a whole number, got "99999999999999999999"`}, // YAML resolves it as a float
		// Values out of range, found by the same checks as the flags'.
		{"threads zero", "threads: 0\n", `line 1: threads: 0: want 1..256`},
		{"fps high", "model: digits\nfps: 5000\n", `line 2: fps: 5000: want 0..1000`},
		{"max frames", "max_frames: -1\n", `line 1: max_frames: -1: want ≥ 0`},
		{"size", "size: 640\n", `line 1: size: "640": want WxH`},
		{"format", "format: H264\n", `line 1: format: "H264": want one of YUYV`},
		{"output", "output: [csv]\n", `line 1: output: "csv": want jsonl, jsonl:PATH`},
		{"output twice", "output: [jsonl, jsonl]\n", `line 1: output: jsonl given twice`},
		{"topk", "source: {idx}\ntopk: 11\n", `line 2: topk: 11: want 1..10 (model digits has 10 classes)`},
		{"model", "model: nosuchmodel\n", `line 1: model: model nosuchmodel: not an embedded model`},
		{"source", "source: idx:/nonexistent\n", `line 1: source: `},
		{"on score", "source: {idx}\ngpio:\n  pin: 17\n  when: [7]\n  on_score: 1.5\n", `line 5: gpio.on_score: 1.5: want a probability in (0, 1]`},
		{"off above on", "source: {idx}\ngpio:\n  pin: 17\n  when: 7\n  on_score: 0.5\n  off_score: 0.6\n", `line 6: gpio.off_score: 0.6: want 0 ≤ off-score < on-score (0.5)`},
		{"when label", "source: {idx}\ngpio:\n  pin: 17\n  when: [cat]\n", `line 4: gpio.when: cat: not a label of the model`},
		{"when item is one label", "source: {idx}\ngpio:\n  pin: 17\n  when: [\"3,4\"]\n", `line 4: gpio.when: 3,4: not a label of the model (labels: 0, 1, 2`},
		{"snapshot when label", "source: {idx}\nsnapshot:\n  dir: /tmp/snaps\n  when: [seven]\n", `line 4: snapshot.when: seven: not a label of the model`},
		{"mqtt url", "mqtt:\n  url: http://broker.local\n", `line 2: mqtt.url: http://broker.local: scheme "http"`},
		{"mqtt device id", "mqtt:\n  url: mqtt://127.0.0.1:1\n  device_id: Porch Pi!\n", `line 3: mqtt.device_id: "Porch Pi!": want 1..64 of a-z, 0-9, _ and -`},
		{"mqtt queue", "mqtt:\n  url: mqtt://127.0.0.1:1\n  queue: 0\n", `line 3: mqtt.queue: 0: want 1..65536`},
		{"mqtt when label", "source: {idx}\nmqtt:\n  url: mqtt://127.0.0.1:1\n  when: [7, dog]\n", `line 4: mqtt.when: dog: not a label of the model`},
		{"snapshot files", "snapshot:\n  dir: /tmp/snaps\n  max_files: -1\n", `line 3: snapshot.max_files: -1: want ≥ 0`},
		{"no such pin", "source: {idx}\nthreads: 1\ngpio:\n  pin: GPIO99\n  when: [7, 3]\n", `line 4: gpio.pin: gpio GPIO99: no such pin on this board`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, strings.ReplaceAll(tt.yaml, "{idx}", idx))
			code, out, errOut := runCLI(t, "run", "--quiet", "--config", path) // quiet: run logs to the real stderr
			want := "vggedge run: " + path + ": " + tt.want
			if code != exitBadInput || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			if !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q\nwant one line starting %q", errOut, want)
			}
		})
	}
}

// The file is read with bounds: a missing file, a directory and a file
// far too big for a config are one-line errors.
func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("# padding\n", maxConfigBytes/10+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "none.yaml"), "--config: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory"},
		{dir, "--config: read " + dir + ": "},
		{big, "--config " + big + ": larger than 64 KiB"},
	} {
		code, _, errOut := runCLI(t, "run", "--config", tt.path)
		if code != exitBadInput || !strings.HasPrefix(errOut, "vggedge run: "+tt.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.path, code, errOut, tt.want)
		}
	}
}

// Flags given on the command line win over the file, a list flag
// included (the file's outputs are replaced, not added to); keys the
// command line did not give come from the file; an empty file and one of
// comments only are fine.
func TestConfigFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	fileOut := filepath.Join(dir, "from-file.jsonl")
	path := writeConfig(t, fmt.Sprintf("# a service config\nsource: idx:%s\nmax_frames: 50\ntopk: 2\nthreads: 1\nquiet: true\noutput:\n  - jsonl:%s\n",
		gomnistDir(t), fileOut))

	// The file alone.
	code, out, errOut := runLiveCLI(t, context.Background(), "--config", path)
	if code != exitOK || out != "" || errOut != "" {
		t.Fatalf("file alone: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	data, err := os.ReadFile(fileOut)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseJSONLines(t, string(data))
	if len(lines) != 50 || len(lines[0].Top) != 2 {
		t.Fatalf("file alone: %d lines with %d classes; want 50 with 2", len(lines), len(lines[0].Top))
	}

	// Flags on top: --max-frames and --output replace the file's, topk
	// still comes from the file.
	os.Remove(fileOut)
	code, out, errOut = runLiveCLI(t, context.Background(), "--config", path, "--max-frames", "7", "--output", "jsonl")
	if code != exitOK || errOut != "" {
		t.Fatalf("with flags: exit %d, stderr %q", code, errOut)
	}
	lines = parseJSONLines(t, out)
	if len(lines) != 7 || len(lines[0].Top) != 2 {
		t.Errorf("with flags: %d lines with %d classes; want 7 with 2", len(lines), len(lines[0].Top))
	}
	if _, err := os.Stat(fileOut); !os.IsNotExist(err) {
		t.Errorf("--output jsonl should replace the file's output, but %s was written (%v)", fileOut, err)
	}

	// A value the command line overrides is still checked.
	bad := writeConfig(t, "threads: many\n")
	if code, _, errOut := runCLI(t, "run", "--config", bad, "--threads", "1"); code != exitBadInput || !strings.Contains(errOut, "line 1: threads: want a whole number") {
		t.Errorf("overridden bad value: exit %d, stderr %q", code, errOut)
	}

	for _, text := range []string{"", "# nothing set\n", "---\n"} {
		empty := writeConfig(t, text)
		code, out, errOut := runLiveCLI(t, context.Background(), "--config", empty, "--source", "idx:"+gomnistDir(t), "--max-frames", "2", "--threads", "1", "--quiet")
		if code != exitOK || len(parseJSONLines(t, out)) != 2 {
			t.Errorf("config %q: exit %d, stderr %q", text, code, errOut)
		}
	}
}

// runFlagSet is run's FlagSet as runLive builds it.
func runFlagSet() *flag.FlagSet {
	var rf runFlags
	return rf.flagSet(io.Discard)
}

// Every flag of run has a YAML key (derived from its name, so a new flag
// has one at once), no two flags share a key, and the key reaches the flag:
// a file setting just that key to a value of the flag's type changes that
// flag and records its line. Then the shipped example and the README's
// example must name every key, so a new flag cannot be left undocumented.
func TestConfigEveryFlagHasKey(t *testing.T) {
	fs := runFlagSet()
	keys := map[string]string{} // key → flag
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		key := configKey(f.Name)
		if f.Name == "config" {
			if key != "" {
				t.Errorf("--config has key %q; a config file must not name another", key)
			}
			return
		}
		n++
		if !regexp.MustCompile(`^([a-z]+\.)?[a-z][a-z0-9_]*$`).MatchString(key) {
			t.Errorf("flag --%s: key %q is not [group.]snake_case", f.Name, key)
			return
		}
		if other, dup := keys[key]; dup {
			t.Errorf("flags --%s and --%s share the key %s", f.Name, other, key)
		}
		keys[key] = f.Name
		if g, _, grouped := strings.Cut(key, "."); grouped && !slices.Contains(configGroups, g) {
			t.Errorf("flag --%s: key %s is in an unknown group", f.Name, key)
		}
		if slices.Contains(configGroups, key) {
			t.Errorf("flag --%s: key %s is also a group's name", f.Name, key)
		}

		// Set that key alone, nested as the file would have it.
		val, want := sampleValue(t, f)
		doc := key + ": " + val + "\n"
		if g, leaf, ok := strings.Cut(key, "."); ok {
			doc = "# a comment first\n" + g + ":\n  " + leaf + ": " + val + "\n"
		}
		fresh := runFlagSet()
		cfg, err := applyConfig(fresh, "test.yaml", []byte(doc))
		if err != nil {
			t.Errorf("flag --%s: %q: %v", f.Name, doc, err)
			return
		}
		if got := fresh.Lookup(f.Name).Value.String(); got != want {
			t.Errorf("flag --%s: %q set it to %q, want %q", f.Name, doc, got, want)
		}
		wantLine := strings.Count(doc, "\n")
		if e := cfg.set[f.Name]; e.key != key || e.line != wantLine {
			t.Errorf("flag --%s: recorded %+v, want key %s line %d", f.Name, e, key, wantLine)
		}
	})
	if n < 18 {
		t.Fatalf("only %d flags found", n)
	}

	for _, doc := range []struct{ name, text string }{
		{"vggedge.example.yaml", readFile(t, "vggedge.example.yaml")},
		{"README.md", readmeServiceYAML(t)},
	} {
		root, err := parseConfigYAML(doc.name, []byte(doc.text))
		if err != nil || root == nil {
			t.Fatalf("%s: %v", doc.name, err)
		}
		have := map[string]bool{}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i].Value, root.Content[i+1]
			if v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					have[k+"."+v.Content[j].Value] = true
				}
			} else {
				have[k] = true
			}
		}
		for key, name := range keys {
			if !have[key] {
				t.Errorf("%s does not show the key %s (flag --%s)", doc.name, key, name)
			}
		}
		if _, err := applyConfig(runFlagSet(), doc.name, []byte(doc.text)); err != nil {
			t.Errorf("%s: %v", doc.name, err)
		}
	}
}

// sampleValue is a YAML value of f's type that differs from its default,
// and what the flag's String() should then be.
func sampleValue(t *testing.T, f *flag.Flag) (yamlValue, want string) {
	if _, ok := f.Value.(*stringList); ok {
		return "[jsonl, \"jsonl:/tmp/x y.jsonl\"]", "jsonl,jsonl:/tmp/x y.jsonl"
	}
	if _, ok := f.Value.(*output.NameList); ok {
		return "[a, b]", "a,b"
	}
	switch v := flagType(f).(type) {
	case bool:
		return strconv.FormatBool(!v), strconv.FormatBool(!v)
	case int:
		return strconv.Itoa(v + 3), strconv.Itoa(v + 3)
	case int64:
		return strconv.FormatInt(v+3, 10), strconv.FormatInt(v+3, 10)
	case uint:
		return strconv.FormatUint(uint64(v)+3, 10), strconv.FormatUint(uint64(v)+3, 10)
	case uint64:
		return strconv.FormatUint(v+3, 10), strconv.FormatUint(v+3, 10)
	case float64:
		return strconv.FormatFloat(v+0.25, 'g', -1, 64), strconv.FormatFloat(v+0.25, 'g', -1, 64)
	case time.Duration:
		d := v + 1500*time.Millisecond
		return d.String(), d.String()
	case string:
		if configCommaFlags[f.Name] {
			return "[a, b]", "a,b"
		}
		return "\"x-" + f.Name + "\"", "x-" + f.Name
	}
	t.Fatalf("flag --%s: no sample for its type %T; teach config.go's checkScalarType and this test", f.Name, flagType(f))
	return "", ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeServiceYAML is the yaml block of the README's "Running as a
// service" section.
func readmeServiceYAML(t *testing.T) string {
	t.Helper()
	readme := readFile(t, "../../README.md")
	_, sec, ok := strings.Cut(readme, "## Running as a service")
	if !ok {
		t.Fatal(`README.md has no "## Running as a service" section`)
	}
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal(`README.md's "Running as a service" has no yaml block`)
	}
	return block
}

// The systemd unit runs from /etc/vggedge.yaml, and the shipped example
// (what the unit's comment says to install there) runs through the real
// command once its camera, page address and output file are overridden by
// flags for this machine.
func TestConfigServiceExample(t *testing.T) {
	unit := readFile(t, "vggedge.service")
	if !strings.Contains(unit, "\nExecStart=/usr/local/bin/vggedge run --config /etc/vggedge.yaml\n") {
		t.Errorf("the unit's ExecStart does not read /etc/vggedge.yaml")
	}
	if !strings.Contains(unit, "firmware/vggedge/vggedge.example.yaml /etc/vggedge.yaml") {
		t.Errorf("the unit does not say how to install the example config")
	}
	out := filepath.Join(t.TempDir(), "results.jsonl")
	code, _, errOut := runLiveCLI(t, context.Background(), "--config", "vggedge.example.yaml",
		"--source", "idx:"+gomnistDir(t), "--http", "127.0.0.1:0", "--output", "jsonl:"+out, "--max-frames", "3")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(parseJSONLines(t, readFile(t, out))); n != 3 {
		t.Errorf("%d results, want 3", n)
	}
}

// keyAtLine names the key of a line from indentation alone.
func TestKeyAtLine(t *testing.T) {
	src := "# c\nmodel: digits\ngpio:\n  pin: 17\n\n  when: [7\nmqtt:\n  url: x\n  - y\n"
	for _, tt := range []struct {
		line int
		want string
	}{{1, ""}, {2, "model"}, {3, "gpio"}, {4, "gpio.pin"}, {5, "gpio.pin"}, {6, "gpio.when"}, {9, "mqtt.url"}, {0, ""}, {99, ""}} {
		if got := keyAtLine([]byte(src), tt.line); got != tt.want {
			t.Errorf("line %d: %q, want %q", tt.line, got, tt.want)
		}
	}
}

// Whatever the bytes, applyConfig returns an error naming the file, or
// nil, and never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"model: digits\nthreads: 2\noutput: [jsonl]\n",
		"gpio:\n  pin: 17\n  when: [7, 3]\n  hold: 2s\n",
		"a: &x [1]\nb: *x\n",
		"output:\n  - jsonl\n  - {a: b}\n",
		"threads: 1: 2\n",
		"- 1\n",
		"quiet: yes\n",
		"model: \"x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return
		}
		_, err := applyConfig(runFlagSet(), "f.yaml", src)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Fatalf("%q: error %q does not name the file", src, err)
		}
	})
}

// A YAML list item is one label, a comma in it included, while a scalar
// (as on the command line) is split at commas; the command line still
// wins over the file.
func TestConfigWhenItems(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		args       []string
		gpio, mqtt []string
	}{
		{"list items whole", "gpio:\n  when: [\"tabby, tabby cat\", golden retriever]\nmqtt:\n  when:\n    - tabby, tabby cat\n", nil,
			[]string{"tabby, tabby cat", "golden retriever"}, []string{"tabby, tabby cat"}},
		{"scalar splits", "gpio:\n  when: tabby cat,golden retriever\nmqtt:\n  when: 7\n", nil,
			[]string{"tabby cat", "golden retriever"}, []string{"7"}},
		{"flag wins", "gpio:\n  when: [\"a, b\"]\n", []string{"--when", "c,d"}, []string{"c", "d"}, nil},
	} {
		var rf runFlags
		fs := rf.flagSet(io.Discard)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		path := writeConfig(t, tt.yaml)
		if _, err := applyConfigFile(fs, path); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		mq := fs.Lookup("mqtt-when").Value.String()
		if !slices.Equal(rf.gpio.When, tt.gpio) || mq != strings.Join(tt.mqtt, ",") {
			t.Errorf("%s: gpio.when %q, mqtt.when %q; want %q, %q", tt.name, rf.gpio.When, mq, tt.gpio, tt.mqtt)
		}
	}
}
