package infer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The architecture file is JSON; the README documents it. A short example,
// VGG16 with a 1x1 reduction (512→64) before the classifier:
//
//	{
//	  "name": "vgg16-r64",
//	  "input": [3, 224, 224],
//	  "features": ["vgg16", {"type": "conv2d", "out": 64, "kernel": 1}, {"type": "relu"}],
//	  "avgpool": [7, 7],
//	  "classifier": [4096, 4096, 1000]
//	}
//
// features items: a number n is torchvision's cfg entry (3x3 conv, padding
// 1, n channels, [BatchNorm2d,] ReLU); "M" is MaxPool2d(2, 2); "vgg11",
// "vgg13", "vgg16", "vgg19" expand to that model's features; an object is
// one layer. classifier items: a number is Linear(n) followed, except for
// the last, by ReLU and Dropout; an object is one layer.

// maxArchFile bounds an architecture file: they are a few KiB.
const maxArchFile = 1 << 20

type archFile struct {
	Name       string
	Class      string
	Input      []int
	BatchNorm  bool
	Dropout    *float64
	NumClasses int
	Features   json.RawMessage
	AvgPool    json.RawMessage
	Classifier json.RawMessage
}

type layerSpec struct {
	Type       Kind     `json:"type"`
	Out        *int     `json:"out"`
	Kernel     *pair    `json:"kernel"`
	Stride     *int     `json:"stride"`
	Padding    *int     `json:"padding"`
	Bias       *bool    `json:"bias"`
	P          *float64 `json:"p"`
	Eps        *float64 `json:"eps"`
	OutputSize *pair    `json:"output_size"`
	Squeeze    *int     `json:"squeeze"` // squeezeexcite: the bottleneck width r
}

// pair is n or [h, w].
type pair [2]int

func (p *pair) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*p = pair{n, n}
		return nil
	}
	var a []int
	if err := json.Unmarshal(b, &a); err != nil || len(a) != 2 {
		return fmt.Errorf("want a number or [h, w], got %s", b)
	}
	*p = pair{a[0], a[1]}
	return nil
}

// ArchError is an error at a position of an architecture file.
type ArchError struct {
	File      string
	Line, Col int
	Field     string // "features[19].out"; empty when the file is not JSON
	Err       error
}

func (e *ArchError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %v", pos, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", pos, e.Err)
}

func (e *ArchError) Unwrap() error { return e.Err }

// Options override what an architecture says about its input and classes.
type Options struct {
	Input      Shape // zero: the architecture's (3x224x224 for built-ins)
	NumClasses int   // zero: the architecture's (1000 for built-ins)
}

// Build returns the model named by arch: a built-in name (vgg16, vgg11_bn,
// …) or the path of an architecture file.
func Build(arch string, opt Options) (*Model, error) {
	if _, ok := vggCfgs[strings.TrimSuffix(arch, "_bn")]; ok {
		in := opt.Input
		if in == (Shape{}) {
			in = DefaultInput
		}
		classes := opt.NumClasses
		if classes == 0 {
			classes = 1000
		}
		return VGG(arch, in, classes)
	}
	if !strings.ContainsAny(arch, "./\\") && !fileExists(arch) {
		return nil, fmt.Errorf("unknown architecture %q: not a built-in (%s) and no such file", arch, strings.Join(Architectures(), ", "))
	}
	f, err := os.Open(arch)
	if err != nil {
		return nil, fmt.Errorf("architecture file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxArchFile+1))
	if err != nil {
		return nil, fmt.Errorf("architecture file %s: %w", arch, err)
	}
	if len(data) > maxArchFile {
		return nil, &ArchError{File: arch, Err: fmt.Errorf("larger than %d bytes: not an architecture file", maxArchFile)}
	}
	return ParseArch(data, arch, opt)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ParseArch builds a model from an architecture file's bytes; file names it
// in errors, which give the line, column and field.
func ParseArch(data []byte, file string, opt Options) (*Model, error) {
	p := &archParser{file: file, data: data}
	af, err := p.top()
	if err != nil {
		return nil, err
	}

	m := &Model{Name: af.Name, Class: af.Class}
	if m.Name == "" {
		m.Name = strings.TrimSuffix(baseName(file), ".json")
	}
	if m.Class == "" {
		m.Class = "VGG"
	}
	switch {
	case opt.Input != (Shape{}):
		m.Input = opt.Input
	case af.Input == nil:
		m.Input = DefaultInput
	case len(af.Input) != 3:
		return nil, p.errField("input", fmt.Errorf("want [C, H, W], got %d numbers", len(af.Input)))
	default:
		m.Input = Shape{af.Input[0], af.Input[1], af.Input[2]}
	}
	dropout := 0.5
	if af.Dropout != nil {
		dropout = *af.Dropout
	}

	if err := p.features(m, af.Features, af.BatchNorm); err != nil {
		return nil, err
	}
	if len(af.AvgPool) > 0 && string(af.AvgPool) != "null" {
		var ps pair
		if err := json.Unmarshal(af.AvgPool, &ps); err != nil {
			return nil, p.errField("avgpool", err)
		}
		p.add(m, "", p.offs["avgpool"], "avgpool", Layer{Name: "avgpool", Kind: AdaptiveAvgPool2d, OutH: ps[0], OutW: ps[1]})
	}
	if len(af.Classifier) > 0 && string(af.Classifier) != "null" {
		p.add(m, "", p.offs["classifier"], "classifier", Layer{Name: "flatten", Kind: Flatten, Functional: true})
		if err := p.classifier(m, af.Classifier, dropout); err != nil {
			return nil, err
		}
	}
	if len(m.Layers) == 0 {
		return nil, p.errField("features", errors.New("the architecture has no layers"))
	}
	classes := opt.NumClasses
	if classes == 0 {
		classes = af.NumClasses
	}
	if classes != 0 {
		last := -1
		for i := range m.Layers {
			if m.Layers[i].Kind == Linear {
				last = i
			}
		}
		if last < 0 {
			return nil, p.errField("num_classes", errors.New("the architecture has no Linear layer to set"))
		}
		m.Layers[last].Out = classes
	}
	if _, err := m.Resolve(); err != nil {
		var le *LayerError
		if errors.As(err, &le) && le.Index < len(p.pos) {
			return nil, p.errAt(p.pos[le.Index], p.field[le.Index], err)
		}
		return nil, &ArchError{File: file, Err: err}
	}
	return m, nil
}

// top decodes the top-level object key by key, remembering where each
// value starts so later errors can point into the file.
func (p *archParser) top() (*archFile, error) {
	af := &archFile{}
	p.offs = map[string]int{}
	dec := json.NewDecoder(bytes.NewReader(p.data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		if err != nil {
			return nil, p.jsonErr(err, "")
		}
		return nil, p.errAt(0, "", errors.New("want a JSON object"))
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, p.jsonErr(err, "")
		}
		key, _ := t.(string)
		keyEnd := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, p.jsonErr(err, key)
		}
		off := keyEnd + skipSep(p.data[keyEnd:])
		p.offs[key] = off
		var dst any
		switch key {
		case "name":
			dst = &af.Name
		case "class":
			dst = &af.Class
		case "input":
			dst = &af.Input
		case "batch_norm":
			dst = &af.BatchNorm
		case "dropout":
			dst = &af.Dropout
		case "num_classes":
			dst = &af.NumClasses
		case "features":
			af.Features = raw
		case "avgpool":
			af.AvgPool = raw
		case "classifier":
			af.Classifier = raw
		default:
			return nil, p.errAt(keyEnd-len(key)-2, key, errors.New("unknown field (known: name, class, input, batch_norm, dropout, num_classes, features, avgpool, classifier)"))
		}
		if dst != nil {
			if err := json.Unmarshal(raw, dst); err != nil {
				return nil, p.errAt(off, key, fmt.Errorf("want %s, got %s", jsonKind(dst), raw))
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, p.jsonErr(err, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, p.errAt(int(dec.InputOffset()), "", errors.New("unexpected data after the architecture object"))
	}
	return af, nil
}

func jsonKind(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case *bool:
		return "true or false"
	case *int:
		return "an integer"
	case **float64:
		return "a number"
	case *[]int:
		return "a list of integers"
	}
	return "another type"
}

type archParser struct {
	offs  map[string]int // top-level key → offset of its value
	file  string
	data  []byte
	pos   []int    // offset in data of each layer's item
	field []string // the item's JSON path
}

// add appends layers to a section of m (all of them made from the item at
// off), or one top-level module when section is empty.
func (p *archParser) add(m *Model, section string, off int, field string, ls ...Layer) {
	if section == "" {
		m.Layers = append(m.Layers, ls...)
	} else {
		m.Layers = appendSection(m.Layers, section, ls...)
	}
	for range ls {
		p.pos = append(p.pos, off)
		p.field = append(p.field, field)
	}
}

// items splits a JSON array into its elements with their offsets.
func (p *archParser) items(raw json.RawMessage, field string) ([]json.RawMessage, []int, error) {
	base := p.offs[field]
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, nil, p.errAt(base, field, errors.New("want a list"))
	}
	var items []json.RawMessage
	var offs []int
	for dec.More() {
		var it json.RawMessage
		start := int(dec.InputOffset())
		if err := dec.Decode(&it); err != nil {
			return nil, nil, p.jsonErr(err, field)
		}
		off := base + start + skipSep(raw[start:])
		items = append(items, it)
		offs = append(offs, off)
	}
	return items, offs, nil
}

func skipSep(b []byte) int {
	i := 0
	for i < len(b) && strings.IndexByte(" \t\r\n,:", b[i]) >= 0 {
		i++
	}
	return i
}

func (p *archParser) features(m *Model, raw json.RawMessage, bn bool) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	items, offs, err := p.items(raw, "features")
	if err != nil {
		return err
	}
	for i, it := range items {
		field := fmt.Sprintf("features[%d]", i)
		var n int
		var s string
		switch {
		case json.Unmarshal(it, &n) == nil:
			if n <= 0 {
				return p.errAt(offs[i], field, fmt.Errorf("channel count %d: must be positive", n))
			}
			p.add(m, "features", offs[i], field, cfgLayers([]int{n}, bn)...)
		case json.Unmarshal(it, &s) == nil:
			var cfg []int
			if s == "M" {
				cfg = []int{-1}
			} else if c, ok := vggCfgs[s]; ok {
				cfg = c
			} else {
				return p.errAt(offs[i], field, fmt.Errorf("unknown item %q (want a channel count, \"M\", a layer object, or one of vgg11, vgg13, vgg16, vgg19)", s))
			}
			p.add(m, "features", offs[i], field, cfgLayers(cfg, bn)...)
		default:
			l, err := p.layer(it, offs[i], field)
			if err != nil {
				return err
			}
			p.add(m, "features", offs[i], field, l)
		}
	}
	return nil
}

func (p *archParser) classifier(m *Model, raw json.RawMessage, dropout float64) error {
	items, offs, err := p.items(raw, "classifier")
	if err != nil {
		return err
	}
	for i, it := range items {
		field := fmt.Sprintf("classifier[%d]", i)
		var n int
		if json.Unmarshal(it, &n) == nil {
			if n <= 0 {
				return p.errAt(offs[i], field, fmt.Errorf("width %d: must be positive", n))
			}
			p.add(m, "classifier", offs[i], field, classifierBlock(n, dropout, i == len(items)-1)...)
			continue
		}
		l, err := p.layer(it, offs[i], field)
		if err != nil {
			return err
		}
		p.add(m, "classifier", offs[i], field, l)
	}
	return nil
}

// layer decodes one layer object, with PyTorch's defaults for what it omits.
func (p *archParser) layer(raw json.RawMessage, off int, field string) (Layer, error) {
	var s layerSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Layer{}, p.errAt(off, field, cleanJSONErr(err))
	}
	get := func(v *int, def int) int {
		if v == nil {
			return def
		}
		return *v
	}
	l := Layer{Kind: s.Type}
	need := func(name string, ok bool) error {
		if !ok {
			return p.errAt(off, field+"."+name, fmt.Errorf("required for %s", s.Type))
		}
		return nil
	}
	positive := func(name string, v int) error {
		if v <= 0 {
			return p.errAt(off, field+"."+name, fmt.Errorf("%d: must be positive", v))
		}
		return nil
	}
	var errs []error
	switch s.Type {
	case Conv2d:
		errs = append(errs, need("out", s.Out != nil), need("kernel", s.Kernel != nil))
		if s.Out != nil && s.Kernel != nil {
			l.Out, l.KH, l.KW = *s.Out, s.Kernel[0], s.Kernel[1]
			l.Stride, l.Pad = get(s.Stride, 1), get(s.Padding, 0)
			l.Bias = s.Bias == nil || *s.Bias
			errs = append(errs, positive("out", l.Out), positive("kernel", min(l.KH, l.KW)), positive("stride", l.Stride))
			if l.Pad < 0 {
				errs = append(errs, p.errAt(off, field+".padding", fmt.Errorf("%d: must not be negative", l.Pad)))
			}
		}
	case BatchNorm2d:
		l.Eps = 1e-5
		if s.Eps != nil {
			l.Eps = *s.Eps
		}
	case ReLU, Flatten:
	case MaxPool2d:
		k := 2
		if s.Kernel != nil {
			if s.Kernel[0] != s.Kernel[1] {
				errs = append(errs, p.errAt(off, field+".kernel", errors.New("max-pool windows are square")))
			}
			k = s.Kernel[0]
		}
		l.KH, l.KW, l.Stride, l.Pad = k, k, get(s.Stride, k), get(s.Padding, 0)
		errs = append(errs, positive("kernel", k), positive("stride", l.Stride))
	case AdaptiveAvgPool2d:
		errs = append(errs, need("output_size", s.OutputSize != nil))
		if s.OutputSize != nil {
			l.OutH, l.OutW = s.OutputSize[0], s.OutputSize[1]
			errs = append(errs, positive("output_size", min(l.OutH, l.OutW)))
		}
	case Linear:
		errs = append(errs, need("out", s.Out != nil))
		if s.Out != nil {
			l.Out = *s.Out
			l.Bias = s.Bias == nil || *s.Bias
			errs = append(errs, positive("out", l.Out))
		}
	case SqueezeExcite:
		errs = append(errs, need("squeeze", s.Squeeze != nil))
		if s.Squeeze != nil {
			l.Out = *s.Squeeze
			errs = append(errs, positive("squeeze", l.Out))
		}
	case Dropout:
		l.P = 0.5
		if s.P != nil {
			l.P = *s.P
		}
	case "":
		return l, p.errAt(off, field+".type", errors.New("missing"))
	default:
		return l, p.errAt(off, field+".type", fmt.Errorf("unknown layer type %q (known: %s)", s.Type, kindList()))
	}
	for _, err := range errs {
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

func kindList() string {
	var ks []string
	for _, k := range Kinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

func (p *archParser) errField(field string, err error) error {
	return p.errAt(p.offs[field], field, err)
}

func (p *archParser) errAt(off int, field string, err error) error {
	var ae *ArchError
	if errors.As(err, &ae) {
		return err
	}
	line, col := lineCol(p.data, off)
	return &ArchError{File: p.file, Line: line, Col: col, Field: field, Err: err}
}

func (p *archParser) jsonErr(err error, field string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return p.errAt(int(se.Offset), field, fmt.Errorf("invalid JSON: %v", se))
	case errors.As(err, &te):
		f := te.Field
		if f == "" {
			f = field
		}
		return p.errAt(int(te.Offset), f, fmt.Errorf("want %v, got JSON %s", te.Type, te.Value))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return p.errAt(len(p.data), field, errors.New("unexpected end of file: not a complete JSON object"))
	}
	return p.errAt(0, field, cleanJSONErr(err))
}

func cleanJSONErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return errors.New(msg)
}

func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, "/\\"); i >= 0 {
		return p[i+1:]
	}
	return p
}
