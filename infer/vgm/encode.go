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
	if spec := encodeRecord(e, specFields, &meta.Spec); len(spec) > 0 {
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
	if prov := encodeRecord(e, provenanceFields, &meta.Prov); len(prov) > 0 {
		top = append(top, field{"provenance", func() error { return e.writeMap(prov) }})
	}
	if m := f.Float; m != nil {
		top = append(top, field{"float", func() error { return e.writeMap(encodeRecord(e, floatModelFields, m)) }})
	}
	if q := f.Int8; q != nil {
		top = append(top, field{"int8", func() error { return e.writeMap(encodeRecord(e, int8ModelFields, q)) }})
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
