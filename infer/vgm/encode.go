package vgm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"unsafe"

	"github.com/vggedge/vggedge/infer"
	"github.com/vmihailenco/msgpack/v5"
)

func encodeFile(w io.Writer, f *File) error {
	g, err := normalizeFile(f)
	if err != nil {
		return err
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	e := &fileEncoder{e: msgpack.NewEncoder(bw), w: bw}
	if err := e.file(g); err != nil {
		return err
	}
	return bw.Flush()
}

// normalizeFile returns the File as it will be written (and read back):
// both models carry the shared name, input and meta, the float model is
// resolved, and everything is validated. f is not modified.
func normalizeFile(f *File) (*File, error) {
	if f == nil || (f.Float == nil && f.Int8 == nil) {
		return nil, errors.New("no model to write")
	}
	g := &File{}
	if f.Float != nil {
		g.Float = f.Float.Clone()
	}
	if f.Int8 != nil {
		q := *f.Int8
		g.Int8 = &q
	}
	if g.Float != nil && g.Int8 != nil {
		fm, q := g.Float, g.Int8
		if fm.Input != q.Input {
			return nil, fmt.Errorf("the float model's input %v differs from the int8 model's %v", fm.Input, q.Input)
		}
		if fm.Name != "" && fm.Name != q.Name {
			return nil, fmt.Errorf("the float model is called %s, the int8 model %s", display(fm.Name), display(q.Name))
		}
		if !reflect.DeepEqual(fm.Meta.Spec, infer.InputSpec{}) && !reflect.DeepEqual(fm.Meta.Spec, q.Meta.Spec) {
			return nil, errors.New("the float and int8 models have different input specs")
		}
		if fm.Meta.Labels != nil && !slices.Equal(fm.Meta.Labels, q.Meta.Labels) {
			return nil, errors.New("the float and int8 models have different labels")
		}
		fm.Name, fm.Meta = q.Name, q.Meta
	}
	if err := validateFile(g); err != nil {
		return nil, err
	}
	return g, nil
}

// countingWriter refuses to write more than Load would read.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > MaxFileSize {
		return 0, fmt.Errorf("the model file would be larger than the %d bytes a model file may have", MaxFileSize)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type fileEncoder struct {
	e   *msgpack.Encoder
	w   *bufio.Writer // the Encoder's writer: raw tensor bytes go straight to it
	buf []byte        // scratch for little-endian conversion
}

// field is one map entry; a map's entries are collected first because
// msgpack writes the count before them.
type field struct {
	key string
	put func() error
}

func (e *fileEncoder) writeMap(fields []field) error {
	if err := e.e.EncodeMapLen(len(fields)); err != nil {
		return err
	}
	for _, f := range fields {
		if err := e.e.EncodeString(f.key); err != nil {
			return err
		}
		if err := f.put(); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return nil
}

func (e *fileEncoder) str(s string) func() error { return func() error { return e.e.EncodeString(s) } }
func (e *fileEncoder) int(v int64) func() error  { return func() error { return e.e.EncodeInt(v) } }
func (e *fileEncoder) bool(v bool) func() error  { return func() error { return e.e.EncodeBool(v) } }
func (e *fileEncoder) f64(v float64) func() error {
	return func() error { return e.e.EncodeFloat64(v) }
}
func (e *fileEncoder) f32(v float32) func() error {
	return func() error { return e.e.EncodeFloat32(v) }
}
func (e *fileEncoder) f32s(v []float32) func() error {
	return func() error { return e.words(len(v), func(i int) uint32 { return math.Float32bits(v[i]) }) }
}
func (e *fileEncoder) i32s(v []int32) func() error {
	return func() error { return e.words(len(v), func(i int) uint32 { return uint32(v[i]) }) }
}

// i8s writes int8 values as their bytes, without a copy.
func (e *fileEncoder) i8s(v []int8) func() error {
	return func() error {
		if err := e.binLen(len(v)); err != nil {
			return err
		}
		_, err := e.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)))
		return err
	}
}

func (e *fileEncoder) binLen(n int) error {
	if uint64(n) > math.MaxUint32 {
		return fmt.Errorf("%d bytes: larger than a msgpack bin can be", n)
	}
	return e.e.EncodeBytesLen(n)
}

// words writes n 4-byte values little-endian, through a small buffer so a
// large tensor is not copied whole.
func (e *fileEncoder) words(n int, at func(int) uint32) error {
	if err := e.binLen(4 * n); err != nil {
		return err
	}
	if e.buf == nil {
		e.buf = make([]byte, 32<<10)
	}
	for i := 0; i < n; {
		k := min(n-i, len(e.buf)/4)
		for j := range k {
			binary.LittleEndian.PutUint32(e.buf[4*j:], at(i+j))
		}
		if _, err := e.w.Write(e.buf[:4*k]); err != nil {
			return err
		}
		i += k
	}
	return nil
}

func (e *fileEncoder) file(f *File) error {
	name, input, meta := f.Name(), infer.Shape{}, f.Meta()
	if f.Int8 != nil {
		input = f.Int8.Input
	} else {
		input = f.Float.Input
	}
	top := []field{
		{"format", e.str(FileMagic)},
		{"version", e.int(FileVersion)},
	}
	if name != "" {
		top = append(top, field{"name", e.str(name)})
	}
	top = append(top, field{"input", func() error {
		if err := e.e.EncodeArrayLen(3); err != nil {
			return err
		}
		for _, v := range input.Dims() {
			if err := e.e.EncodeInt(int64(v)); err != nil {
				return err
			}
		}
		return nil
	}})
	if spec := e.spec(&meta.Spec); len(spec) > 0 {
		top = append(top, field{"spec", func() error { return e.writeMap(spec) }})
	}
	if meta.Labels != nil {
		top = append(top, field{"labels", func() error {
			if err := e.e.EncodeArrayLen(len(meta.Labels)); err != nil {
				return err
			}
			for _, l := range meta.Labels {
				if err := e.e.EncodeString(l); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if prov := e.provenance(&meta.Prov); len(prov) > 0 {
		top = append(top, field{"provenance", func() error { return e.writeMap(prov) }})
	}
	if m := f.Float; m != nil {
		top = append(top, field{"float", func() error {
			var mf []field
			if m.Class != "" {
				mf = append(mf, field{"class", e.str(m.Class)})
			}
			mf = append(mf, field{"layers", func() error {
				if err := e.e.EncodeArrayLen(len(m.Layers)); err != nil {
					return err
				}
				for i := range m.Layers {
					if err := e.writeMap(e.floatLayer(&m.Layers[i])); err != nil {
						return fmt.Errorf("[%d]: %w", i, err)
					}
				}
				return nil
			}})
			return e.writeMap(mf)
		}})
	}
	if q := f.Int8; q != nil {
		top = append(top, field{"int8", func() error {
			return e.writeMap([]field{{"layers", func() error {
				if err := e.e.EncodeArrayLen(len(q.Layers)); err != nil {
					return err
				}
				for i := range q.Layers {
					if err := e.writeMap(e.int8Layer(&q.Layers[i])); err != nil {
						return fmt.Errorf("[%d]: %w", i, err)
					}
				}
				return nil
			}}})
		}})
	}
	return e.writeMap(top)
}

func (e *fileEncoder) floatArray(v []float32) func() error {
	return func() error {
		if err := e.e.EncodeArrayLen(len(v)); err != nil {
			return err
		}
		for _, x := range v {
			if err := e.e.EncodeFloat32(x); err != nil {
				return err
			}
		}
		return nil
	}
}

func (e *fileEncoder) spec(s *infer.InputSpec) []field {
	var fs []field
	if s.ChannelOrder != "" {
		fs = append(fs, field{"channel_order", e.str(s.ChannelOrder)})
	}
	if s.Mean != nil {
		fs = append(fs, field{"mean", e.floatArray(s.Mean)})
	}
	if s.Std != nil {
		fs = append(fs, field{"std", e.floatArray(s.Std)})
	}
	if s.Resize != "" {
		fs = append(fs, field{"resize", e.str(s.Resize)})
	}
	if s.ResizeShorter != 0 {
		fs = append(fs, field{"resize_shorter", e.int(int64(s.ResizeShorter))})
	}
	return fs
}

func (e *fileEncoder) provenance(p *infer.Provenance) []field {
	var fs []field
	addStr := func(k, v string) {
		if v != "" {
			fs = append(fs, field{k, e.str(v)})
		}
	}
	addStr("source_file", p.SourceFile)
	addStr("source_sha256", p.SourceSHA256)
	addStr("calibration", p.Calibration)
	if p.Percentile != 0 {
		fs = append(fs, field{"percentile", e.f64(p.Percentile)})
	}
	if p.Samples != 0 {
		fs = append(fs, field{"samples", e.int(int64(p.Samples))})
	}
	addStr("version", p.Version)
	addStr("created", p.Created)
	addStr("notes", p.Notes)
	return fs
}

// dims are a layer's shape fields, zeros left out.
func (e *fileEncoder) dims(in, out, kh, kw, stride, pad, outH, outW int) []field {
	var fs []field
	for _, d := range []struct {
		key string
		v   int
	}{{"in", in}, {"out", out}, {"kh", kh}, {"kw", kw}, {"stride", stride}, {"pad", pad}, {"out_h", outH}, {"out_w", outW}} {
		if d.v != 0 {
			fs = append(fs, field{d.key, e.int(int64(d.v))})
		}
	}
	return fs
}

func (e *fileEncoder) floatLayer(l *infer.Layer) []field {
	fs := []field{{"name", e.str(l.Name)}, {"kind", e.str(string(l.Kind))}}
	fs = append(fs, e.dims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW)...)
	if l.P != 0 {
		fs = append(fs, field{"p", e.f64(l.P)})
	}
	if l.Eps != 0 {
		fs = append(fs, field{"eps", e.f64(l.Eps)})
	}
	if l.Functional {
		fs = append(fs, field{"functional", e.bool(true)})
	}
	switch {
	case l.BiasData != nil:
		fs = append(fs, field{"bias", e.f32s(l.BiasData)})
	case l.Bias || l.Kind == infer.Conv2d || l.Kind == infer.Linear:
		fs = append(fs, field{"bias", e.bool(l.Bias)})
	}
	for _, t := range []struct {
		key string
		v   []float32
	}{{"weight", l.Weight}, {"gamma", l.Gamma}, {"beta", l.Beta}, {"mean", l.Mean}, {"var", l.Var},
		{"weight2", l.Weight2}, {"bias2", l.Bias2}} {
		if t.v != nil {
			fs = append(fs, field{t.key, e.f32s(t.v)})
		}
	}
	if l.Role != "" {
		fs = append(fs, field{"role", e.str(string(l.Role))})
	}
	return fs
}

func (e *fileEncoder) int8Layer(l *infer.QLayer) []field {
	fs := []field{{"name", e.str(l.Name)}, {"kind", e.str(string(l.Kind))}}
	fs = append(fs, e.dims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW)...)
	if l.ReLU {
		fs = append(fs, field{"relu", e.bool(true)})
	}
	if l.Logits {
		fs = append(fs, field{"logits", e.bool(true)})
	}
	if l.InScale != 0 {
		fs = append(fs, field{"in_scale", e.f32(l.InScale)})
	}
	if l.OutScale != 0 {
		fs = append(fs, field{"out_scale", e.f32(l.OutScale)})
	}
	if l.InZero != 0 {
		fs = append(fs, field{"in_zero", e.int(int64(l.InZero))})
	}
	if l.OutZero != 0 {
		fs = append(fs, field{"out_zero", e.int(int64(l.OutZero))})
	}
	if l.Weight != nil {
		fs = append(fs, field{"weight", e.i8s(l.Weight)})
	}
	if l.Bias != nil {
		fs = append(fs, field{"bias", e.i32s(l.Bias)})
	}
	if l.WScale != nil {
		fs = append(fs, field{"w_scale", e.f32s(l.WScale)})
	}
	if l.Mult != nil {
		fs = append(fs, field{"mult", e.i32s(l.Mult)})
	}
	if l.Shift != nil {
		fs = append(fs, field{"shift", e.i32s(l.Shift)})
	}
	if l.PadValue != nil {
		fs = append(fs, field{"pad_value", e.i8s(l.PadValue)})
	}
	for _, t := range []struct {
		key string
		v   []float32
	}{{"se_weight", l.SEWeight}, {"se_bias", l.SEBias}, {"se_weight2", l.SEWeight2}, {"se_bias2", l.SEBias2}} {
		if t.v != nil {
			fs = append(fs, field{t.key, e.f32s(t.v)})
		}
	}
	if l.Role != "" {
		fs = append(fs, field{"role", e.str(string(l.Role))})
	}
	return fs
}
