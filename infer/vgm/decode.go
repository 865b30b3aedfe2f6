package vgm

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/vggedge/vggedge/infer"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

var errNotModelFile = errors.New("not a vggedge model file")

func decodeFile(data []byte) (*File, error) {
	d := newFileDecoder(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", errNotModelFile)
	}
	if c, _ := d.peek(); !isMap(c) {
		return nil, fmt.Errorf("%w: it does not begin with a msgpack map", errNotModelFile)
	}
	n, err := d.mapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotModelFile, err)
	}
	// format and version come first, so that nothing is read under the
	// wrong interpretation.
	if k, err := d.key(); errors.Is(err, errTruncated) {
		return nil, err
	} else if n < 2 || err != nil || k != "format" {
		return nil, fmt.Errorf("%w: it does not begin with the key \"format\"", errNotModelFile)
	}
	magic, err := d.str(64)
	if err != nil {
		return nil, fmt.Errorf("%w: format: %v", errNotModelFile, err)
	}
	if magic != FileMagic {
		return nil, fmt.Errorf("%w: format is %s, want %q", errNotModelFile, display(magic), FileMagic)
	}
	if k, err := d.key(); err != nil {
		return nil, err
	} else if k != "version" {
		return nil, errors.New("version: missing (it must be the second key)")
	}
	version, err := d.int(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if version > FileVersion {
		return nil, fmt.Errorf("model file version %d: this build of vggedge reads version %d and older; use a newer vggedge", version, FileVersion)
	}
	if version < 1 {
		return nil, fmt.Errorf("version %d: must be at least 1", version)
	}

	var (
		name           string
		input          infer.Shape
		hasInput       bool
		meta           infer.Meta
		fm             *infer.Model
		qm             *infer.QModel
		seen           keySet
		topLevelFields = []string{"name", "input", "spec", "labels", "provenance", "float", "int8"}
	)
	for range n - 2 {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if err := seen.add(topLevelFields, k); err != nil {
			return nil, err
		}
		switch k {
		case "name":
			name, err = d.str(maxNameLen)
		case "input":
			input, err = d.shape()
			hasInput = true
		case "spec":
			err = d.spec(&meta.Spec)
		case "labels":
			meta.Labels, err = d.strs(maxFileLabels)
		case "provenance":
			err = d.provenance(&meta.Prov)
		case "float":
			fm, err = d.floatModel()
		case "int8":
			qm, err = d.int8Model()
		default:
			err = d.skip()
		}
		if err != nil {
			if errors.Is(err, errLayer) {
				return nil, err // already "float layer 3 …"
			}
			return nil, fmt.Errorf("%s: %w", display(k), err)
		}
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("%d bytes after the end of the model (a damaged or concatenated file?)", d.left())
	}
	if !hasInput {
		return nil, errors.New("input: missing")
	}
	if fm == nil && qm == nil {
		return nil, errors.New("the file holds neither a float nor an int8 model")
	}
	f := &File{Float: fm, Int8: qm}
	if fm != nil {
		fm.Name, fm.Input, fm.Meta = name, input, meta
	}
	if qm != nil {
		qm.Name, qm.Input, qm.Meta = name, input, meta
	}
	if err := validateFile(f); err != nil {
		return nil, err
	}
	return f, nil
}

// keySet detects repeated keys in one map (a key's index in the map's list
// of known keys is its bit; unknown keys are skipped and not tracked).
type keySet uint64

func (s *keySet) add(known []string, k string) error {
	i := slices.Index(known, k)
	if i < 0 {
		return nil
	}
	if *s&(1<<i) != 0 {
		return fmt.Errorf("%s: the key appears twice", k)
	}
	*s |= 1 << i
	return nil
}

// errLayer marks errors that already say which layer they are about.
var errLayer = errors.New("layer error")

type layerErr struct {
	prefix string // "int8 layer 3 features.5"
	err    error
}

func (e *layerErr) Error() string   { return e.prefix + ": " + e.err.Error() }
func (e *layerErr) Unwrap() []error { return []error{e.err, errLayer} }
func layerPrefix(which string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s layer %d", which, i)
	}
	return fmt.Sprintf("%s layer %d %s", which, i, display(name))
}

var floatModelFields = []string{"class", "layers"}

func (d *fileDecoder) floatModel() (*infer.Model, error) {
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	m := &infer.Model{}
	var seen keySet
	hasLayers := false
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(floatModelFields, k)
		}
		if err != nil {
			return nil, err
		}
		switch k {
		case "class":
			m.Class, err = d.str(maxNameLen)
		case "layers":
			hasLayers = true
			var nl int
			if nl, err = d.arrayLen(maxFileLayers); err == nil {
				m.Layers = []infer.Layer{} // grows with the layers really there, not with nl
				for i := range nl {
					var l infer.Layer
					if err := d.floatLayer(&l); err != nil {
						return nil, &layerErr{layerPrefix("float", i, l.Name), err}
					}
					m.Layers = append(m.Layers, l)
				}
			}
		default:
			err = d.skip()
		}
		if err != nil {
			if errors.Is(err, errLayer) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", display(k), err)
		}
	}
	if !hasLayers {
		return nil, errors.New("layers: missing")
	}
	return m, nil
}

var floatLayerFields = []string{"name", "kind", "in", "out", "kh", "kw", "stride", "pad", "out_h", "out_w",
	"p", "eps", "functional", "bias", "weight", "gamma", "beta", "mean", "var", "weight2", "bias2", "role"}

func (d *fileDecoder) floatLayer(l *infer.Layer) error {
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	var seen keySet
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(floatLayerFields, k)
		}
		if err != nil {
			return err
		}
		switch k {
		case "name", "kind", "in", "out", "kh", "kw", "stride", "pad", "out_h", "out_w":
			err = d.shapeField(k, &l.Name, &l.Kind, &l.In, &l.Out, &l.KH, &l.KW, &l.Stride, &l.Pad, &l.OutH, &l.OutW)
		case "p":
			l.P, err = d.float()
		case "eps":
			l.Eps, err = d.float()
		case "functional":
			l.Functional, err = d.bool()
		case "bias":
			// A bool for a layer without bias values, else the values.
			if c, _ := d.peek(); c == msgpcode.True || c == msgpcode.False {
				l.Bias, err = d.bool()
			} else if l.BiasData, err = d.float32s(); l.BiasData != nil {
				l.Bias = true
			}
		case "weight":
			l.Weight, err = d.float32s()
		case "gamma":
			l.Gamma, err = d.float32s()
		case "beta":
			l.Beta, err = d.float32s()
		case "mean":
			l.Mean, err = d.float32s()
		case "var":
			l.Var, err = d.float32s()
		case "weight2":
			l.Weight2, err = d.float32s()
		case "bias2":
			l.Bias2, err = d.float32s()
		case "role":
			var v string
			v, err = d.str(maxNameLen)
			l.Role = infer.Role(v)
		default:
			err = d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}

// shapeField decodes one of the keys float and int8 layers share: the name,
// the kind and the shape fields.
func (d *fileDecoder) shapeField(k string, name *string, kind *infer.Kind, in, out, kh, kw, stride, pad, outH, outW *int) error {
	switch k {
	case "name":
		v, err := d.str(maxNameLen)
		*name = v
		return err
	case "kind":
		v, err := d.str(maxNameLen)
		*kind = infer.Kind(v)
		return err
	}
	var dst *int
	switch k {
	case "in":
		dst = in
	case "out":
		dst = out
	case "kh":
		dst = kh
	case "kw":
		dst = kw
	case "stride":
		dst = stride
	case "pad":
		dst = pad
	case "out_h":
		dst = outH
	default: // "out_w": the callers pass only the shared keys
		dst = outW
	}
	v, err := d.dim()
	*dst = v
	return err
}

// dim decodes a shape field. Decoding only checks that it fits an int32
// (so it is exact on 32-bit boards); validation checks the range.
func (d *fileDecoder) dim() (int, error) {
	v, err := d.int(math.MinInt32, math.MaxInt32)
	return int(v), err
}

var int8ModelFields = []string{"layers"}

func (d *fileDecoder) int8Model() (*infer.QModel, error) {
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	q := &infer.QModel{}
	var seen keySet
	hasLayers := false
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(int8ModelFields, k)
		}
		if err != nil {
			return nil, err
		}
		switch k {
		case "layers":
			hasLayers = true
			var nl int
			if nl, err = d.arrayLen(maxFileLayers); err == nil {
				q.Layers = []infer.QLayer{}
				for i := range nl {
					var l infer.QLayer
					if err := d.int8Layer(&l); err != nil {
						return nil, &layerErr{layerPrefix("int8", i, l.Name), err}
					}
					q.Layers = append(q.Layers, l)
				}
			}
		default:
			err = d.skip()
		}
		if err != nil {
			if errors.Is(err, errLayer) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", display(k), err)
		}
	}
	if !hasLayers {
		return nil, errors.New("layers: missing")
	}
	return q, nil
}

var int8LayerFields = []string{"name", "kind", "in", "out", "kh", "kw", "stride", "pad", "out_h", "out_w",
	"relu", "logits", "in_scale", "out_scale", "in_zero", "out_zero",
	"weight", "bias", "w_scale", "mult", "shift", "pad_value",
	"se_weight", "se_bias", "se_weight2", "se_bias2", "role"}

func (d *fileDecoder) int8Layer(l *infer.QLayer) error {
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	var seen keySet
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(int8LayerFields, k)
		}
		if err != nil {
			return err
		}
		switch k {
		case "name", "kind", "in", "out", "kh", "kw", "stride", "pad", "out_h", "out_w":
			err = d.shapeField(k, &l.Name, &l.Kind, &l.In, &l.Out, &l.KH, &l.KW, &l.Stride, &l.Pad, &l.OutH, &l.OutW)
		case "relu":
			l.ReLU, err = d.bool()
		case "logits":
			l.Logits, err = d.bool()
		case "in_scale":
			l.InScale, err = d.float32()
		case "out_scale":
			l.OutScale, err = d.float32()
		case "in_zero", "out_zero":
			var v int64
			v, err = d.int(math.MinInt32, math.MaxInt32)
			if k == "in_zero" {
				l.InZero = int32(v)
			} else {
				l.OutZero = int32(v)
			}
		case "weight":
			l.Weight, err = d.int8s()
		case "pad_value":
			l.PadValue, err = d.int8s()
		case "bias":
			l.Bias, err = d.int32s()
		case "mult":
			l.Mult, err = d.int32s()
		case "shift":
			l.Shift, err = d.int32s()
		case "w_scale":
			l.WScale, err = d.float32s()
		case "se_weight":
			l.SEWeight, err = d.float32s()
		case "se_bias":
			l.SEBias, err = d.float32s()
		case "se_weight2":
			l.SEWeight2, err = d.float32s()
		case "se_bias2":
			l.SEBias2, err = d.float32s()
		case "role":
			var v string
			v, err = d.str(maxNameLen)
			l.Role = infer.Role(v)
		default:
			err = d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}

func (d *fileDecoder) shape() (infer.Shape, error) {
	n, err := d.arrayLen(3)
	if err != nil {
		return infer.Shape{}, err
	}
	if n != 3 {
		return infer.Shape{}, fmt.Errorf("%d values, want [C, H, W]", n)
	}
	var v [3]int64
	for i := range v {
		if v[i], err = d.int(math.MinInt32, math.MaxInt32); err != nil {
			return infer.Shape{}, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return infer.Shape{C: int(v[0]), H: int(v[1]), W: int(v[2])}, nil
}

var specFields = []string{"channel_order", "mean", "std", "resize", "resize_shorter"}

func (d *fileDecoder) spec(s *infer.InputSpec) error {
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	var seen keySet
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(specFields, k)
		}
		if err != nil {
			return err
		}
		switch k {
		case "channel_order":
			s.ChannelOrder, err = d.str(maxNameLen)
		case "mean":
			s.Mean, err = d.floatArray(infer.MaxDim)
		case "std":
			s.Std, err = d.floatArray(infer.MaxDim)
		case "resize":
			s.Resize, err = d.str(maxNameLen)
		case "resize_shorter":
			var v int64
			v, err = d.int(math.MinInt32, math.MaxInt32)
			s.ResizeShorter = int(v)
		default:
			err = d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}

var provenanceFields = []string{"source_file", "source_sha256", "calibration", "percentile", "samples",
	"version", "created", "notes"}

func (d *fileDecoder) provenance(p *infer.Provenance) error {
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	var seen keySet
	for range n {
		k, err := d.key()
		if err == nil {
			err = seen.add(provenanceFields, k)
		}
		if err != nil {
			return err
		}
		switch k {
		case "source_file":
			p.SourceFile, err = d.str(-1)
		case "source_sha256":
			p.SourceSHA256, err = d.str(-1)
		case "calibration":
			p.Calibration, err = d.str(-1)
		case "percentile":
			p.Percentile, err = d.float()
		case "samples":
			var v int64
			v, err = d.int(math.MinInt32, math.MaxInt32)
			p.Samples = int(v)
		case "version":
			p.Version, err = d.str(-1)
		case "created":
			p.Created, err = d.str(-1)
		case "notes":
			p.Notes, err = d.str(-1)
		default:
			err = d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}
