package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxConfigBytes bounds --config: a service file is a few hundred bytes,
// so anything this big is the wrong file (and parsing stays cheap).
const maxConfigBytes = 64 << 10

// configGroups are the YAML mappings that group related flags.
var configGroups = []string{"gpio", "mqtt", "snapshot"}

// configKeyOverrides name the keys of flags whose YAML key is not derived
// from the flag's name by configKey's rules ("" means no key).
var configKeyOverrides = map[string]string{
	"config":    "", // a config file does not name another
	"gpio":      "gpio.pin",
	"when":      "gpio.when",
	"on-score":  "gpio.on_score",
	"off-score": "gpio.off_score",
	"hold":      "gpio.hold",
	"mqtt":      "mqtt.url",
	"device-id": "mqtt.device_id",
}

// configCommaFlags are string flags holding a comma-separated list: in
// YAML they may also be a sequence, whose items must not hold a comma.
// Label lists (--when…) are output.NameList flags instead, which take a
// YAML list item by item, commas and all.
var configCommaFlags = map[string]bool{"http-allow-host": true}

// itemsFlag is a flag that takes a YAML list item by item.
type itemsFlag interface{ SetItems([]string) }

// configKey is the YAML key of run's flag name, dotted: flags named
// mqtt-… and snapshot-… go under mqtt: and snapshot:, dashes become
// underscores ("max-frames" → max_frames, "mqtt-stats-every" →
// mqtt.stats_every). Deriving keys from names means a new flag has a key
// the moment it exists.
func configKey(flagName string) string {
	if k, ok := configKeyOverrides[flagName]; ok {
		return k
	}
	for _, g := range configGroups {
		if rest, ok := strings.CutPrefix(flagName, g+"-"); ok {
			return g + "." + strings.ReplaceAll(rest, "-", "_")
		}
	}
	return strings.ReplaceAll(flagName, "-", "_")
}

// runConfig is what a config file set: for each flag it set, the key and
// line, so that a later check of the value can point at the file.
type runConfig struct {
	path string
	set  map[string]configEntry // by flag name
}

type configEntry struct {
	key  string
	line int
}

// configError is an error about one value of a config file.
type configError struct {
	path string
	line int
	key  string // "" when the error is not about one key
	msg  string
	err  error // the check's own error, if any
}

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString(e.path)
	if e.line > 0 {
		fmt.Fprintf(&b, ": line %d", e.line)
	}
	if e.key != "" {
		b.WriteString(": " + e.key)
	}
	b.WriteString(": " + e.msg)
	return b.String()
}

func (e *configError) Unwrap() error { return e.err }

// flagError is a check's error about one flag whose message does not
// start with "--name", so that it can still be traced to a config key.
type flagError struct {
	flag string
	err  error
}

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// applyConfigFile reads the YAML file at path (nothing when path is "")
// and sets every flag it names that the command line did not: flags
// override the file. Types are checked here; values are checked later by
// the same code that checks flags, and explain turns those errors into
// "FILE: line N: key: message".
func applyConfigFile(fs *flag.FlagSet, path string) (*runConfig, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--config: read %s: %w", path, err)
	}
	if len(src) > maxConfigBytes {
		return nil, fmt.Errorf("--config %s: larger than %d KiB; a config file is a few lines of YAML", path, maxConfigBytes>>10)
	}
	return applyConfig(fs, path, src)
}

// applyConfig is applyConfigFile on the file's bytes.
func applyConfig(fs *flag.FlagSet, path string, src []byte) (*runConfig, error) {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	flags := map[string]*flag.Flag{} // by YAML key
	fs.VisitAll(func(f *flag.Flag) {
		if k := configKey(f.Name); k != "" {
			flags[k] = f
		}
	})
	c := &runConfig{path: path, set: map[string]configEntry{}}
	doc, err := parseConfigYAML(path, src)
	if err != nil || doc == nil {
		return c, err
	}
	w := configWalker{cfg: c, flags: flags, skip: onCommandLine, fs: fs}
	if err := w.mapping(doc, ""); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlErrLine matches the syntax errors of yaml.v3 (go.yaml.in/yaml/v3,
// the maintained fork of the archived gopkg.in/yaml.v3), "yaml: line 3: …".
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseConfigYAML parses one YAML document into its node tree; nil for
// an empty file.
func parseConfigYAML(path string, src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty: nothing set
		}
		e := &configError{path: path, msg: strings.TrimPrefix(err.Error(), "yaml: ") + " (not valid YAML)", err: err}
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			e.line, _ = strconv.Atoi(m[1])
			e.msg = m[2] + " (not valid YAML)"
		}
		// yaml.v3 often names the line before the problem, or none
		// when it is on line 1: the first prefix of the file that does
		// not parse ends at the problem. An earlier one (say a quoted
		// string left open that a later line closes) is not believed.
		if k := firstBadLine(src); k > 0 && k >= e.line-1 {
			e.line = k
		}
		e.key = keyAtLine(src, e.line)
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &configError{path: path, line: extra.Line, msg: "a second YAML document (---); put every key in one"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, &configError{path: path, line: root.Line, msg: "want a mapping of keys (model:, source:, output:, gpio:, …), got " + nodeKind(root)}
	}
	return root, nil
}

// firstBadLine is the smallest n such that the file's first n lines are
// not valid YAML (found by bisection, as if validity were monotone, which
// it is for the usual mistakes), or 0.
func firstBadLine(src []byte) int {
	lines := bytes.SplitAfter(bytes.TrimSuffix(src, []byte("\n")), []byte("\n"))
	bad := func(n int) bool {
		var doc yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:n], nil), &doc)
		return err != nil
	}
	if !bad(len(lines)) {
		return 0
	}
	lo, hi := 0, len(lines) // bad(hi); lo is taken as good
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if bad(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// keyAtLine guesses the dotted key on line n of a file yaml.v3 could not
// parse, from indentation: the key on that line (or the nearest above)
// and the less-indented keys above it. "" when there is none.
func keyAtLine(src []byte, n int) string {
	lines := strings.Split(string(src), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	var path []string
	indent := -1
	for i := n - 1; i >= 0; i-- {
		l := lines[i]
		t := strings.TrimLeft(l, " ")
		k, _, ok := strings.Cut(t, ":")
		if !ok || t == "" || t[0] == '#' || t[0] == '-' || strings.ContainsAny(k, " \t\"'{}[],#") || k == "" {
			continue
		}
		d := len(l) - len(t)
		if indent >= 0 && d >= indent {
			continue
		}
		path = append(path, k)
		indent = d
		if d == 0 {
			break
		}
	}
	slices.Reverse(path)
	return strings.Join(path, ".")
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "no value"
	}
	return strconv.Quote(n.Value)
}

// configWalker checks a config file's mappings against the flags and sets
// them.
type configWalker struct {
	cfg   *runConfig
	flags map[string]*flag.Flag // by key
	skip  map[string]bool       // flags the command line set
	fs    *flag.FlagSet
}

func (w *configWalker) errorf(line int, key, format string, args ...any) error {
	return &configError{path: w.cfg.path, line: line, key: key, msg: fmt.Sprintf(format, args...)}
}

// mapping walks the keys of m, which sit under prefix ("" or "gpio.").
func (w *configWalker) mapping(m *yaml.Node, prefix string) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := m.Content[i], m.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return w.errorf(kn.Line, strings.TrimSuffix(prefix, "."), "a key must be a plain name, got %s", nodeKind(kn))
		}
		key := prefix + kn.Value
		if first, dup := seen[kn.Value]; dup {
			return w.errorf(kn.Line, key, "given twice (first on line %d)", first)
		}
		seen[kn.Value] = kn.Line
		if vn.Kind == yaml.AliasNode {
			vn = vn.Alias
		}
		if prefix == "" && slices.Contains(configGroups, kn.Value) && w.hasGroup(kn.Value) {
			if vn.Kind != yaml.MappingNode {
				return w.errorf(vn.Line, key, "want a mapping of %s keys (%s), got %s", kn.Value, strings.Join(w.keysUnder(key+"."), ", "), nodeKind(vn))
			}
			if err := w.mapping(vn, key+"."); err != nil {
				return err
			}
			continue
		}
		f, ok := w.flags[key]
		if !ok {
			return w.errorf(kn.Line, key, "unknown key (%s)", w.knownKeys(prefix))
		}
		if err := w.value(f, key, vn); err != nil {
			return err
		}
	}
	return nil
}

func (w *configWalker) hasGroup(g string) bool { return len(w.keysUnder(g+".")) > 0 }

// keysUnder lists the keys below prefix, one level down, sorted.
func (w *configWalker) keysUnder(prefix string) []string {
	var ks []string
	for k := range w.flags {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			ks = append(ks, rest)
		}
	}
	slices.Sort(ks)
	return ks
}

// knownKeys describes the keys allowed beside an unknown one.
func (w *configWalker) knownKeys(prefix string) string {
	if prefix != "" {
		return strings.TrimSuffix(prefix, ".") + " has " + strings.Join(w.keysUnder(prefix), ", ")
	}
	var top []string
	for k := range w.flags {
		if g, _, ok := strings.Cut(k, "."); ok {
			k = g + ":"
		}
		if !slices.Contains(top, k) {
			top = append(top, k)
		}
	}
	slices.Sort(top)
	return "keys: " + strings.Join(top, ", ")
}

// value checks v against f's type and sets f unless the command line did.
func (w *configWalker) value(f *flag.Flag, key string, v *yaml.Node) error {
	var vals []string
	_, isList := f.Value.(*stringList)
	items, isItems := f.Value.(itemsFlag)
	switch {
	case v.Kind == yaml.SequenceNode && (isList || isItems || configCommaFlags[f.Name]):
		if len(v.Content) == 0 && isList {
			return w.errorf(v.Line, key, "empty list; remove the key for the default")
		}
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return w.errorf(it.Line, key, "want a list of strings, got an item that is %s", nodeKind(it))
			}
			if configCommaFlags[f.Name] && strings.Contains(it.Value, ",") {
				return w.errorf(it.Line, key, "item %q holds a comma; give one name per item", it.Value)
			}
			if isItems && strings.TrimSpace(it.Value) == "" {
				return w.errorf(it.Line, key, "an empty item; give a label")
			}
			vals = append(vals, it.Value)
		}
		if w.skip[f.Name] {
			return nil // the command line wins; the file's value was still checked
		}
		if isItems {
			// A YAML item is one label, even one with a comma
			// ("tabby, tabby cat"); a scalar still splits at commas.
			if err := w.fs.Set(f.Name, ""); err != nil { // marks the flag set
				return w.errorf(v.Line, key, "%v", err)
			}
			items.SetItems(vals)
			w.cfg.set[f.Name] = configEntry{key: key, line: v.Line}
			return nil
		}
		if configCommaFlags[f.Name] {
			vals = []string{strings.Join(vals, ",")}
		}
	case v.Kind != yaml.ScalarNode:
		return w.errorf(v.Line, key, "want %s, got %s", wantOf(f), nodeKind(v))
	case v.Tag == "!!null":
		return w.errorf(v.Line, key, "no value; remove the key for the default, or give %s", wantOf(f))
	default:
		if err := checkScalarType(f, v); err != nil {
			return w.errorf(v.Line, key, "%v", err)
		}
		vals = []string{v.Value}
	}
	if w.skip[f.Name] {
		// The command line wins; the file's value was still checked.
		return nil
	}
	for _, s := range vals {
		if err := w.fs.Set(f.Name, s); err != nil {
			return w.errorf(v.Line, key, "%q: %v (want %s)", s, err, wantOf(f))
		}
	}
	w.cfg.set[f.Name] = configEntry{key: key, line: v.Line}
	return nil
}

// flagType is the Go type behind f's value ("" for flags without a Get).
func flagType(f *flag.Flag) any {
	if g, ok := f.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

// wantOf says what a flag's value must look like.
func wantOf(f *flag.Flag) string {
	if _, ok := f.Value.(*stringList); ok {
		return "a list of strings"
	}
	switch flagType(f).(type) {
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration such as 500ms, 10s or 2m"
	}
	if _, ok := f.Value.(itemsFlag); ok {
		return "a label or a list of labels"
	}
	if configCommaFlags[f.Name] {
		return "a name or a list of names"
	}
	return "a string"
}

// checkScalarType rejects a YAML scalar whose resolved type does not fit
// the flag (yaml.v3 follows YAML 1.2: "yes" is a string, not true).
func checkScalarType(f *flag.Flag, v *yaml.Node) error {
	ok := true
	switch flagType(f).(type) {
	case bool:
		ok = v.Tag == "!!bool"
	case int, int64, uint, uint64:
		ok = v.Tag == "!!int"
	case float64:
		ok = v.Tag == "!!int" || v.Tag == "!!float"
	case time.Duration:
		_, err := time.ParseDuration(v.Value)
		ok = (v.Tag == "!!str" || v.Value == "0") && err == nil
	}
	if !ok {
		return fmt.Errorf("want %s, got %s", wantOf(f), nodeKind(v))
	}
	return nil
}

// explain points an error from checking the flags at the config line that
// set the value, when the file set it: "FILE: line N: key: message". The
// flag is found from a flagError or from the "--name" every flag check's
// message starts with.
func (c *runConfig) explain(err error) error {
	if c == nil || err == nil {
		return err
	}
	name, msg := "", ""
	var fe *flagError
	if errors.As(err, &fe) {
		name, msg = fe.flag, fe.err.Error()
	} else if rest, ok := strings.CutPrefix(err.Error(), "--"); ok {
		i := strings.IndexAny(rest, " :=")
		if i <= 0 {
			return err
		}
		name, msg = rest[:i], strings.TrimLeft(rest[i:], " :=")
	}
	e, ok := c.set[name]
	if !ok {
		return err
	}
	return &configError{path: c.path, line: e.line, key: e.key, msg: msg, err: err}
}
