package vgm

import (
	"errors"
	"fmt"
	"math"

	"github.com/vggedge/vggedge/infer"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The records of the model file (a layer, the input spec, the
// provenance, a model) are each one table of fields: the key, how it is
// decoded and how it is encoded, side by side, so the reader and the
// writer cannot disagree on a key, and the float and int8 layers share the
// fields they have in common. A table's order is the order Encode writes
// the keys in; the format comment in doc.go lists every key of every table
// (TestDocListsEveryKey).

// recordField is one key of a record R.
type recordField[R any] struct {
	key string
	get func(d *fileDecoder, r *R) error
	// put returns what writes the value, or nil to leave the key out
	// (zero values are left out, except where the format says otherwise).
	put func(e *fileEncoder, r *R) func() error
}

// decodeRecord reads a msgpack map into r: known keys through their
// field, once each; unknown keys are skipped.
func decodeRecord[R any](d *fileDecoder, fields []recordField[R], r *R) error {
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	var seen uint64
	for range n {
		k, err := d.key()
		if err != nil {
			return err
		}
		i := fieldIndex(fields, k)
		if i < 0 {
			err = d.skip()
		} else if seen&(1<<i) != 0 {
			return fmt.Errorf("%s: the key appears twice", k)
		} else {
			seen |= 1 << i
			err = fields[i].get(d, r)
		}
		if err != nil {
			if errors.Is(err, errLayer) {
				return err // already "float layer 3 …"
			}
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}

func fieldIndex[R any](fields []recordField[R], k string) int {
	for i := range fields {
		if fields[i].key == k {
			return i
		}
	}
	return -1
}

// encodeRecord is r's map entries, in the table's order.
func encodeRecord[R any](e *fileEncoder, fields []recordField[R], r *R) []field {
	var fs []field
	for i := range fields {
		if put := fields[i].put(e, r); put != nil {
			fs = append(fs, field{fields[i].key, put})
		}
	}
	return fs
}

// Field constructors, by the value's type in the file.

func strField[R any, S ~string](key string, limit int, at func(*R) *S) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) error {
			v, err := d.str(limit)
			*at(r) = S(v)
			return err
		},
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != "" {
				return e.str(string(v))
			}
			return nil
		}}
}

// alwaysStr is a string field written even when empty (a layer's name and
// kind).
func alwaysStr[R any, S ~string](key string, at func(*R) *S) recordField[R] {
	f := strField(key, maxNameLen, at)
	f.put = func(e *fileEncoder, r *R) func() error { return e.str(string(*at(r))) }
	return f
}

// intField is an integer that fits an int32 (exact on 32-bit boards;
// validation checks the range).
func intField[R any, I ~int | ~int32](key string, at func(*R) *I) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) error {
			v, err := d.int(math.MinInt32, math.MaxInt32)
			*at(r) = I(v)
			return err
		},
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != 0 {
				return e.int(int64(v))
			}
			return nil
		}}
}

func f64Field[R any](key string, at func(*R) *float64) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.float(); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != 0 {
				return e.f64(v)
			}
			return nil
		}}
}

func f32Field[R any](key string, at func(*R) *float32) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.float32(); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != 0 {
				return e.f32(v)
			}
			return nil
		}}
}

// boolField is written only when true.
func boolField[R any](key string, at func(*R) *bool) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.bool(); return err },
		func(e *fileEncoder, r *R) func() error {
			if *at(r) {
				return e.bool(true)
			}
			return nil
		}}
}

// floatArray is a short msgpack array of floats (a spec's mean and std).
func floatArrayField[R any](key string, at func(*R) *[]float32) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.floatArray(infer.MaxDim); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != nil {
				return e.floatArray(v)
			}
			return nil
		}}
}

// Tensors: a bin of little-endian elements (int8 as raw bytes); nil is an
// absent tensor.

func f32sField[R any](key string, at func(*R) *[]float32) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.float32s(); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != nil {
				return e.f32s(v)
			}
			return nil
		}}
}

func i32sField[R any](key string, at func(*R) *[]int32) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.int32s(); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != nil {
				return e.i32s(v)
			}
			return nil
		}}
}

func i8sField[R any](key string, at func(*R) *[]int8) recordField[R] {
	return recordField[R]{key,
		func(d *fileDecoder, r *R) (err error) { *at(r), err = d.int8s(); return err },
		func(e *fileEncoder, r *R) func() error {
			if v := *at(r); v != nil {
				return e.i8s(v)
			}
			return nil
		}}
}

// The fields float and int8 layers share: name and kind (always written),
// then the shape (zeros left out).
type layerShape struct {
	name                                     *string
	kind                                     *infer.Kind
	in, out, kh, kw, stride, pad, outH, outW *int
}

func shapeFields[R any](of func(*R) layerShape) []recordField[R] {
	dim := func(key string, at func(layerShape) *int) recordField[R] {
		return intField(key, func(r *R) *int { return at(of(r)) })
	}
	return []recordField[R]{
		alwaysStr("name", func(r *R) *string { return of(r).name }),
		alwaysStr("kind", func(r *R) *infer.Kind { return of(r).kind }),
		dim("in", func(s layerShape) *int { return s.in }),
		dim("out", func(s layerShape) *int { return s.out }),
		dim("kh", func(s layerShape) *int { return s.kh }),
		dim("kw", func(s layerShape) *int { return s.kw }),
		dim("stride", func(s layerShape) *int { return s.stride }),
		dim("pad", func(s layerShape) *int { return s.pad }),
		dim("out_h", func(s layerShape) *int { return s.outH }),
		dim("out_w", func(s layerShape) *int { return s.outW }),
	}
}

var floatLayerFields = append(shapeFields(func(l *infer.Layer) layerShape {
	return layerShape{&l.Name, &l.Kind, &l.In, &l.Out, &l.KH, &l.KW, &l.Stride, &l.Pad, &l.OutH, &l.OutW}
}),
	f64Field("p", func(l *infer.Layer) *float64 { return &l.P }),
	f64Field("eps", func(l *infer.Layer) *float64 { return &l.Eps }),
	boolField("functional", func(l *infer.Layer) *bool { return &l.Functional }),
	// bias: a bool for a layer without bias values (always written for
	// conv2d and linear), else the values, which mean bias=true.
	recordField[infer.Layer]{"bias",
		func(d *fileDecoder, l *infer.Layer) (err error) {
			if c, _ := d.peek(); c == msgpcode.True || c == msgpcode.False {
				l.Bias, err = d.bool()
			} else if l.BiasData, err = d.float32s(); l.BiasData != nil {
				l.Bias = true
			}
			return err
		},
		func(e *fileEncoder, l *infer.Layer) func() error {
			switch {
			case l.BiasData != nil:
				return e.f32s(l.BiasData)
			case l.Bias || l.Kind == infer.Conv2d || l.Kind == infer.Linear:
				return e.bool(l.Bias)
			}
			return nil
		}},
	f32sField("weight", func(l *infer.Layer) *[]float32 { return &l.Weight }),
	f32sField("gamma", func(l *infer.Layer) *[]float32 { return &l.Gamma }),
	f32sField("beta", func(l *infer.Layer) *[]float32 { return &l.Beta }),
	f32sField("mean", func(l *infer.Layer) *[]float32 { return &l.Mean }),
	f32sField("var", func(l *infer.Layer) *[]float32 { return &l.Var }),
	f32sField("weight2", func(l *infer.Layer) *[]float32 { return &l.Weight2 }),
	f32sField("bias2", func(l *infer.Layer) *[]float32 { return &l.Bias2 }),
	strField("role", maxNameLen, func(l *infer.Layer) *infer.Role { return &l.Role }),
)

var int8LayerFields = append(shapeFields(func(l *infer.QLayer) layerShape {
	return layerShape{&l.Name, &l.Kind, &l.In, &l.Out, &l.KH, &l.KW, &l.Stride, &l.Pad, &l.OutH, &l.OutW}
}),
	boolField("relu", func(l *infer.QLayer) *bool { return &l.ReLU }),
	boolField("logits", func(l *infer.QLayer) *bool { return &l.Logits }),
	f32Field("in_scale", func(l *infer.QLayer) *float32 { return &l.InScale }),
	f32Field("out_scale", func(l *infer.QLayer) *float32 { return &l.OutScale }),
	intField("in_zero", func(l *infer.QLayer) *int32 { return &l.InZero }),
	intField("out_zero", func(l *infer.QLayer) *int32 { return &l.OutZero }),
	i8sField("weight", func(l *infer.QLayer) *[]int8 { return &l.Weight }),
	i32sField("bias", func(l *infer.QLayer) *[]int32 { return &l.Bias }),
	f32sField("w_scale", func(l *infer.QLayer) *[]float32 { return &l.WScale }),
	i32sField("mult", func(l *infer.QLayer) *[]int32 { return &l.Mult }),
	i32sField("shift", func(l *infer.QLayer) *[]int32 { return &l.Shift }),
	i8sField("pad_value", func(l *infer.QLayer) *[]int8 { return &l.PadValue }),
	f32sField("se_weight", func(l *infer.QLayer) *[]float32 { return &l.SEWeight }),
	f32sField("se_bias", func(l *infer.QLayer) *[]float32 { return &l.SEBias }),
	f32sField("se_weight2", func(l *infer.QLayer) *[]float32 { return &l.SEWeight2 }),
	f32sField("se_bias2", func(l *infer.QLayer) *[]float32 { return &l.SEBias2 }),
	strField("role", maxNameLen, func(l *infer.QLayer) *infer.Role { return &l.Role }),
)

var specFields = []recordField[infer.InputSpec]{
	strField("channel_order", maxNameLen, func(s *infer.InputSpec) *string { return &s.ChannelOrder }),
	floatArrayField("mean", func(s *infer.InputSpec) *[]float32 { return &s.Mean }),
	floatArrayField("std", func(s *infer.InputSpec) *[]float32 { return &s.Std }),
	strField("resize", maxNameLen, func(s *infer.InputSpec) *string { return &s.Resize }),
	intField("resize_shorter", func(s *infer.InputSpec) *int { return &s.ResizeShorter }),
	strField("resize_filter", maxNameLen, func(s *infer.InputSpec) *string { return &s.ResizeFilter }),
}

// Provenance strings have no length limit of their own (the file's size
// bounds them).
var provenanceFields = []recordField[infer.Provenance]{
	strField("source_file", -1, func(p *infer.Provenance) *string { return &p.SourceFile }),
	strField("source_sha256", -1, func(p *infer.Provenance) *string { return &p.SourceSHA256 }),
	strField("calibration", -1, func(p *infer.Provenance) *string { return &p.Calibration }),
	f64Field("percentile", func(p *infer.Provenance) *float64 { return &p.Percentile }),
	intField("samples", func(p *infer.Provenance) *int { return &p.Samples }),
	strField("version", -1, func(p *infer.Provenance) *string { return &p.Version }),
	strField("created", -1, func(p *infer.Provenance) *string { return &p.Created }),
	strField("notes", -1, func(p *infer.Provenance) *string { return &p.Notes }),
}

// layersField is a model's "layers": an array of layer records, each
// decoded with the layer table; errors name the layer ("int8 layer 3
// features.5: …").
func layersField[M, L any](which string, fields []recordField[L], at func(*M) *[]L, name func(*L) string) recordField[M] {
	return recordField[M]{"layers",
		func(d *fileDecoder, m *M) error {
			n, err := d.arrayLen(maxFileLayers)
			if err != nil {
				return err
			}
			layers := []L{} // grows with the layers really there, not with n
			for i := range n {
				// Decoded in place: a local would escape to the heap
				// through the fields' func values.
				layers = append(layers, *new(L))
				if err := decodeRecord(d, fields, &layers[i]); err != nil {
					return &layerErr{layerPrefix(which, i, name(&layers[i])), err}
				}
			}
			*at(m) = layers
			return nil
		},
		func(e *fileEncoder, m *M) func() error {
			layers := *at(m)
			return func() error {
				if err := e.e.EncodeArrayLen(len(layers)); err != nil {
					return err
				}
				for i := range layers {
					if err := e.writeMap(encodeRecord(e, fields, &layers[i])); err != nil {
						return fmt.Errorf("[%d]: %w", i, err)
					}
				}
				return nil
			}
		}}
}

var floatModelFields = []recordField[infer.Model]{
	strField("class", maxNameLen, func(m *infer.Model) *string { return &m.Class }),
	layersField("float", floatLayerFields, func(m *infer.Model) *[]infer.Layer { return &m.Layers }, func(l *infer.Layer) string { return l.Name }),
}

var int8ModelFields = []recordField[infer.QModel]{
	layersField("int8", int8LayerFields, func(q *infer.QModel) *[]infer.QLayer { return &q.Layers }, func(l *infer.QLayer) string { return l.Name }),
}
