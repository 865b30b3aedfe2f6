package vgm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/vggedge/vggedge/infer"
)

// validateFile checks everything Load promises about a model: the float
// model resolves and its weights are finite, the int8 model passes
// infer.QModel.Validate, the spec fits the input and there is a label per
// output. Encode runs it too, so every file written can be read back.
func validateFile(f *File) error {
	var (
		name  string
		input infer.Shape
		meta  infer.Meta
	)
	if f.Int8 != nil {
		name, input, meta = f.Int8.Name, f.Int8.Input, f.Int8.Meta
	} else {
		name, input, meta = f.Float.Name, f.Float.Input, f.Float.Meta
	}
	if err := checkText(name, false); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if err := input.Validate(); err != nil {
		return fmt.Errorf("input %v: %w", input, err)
	}
	if err := checkMeta(&meta, input); err != nil {
		return err
	}
	// Labels are checked against a quick walk of the shapes before the
	// full validation, whose error for them (QModel.Validate's) would not
	// name the field; a walk that fails is left to that validation.
	if n := len(meta.Labels); n != 0 {
		var out infer.Shape
		var ok bool
		if f.Float != nil {
			out, ok = walkShapes(input, f.Float.Layers, func(l *infer.Layer) infer.Layer { return *l })
		} else {
			out, ok = walkShapes(input, f.Int8.Layers, shapeOnly)
		}
		if ok && int64(n) != out.Elems() {
			return fmt.Errorf("labels: %d labels for %d outputs", n, out.Elems())
		}
	}
	var outputs []int64
	if f.Float != nil {
		out, err := validateFloat(f.Float)
		if err != nil {
			return err
		}
		outputs = append(outputs, out.Elems())
	}
	if f.Int8 != nil {
		out, err := validateInt8(f.Int8)
		if err != nil {
			return err
		}
		outputs = append(outputs, out.Elems())
	}
	if len(outputs) == 2 && outputs[0] != outputs[1] {
		return fmt.Errorf("the float model has %d outputs but the int8 model %d", outputs[0], outputs[1])
	}
	if n := len(meta.Labels); n != 0 && int64(n) != outputs[0] {
		return fmt.Errorf("labels: %d labels for %d outputs", n, outputs[0])
	}
	return nil
}

// walkShapes chains the layers' output shapes from in without checking
// parameters; ok is false if they do not chain.
func walkShapes[L any](in infer.Shape, layers []L, shape func(*L) infer.Layer) (out infer.Shape, ok bool) {
	if len(layers) == 0 {
		return infer.Shape{}, false
	}
	out = in
	for i := range layers {
		l := shape(&layers[i])
		var err error
		if out, err = l.OutShape(out); err != nil || out.Validate() != nil {
			return infer.Shape{}, false
		}
	}
	return out, true
}

// shapeOnly is the float layer with l's shape fields, for walkShapes.
func shapeOnly(l *infer.QLayer) infer.Layer {
	return infer.Layer{Kind: l.Kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW, Stride: l.Stride, Pad: l.Pad, OutH: l.OutH, OutW: l.OutW}
}

func checkMeta(meta *infer.Meta, input infer.Shape) error {
	s := &meta.Spec
	if s.ChannelOrder != "" || s.Mean != nil || s.Std != nil || s.Resize != "" || s.ResizeShorter != 0 || s.ResizeFilter != "" {
		if err := s.Validate(input); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
	}
	for i, l := range meta.Labels {
		if err := checkText(l, false); err != nil {
			return fmt.Errorf("labels[%d]: %w", i, err)
		}
	}
	p := &meta.Prov
	for _, f := range []struct {
		key, v string
	}{{"source_file", p.SourceFile}, {"source_sha256", p.SourceSHA256}, {"calibration", p.Calibration},
		{"version", p.Version}, {"created", p.Created}, {"notes", p.Notes}} {
		if err := checkText(f.v, f.key == "notes"); err != nil {
			return fmt.Errorf("provenance: %s: %w", f.key, err)
		}
	}
	if math.IsNaN(p.Percentile) || p.Percentile < 0 || p.Percentile > 100 {
		return fmt.Errorf("provenance: percentile %g: must be in [0, 100]", p.Percentile)
	}
	if p.Samples < 0 {
		return fmt.Errorf("provenance: samples %d: must not be negative", p.Samples)
	}
	return nil
}

// checkText rejects strings that would garble a terminal or a one-line
// error message when printed: invalid UTF-8 and control characters
// (newlines and tabs are allowed where multiline is).
func checkText(s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return fmt.Errorf("contains the control character %U", r)
		}
	}
	return nil
}

// display is s as it may appear in an error message: itself when short and
// printable, else quoted and cut.
func display(s string) string {
	if len(s) <= 64 && checkText(s, false) == nil {
		return s
	}
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// checkDims bounds every size field of a layer (both kinds have the same
// ones): infer.MaxDim bounds sizes throughout vggedge, and it keeps the shape
// arithmetic (2·pad, …) from overflowing an int on 32-bit boards.
func checkDims(in, out, kh, kw, stride, pad, outH, outW int) error {
	for _, f := range []struct {
		key string
		v   int
	}{{"in", in}, {"out", out}, {"kh", kh}, {"kw", kw}, {"stride", stride}, {"pad", pad}, {"out_h", outH}, {"out_w", outW}} {
		if f.v < 0 || f.v > infer.MaxDim {
			return fmt.Errorf("%s %d: must be in [0, %d]", f.key, f.v, infer.MaxDim)
		}
	}
	return nil
}

// fixLayerErr turns a *infer.LayerError from Resolve, Shapes or CheckRunnable
// into the file's "float layer 3 features.5: …" form.
func fixLayerErr(which string, err error) error {
	var le *infer.LayerError
	if errors.As(err, &le) {
		return &layerErr{layerPrefix(which, le.Index, le.Name), le.Err}
	}
	return fmt.Errorf("%s: %w", which, err)
}

// validateFloat checks a float model and returns its output shape. m.Layers'
// In fields are filled in (Resolve).
func validateFloat(m *infer.Model) (infer.Shape, error) {
	if err := checkText(m.Class, false); err != nil {
		return infer.Shape{}, fmt.Errorf("float: class: %w", err)
	}
	hasParams := false
	for i := range m.Layers {
		l := &m.Layers[i]
		fail := func(err error) error { return &layerErr{layerPrefix("float", i, l.Name), err} }
		if err := checkText(l.Name, false); err != nil {
			return infer.Shape{}, fail(fmt.Errorf("name: %w", err))
		}
		if err := checkText(string(l.Kind), false); err != nil {
			return infer.Shape{}, fail(fmt.Errorf("kind: %w", err))
		}
		if err := checkDims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW); err != nil {
			return infer.Shape{}, fail(err)
		}
		if !isFinite64(l.P) || !isFinite64(l.Eps) {
			return infer.Shape{}, fail(fmt.Errorf("p %g, eps %g: must be finite", l.P, l.Eps))
		}
		if err := checkRole(l.Role); err != nil {
			return infer.Shape{}, fail(err)
		}
		tensors := []struct {
			key string
			v   []float32
		}{{"weight", l.Weight}, {"bias", l.BiasData}, {"gamma", l.Gamma}, {"beta", l.Beta}, {"mean", l.Mean}, {"var", l.Var},
			{"weight2", l.Weight2}, {"bias2", l.Bias2}}
		for _, t := range tensors {
			if t.v == nil {
				continue
			}
			hasParams = true
			var ok bool
			switch t.key {
			case "weight", "bias":
				ok = l.Kind == infer.Conv2d || l.Kind == infer.Linear || l.Kind == infer.SqueezeExcite
			case "weight2", "bias2":
				ok = l.Kind == infer.SqueezeExcite
			default:
				ok = l.Kind == infer.BatchNorm2d
			}
			if !ok {
				return infer.Shape{}, fail(fmt.Errorf("%s: a %s layer has no such parameter", t.key, display(string(l.Kind))))
			}
			for j, v := range t.v {
				if !finite(v) {
					return infer.Shape{}, fail(fmt.Errorf("%s[%d] %g: must be finite", t.key, j, v))
				}
			}
		}
	}
	shapes, err := m.Resolve()
	if err != nil {
		return infer.Shape{}, fixLayerErr("float", err)
	}
	// A model carries all its parameters or none (an architecture only,
	// for costing); with parameters it must be runnable.
	if hasParams {
		if err := m.CheckRunnable(shapes); err != nil {
			return infer.Shape{}, fixLayerErr("float", err)
		}
	}
	return shapes[len(shapes)-1], nil
}

// checkRole accepts "" and the roles of infer.Roles.
func checkRole(r infer.Role) error {
	if r == "" || slices.Contains(infer.Roles, r) {
		return nil
	}
	return fmt.Errorf("role %s: want one of %v or none", display(string(r)), infer.Roles)
}

func isFinite64(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func finite(f float32) bool { return isFinite64(float64(f)) }

// validateInt8 checks an int8 model and returns its output shape: Validate,
// plus what it leaves out — finite scalars and no parameters a layer's kind
// does not use (they would be carried along unchecked).
func validateInt8(q *infer.QModel) (infer.Shape, error) {
	for i := range q.Layers {
		l := &q.Layers[i]
		fail := func(err error) error { return &layerErr{layerPrefix("int8", i, l.Name), err} }
		if err := checkText(l.Name, false); err != nil {
			return infer.Shape{}, fail(fmt.Errorf("name: %w", err))
		}
		if err := checkText(string(l.Kind), false); err != nil {
			return infer.Shape{}, fail(fmt.Errorf("kind: %w", err))
		}
		if err := checkDims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW); err != nil {
			return infer.Shape{}, fail(err)
		}
		if !finite(l.InScale) || !finite(l.OutScale) {
			return infer.Shape{}, fail(fmt.Errorf("in_scale %g, out_scale %g: must be finite", l.InScale, l.OutScale))
		}
		if err := checkRole(l.Role); err != nil {
			return infer.Shape{}, fail(err)
		}
		weighted := l.Kind == infer.Conv2d || l.Kind == infer.Linear
		for _, t := range []struct {
			key     string
			present bool
			n       int
			ok      bool
		}{
			{"weight", l.Weight != nil, -1, weighted},
			{"bias", l.Bias != nil, -1, weighted},
			{"w_scale", l.WScale != nil, -1, weighted},
			{"mult", l.Mult != nil, len(l.Mult), weighted},
			{"shift", l.Shift != nil, len(l.Shift), weighted},
			{"pad_value", l.PadValue != nil, -1, l.Kind == infer.Conv2d},
		} {
			if !t.present {
				continue
			}
			if !t.ok {
				return infer.Shape{}, fail(fmt.Errorf("%s: a %s layer has no such parameter", t.key, display(string(l.Kind))))
			}
			// Validate skips mult and shift of the logits layer (it
			// does not requantize); present, they must still fit.
			if l.Logits && t.n >= 0 && t.n != l.Out {
				return infer.Shape{}, fail(fmt.Errorf("%s has %d values, want %d", t.key, t.n, l.Out))
			}
		}
	}
	if err := q.Validate(); err != nil {
		return infer.Shape{}, fixLayerErr("int8", err)
	}
	// The output shape, without Shapes' second pass over every weight;
	// the walk cannot fail once Validate has passed.
	out, _ := walkShapes(q.Input, q.Layers, shapeOnly)
	return out, nil
}
