package infer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/vggedge/vggedge/internal/atomicfile"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// # Model file format, version 1
//
// A model file (".vgm") is a single msgpack map, and nothing after it:
//
//	{
//	  "format":  "vggedge-model",   required, the first key (the magic)
//	  "version": 1,                 required, the second key
//	  "name":    str,               the model's name ("vgg16", "digits")
//	  "input":   [C, H, W],         required, ints
//	  "spec": {                     how camera pixels become the input
//	    "channel_order":  "RGB" | "BGR" | "GRAY",
//	    "mean":           [float, …],   one per channel, on pixels in [0, 1]
//	    "std":            [float, …],
//	    "resize":         "resize-crop" | "stretch",
//	    "resize_shorter": int
//	  },
//	  "labels": [str, …],           one per output
//	  "provenance": {
//	    "source_file": str, "source_sha256": str, "calibration": str,
//	    "percentile": float, "samples": int, "version": str,
//	    "created": str (RFC 3339), "notes": str
//	  },
//	  "float": {"class": str, "layers": [layer, …]},   the float32 model
//	  "int8":  {"layers": [layer, …]}                  the int8 model
//	}
//
// At least one of "float" and "int8" is present; when both are, they share
// name, input, spec, labels and provenance (the provenance is the int8
// model's: it records the float source and the calibration).
//
// A layer is a map with the fields of a Layer (float) or QLayer (int8), in
// this order; "name" and "kind" (a Kind: "conv2d", "linear", …) are always
// written, the others when they are not zero or nil:
//
//	both:   name, kind (str); in, out, kh, kw, stride, pad, out_h, out_w (int)
//	float:  p, eps (float64); functional (bool);
//	        bias: a bool (always written for conv2d and linear), or the
//	              bias values as a bin of float32, which means bias=true;
//	        weight, gamma, beta, mean, var, weight2, bias2: bin of float32
//	        (weight2 and bias2: a squeezeexcite's second 1x1);
//	        role (str)
//	int8:   relu, logits (bool); in_scale, out_scale (float32);
//	        in_zero, out_zero (int);
//	        weight: bin of int8; bias: bin of int32; w_scale: bin of float32;
//	        mult, shift: bin of int32; pad_value: bin of int8;
//	        se_weight, se_bias, se_weight2, se_bias2: bin of float32 (a
//	        squeezeexcite's float excitation); role (str)
//
// "role" marks a layer vggedge reduce inserted: "reduce", "low-rank" or
// "restore" (see Role). Role and the squeezeexcite kind were added within
// version 1: an older reader skips "role" (a reduced model is an ordinary
// sequential model) and rejects the unknown kind by name.
//
// Tensors are msgpack bin in the layout of the Go field (Conv2d weights
// OIHW, Linear [Out][In]): int8 as raw bytes, float32 and int32
// little-endian, so a bin's length is a whole number of elements; nil reads
// as an absent tensor, an empty bin as an empty one. Scalar floats may be
// written as float32, float64 or integers, integers in any msgpack integer
// format. Strings are UTF-8 without control characters (notes may have
// newlines and tabs).
//
// Readers skip keys they do not know, so later versions may add keys; a
// change that older readers would misread raises "version", and a reader
// refuses versions newer than its own (which is why "format" and "version"
// come first). Keys must be strings and may not repeat.
//
// Limits: files up to MaxFileSize, at most 4096 layers and 2^20 labels,
// names up to 1024 bytes; every size fits MaxDim. EncodeFile writes keys in
// the order listed here and integers in their shortest form, so equal
// models give equal bytes.

const (
	// FileMagic is the "format" value of a model file.
	FileMagic = "vggedge-model"
	// FileVersion is the format version this build writes and the newest it
	// reads.
	FileVersion = 1
	// MaxFileSize bounds what LoadFile reads; VGG16 in float32 is 0.55 GB.
	MaxFileSize int64 = 4 << 30

	maxFileLayers = 4096
	maxFileLabels = 1 << 20
	maxNameLen    = 1024
)

// File is what a model file holds: a float model, an int8 model, or both (an
// int8 model with its float source). After decoding, both share Name, Input
// and Meta.
type File struct {
	Float *Model
	Int8  *QModel
}

// Name is the model's name, from whichever model is present.
func (f *File) Name() string {
	switch {
	case f == nil:
		return ""
	case f.Int8 != nil:
		return f.Int8.Name
	case f.Float != nil:
		return f.Float.Name
	}
	return ""
}

// Meta is the model's input spec, labels and provenance, from whichever
// model is present (the int8 model's when there are both).
func (f *File) Meta() Meta {
	switch {
	case f == nil:
		return Meta{}
	case f.Int8 != nil:
		return f.Int8.Meta
	case f.Float != nil:
		return f.Float.Meta
	}
	return Meta{}
}

// ---------------------------------------------------------------- loading

// LoadFile reads and decodes a model file. Files larger than MaxFileSize
// are refused before they are read.
func LoadFile(path string) (*File, error) {
	fail := func(err error) (*File, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fail(err)
	}
	if st.IsDir() {
		return fail(errors.New("is a directory"))
	}
	if st.Size() > MaxFileSize || st.Size() > math.MaxInt-bytes.MinRead { // the latter on 32-bit boards
		return fail(fmt.Errorf("%d bytes: larger than the %d bytes a model file may have", st.Size(), MaxFileSize))
	}
	// Size the buffer from Stat but read through a limit: the file may
	// grow, or Stat may not know its size (a pipe).
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead) // ReadFrom wants MinRead spare to see EOF without growing
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxFileSize+1)); err != nil {
		return fail(err)
	}
	if int64(buf.Len()) > MaxFileSize {
		return fail(fmt.Errorf("larger than the %d bytes a model file may have", MaxFileSize))
	}
	return DecodeFile(buf.Bytes(), path)
}

// DecodeFile decodes and validates a model file held in data; name is the
// file's name for error messages. Every error is one line naming the file,
// the layer and the field.
//
// The int8 tensors (weight, pad_value) of the result alias data instead of
// being copied, so the File keeps data alive and data must not be modified
// afterwards. Everything else is copied.
//
// data may be hostile: every length is checked against the bytes left
// before anything is allocated, so a file cannot make DecodeFile allocate
// much more than its own size.
func DecodeFile(data []byte, name string) (f *File, err error) {
	defer func() {
		// A last resort: the decoder checks before it indexes, and a
		// panic here is a bug to fix, but a bad file must not crash the
		// device.
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("load %s: malformed model file (decoder bug: %v)", name, p)
		}
	}()
	f, err = decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return f, nil
}

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
		input          Shape
		hasInput       bool
		meta           Meta
		fm             *Model
		qm             *QModel
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

func (d *fileDecoder) floatModel() (*Model, error) {
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	m := &Model{}
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
				m.Layers = []Layer{} // grows with the layers really there, not with nl
				for i := range nl {
					var l Layer
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

func (d *fileDecoder) floatLayer(l *Layer) error {
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
			l.Role = Role(v)
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
func (d *fileDecoder) shapeField(k string, name *string, kind *Kind, in, out, kh, kw, stride, pad, outH, outW *int) error {
	switch k {
	case "name":
		v, err := d.str(maxNameLen)
		*name = v
		return err
	case "kind":
		v, err := d.str(maxNameLen)
		*kind = Kind(v)
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

func (d *fileDecoder) int8Model() (*QModel, error) {
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	q := &QModel{}
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
				q.Layers = []QLayer{}
				for i := range nl {
					var l QLayer
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

func (d *fileDecoder) int8Layer(l *QLayer) error {
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
			l.Role = Role(v)
		default:
			err = d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(k), err)
		}
	}
	return nil
}

func (d *fileDecoder) shape() (Shape, error) {
	n, err := d.arrayLen(3)
	if err != nil {
		return Shape{}, err
	}
	if n != 3 {
		return Shape{}, fmt.Errorf("%d values, want [C, H, W]", n)
	}
	var v [3]int64
	for i := range v {
		if v[i], err = d.int(math.MinInt32, math.MaxInt32); err != nil {
			return Shape{}, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return Shape{int(v[0]), int(v[1]), int(v[2])}, nil
}

var specFields = []string{"channel_order", "mean", "std", "resize", "resize_shorter"}

func (d *fileDecoder) spec(s *InputSpec) error {
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
			s.Mean, err = d.floatArray(MaxDim)
		case "std":
			s.Std, err = d.floatArray(MaxDim)
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

func (d *fileDecoder) provenance(p *Provenance) error {
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

// ------------------------------------------------------- msgpack reading

// fileDecoder reads msgpack values from data through msgpack's low-level
// Decoder. The Decoder reads the bytes.Reader directly (it implements
// io.ByteScanner, so msgpack adds no buffering), which makes r.Len() the
// exact number of bytes left: every length is checked against it before
// anything is allocated, and bins are taken from data by position.
type fileDecoder struct {
	data []byte
	r    *bytes.Reader
	d    *msgpack.Decoder
}

func newFileDecoder(data []byte) *fileDecoder {
	r := bytes.NewReader(data)
	return &fileDecoder{data: data, r: r, d: msgpack.NewDecoder(r)}
}

func (d *fileDecoder) left() int { return d.r.Len() }
func (d *fileDecoder) pos() int  { return len(d.data) - d.r.Len() }

var errTruncated = errors.New("the file ends early (truncated?)")

// readErr turns the io errors of a short read into errTruncated.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return err
}

func (d *fileDecoder) peek() (byte, error) {
	c, err := d.d.PeekCode()
	if err != nil {
		return 0, readErr(err)
	}
	return c, nil
}

// advance skips n bytes that the caller has checked are there.
func (d *fileDecoder) advance(n int) {
	_, _ = d.r.Seek(int64(n), io.SeekCurrent)
}

func isMap(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func isInt(c byte) bool {
	return msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64)
}

func isExt(c byte) bool {
	return (c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16) || (c >= msgpcode.Ext8 && c <= msgpcode.Ext32)
}

// typeName names the msgpack type of code c for error messages.
func typeName(c byte) string {
	switch {
	case isMap(c):
		return "a map"
	case isArray(c):
		return "an array"
	case msgpcode.IsString(c):
		return "a string"
	case msgpcode.IsBin(c):
		return "a bin"
	case isInt(c):
		return "an integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "a float"
	case c == msgpcode.True || c == msgpcode.False:
		return "a bool"
	case c == msgpcode.Nil:
		return "nil"
	case isExt(c):
		return "an ext"
	}
	return fmt.Sprintf("the invalid msgpack code 0x%02x", c)
}

// want checks that the next value is of a type ok accepts.
func (d *fileDecoder) want(what string, ok func(byte) bool) (byte, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	if !ok(c) {
		return 0, fmt.Errorf("want %s, got %s", what, typeName(c))
	}
	return c, nil
}

// length is the msgpack length n as written: on 32-bit platforms msgpack
// returns lengths ≥ 2^31 as negative ints.
func length(n int) uint64 { return uint64(uint32(n)) }

// mapLen reads a map header; a map of n entries needs at least 2n bytes.
func (d *fileDecoder) mapLen() (int, error) {
	if _, err := d.want("a map", isMap); err != nil {
		return 0, err
	}
	n, err := d.d.DecodeMapLen()
	if err != nil {
		return 0, readErr(err)
	}
	if n < 0 || 2*length(n) > uint64(d.left()) {
		return 0, fmt.Errorf("map of %d entries but %d bytes left in the file", length(n), d.left())
	}
	return n, nil
}

// arrayLen reads an array header of at most limit elements; each element
// takes at least a byte.
func (d *fileDecoder) arrayLen(limit int) (int, error) {
	if _, err := d.want("an array", isArray); err != nil {
		return 0, err
	}
	n, err := d.d.DecodeArrayLen()
	if err != nil {
		return 0, readErr(err)
	}
	if n < 0 || length(n) > uint64(d.left()) {
		return 0, fmt.Errorf("array of %d elements but %d bytes left in the file", length(n), d.left())
	}
	if n > limit {
		return 0, fmt.Errorf("array of %d elements: more than the %d allowed", n, limit)
	}
	return n, nil
}

// blob reads a str or bin header and returns where its n bytes start in
// data, after checking that they are all there; it leaves the reader after
// them.
func (d *fileDecoder) blob(what string) (off, n int, err error) {
	n, err = d.d.DecodeBytesLen()
	if err != nil {
		return 0, 0, readErr(err)
	}
	if n < 0 || length(n) > uint64(d.left()) {
		return 0, 0, fmt.Errorf("%s of %d bytes but %d bytes left in the file", what, length(n), d.left())
	}
	off = d.pos()
	d.advance(n)
	return off, n, nil
}

// str reads a string of at most limit bytes (limit < 0: only the file
// bounds it).
func (d *fileDecoder) str(limit int) (string, error) {
	if _, err := d.want("a string", msgpcode.IsString); err != nil {
		return "", err
	}
	off, n, err := d.blob("string")
	if err != nil {
		return "", err
	}
	if limit >= 0 && n > limit {
		return "", fmt.Errorf("string of %d bytes: longer than the %d allowed", n, limit)
	}
	return string(d.data[off : off+n]), nil
}

// key reads a map key, which must be a string.
func (d *fileDecoder) key() (string, error) {
	k, err := d.str(maxNameLen)
	if err != nil {
		return "", fmt.Errorf("map key: %w", err)
	}
	return k, nil
}

func (d *fileDecoder) strs(limit int) ([]string, error) {
	n, err := d.arrayLen(limit)
	if err != nil {
		return nil, err
	}
	out := make([]string, n) // n ≤ bytes left: each string takes a byte
	for i := range out {
		if out[i], err = d.str(-1); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

// int reads an integer in [lo, hi].
func (d *fileDecoder) int(lo, hi int64) (int64, error) {
	c, err := d.want("an integer", isInt)
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Uint64 {
		u, err := d.d.DecodeUint64()
		if err != nil {
			return 0, readErr(err)
		}
		if u > uint64(hi) || u > math.MaxInt64 {
			return 0, fmt.Errorf("%d is out of range [%d, %d]", u, lo, hi)
		}
		return int64(u), nil
	}
	v, err := d.d.DecodeInt64()
	if err != nil {
		return 0, readErr(err)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", v, lo, hi)
	}
	return v, nil
}

func isNumber(c byte) bool { return isInt(c) || c == msgpcode.Float || c == msgpcode.Double }

// float reads a number of any msgpack numeric type.
func (d *fileDecoder) float() (float64, error) {
	c, err := d.want("a number", isNumber)
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Uint64 {
		u, err := d.d.DecodeUint64()
		return float64(u), readErr(err)
	}
	v, err := d.d.DecodeFloat64()
	return v, readErr(err)
}

func (d *fileDecoder) float32() (float32, error) {
	v, err := d.float()
	return float32(v), err
}

func (d *fileDecoder) floatArray(limit int) ([]float32, error) {
	n, err := d.arrayLen(limit)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	for i := range out {
		if out[i], err = d.float32(); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

func (d *fileDecoder) bool() (bool, error) {
	if _, err := d.want("a bool", func(c byte) bool { return c == msgpcode.True || c == msgpcode.False }); err != nil {
		return false, err
	}
	v, err := d.d.DecodeBool()
	return v, readErr(err)
}

// tensor reads a bin of elements of size bytes, or nil (an absent tensor:
// nil, 0, 0).
func (d *fileDecoder) tensor(size int) (off, n int, present bool, err error) {
	c, err := d.want("a bin", func(c byte) bool { return msgpcode.IsBin(c) || c == msgpcode.Nil })
	if err != nil {
		return 0, 0, false, err
	}
	if c == msgpcode.Nil {
		return 0, 0, false, readErr(d.d.DecodeNil())
	}
	off, n, err = d.blob("bin")
	if err != nil {
		return 0, 0, false, err
	}
	if n%size != 0 {
		return 0, 0, false, fmt.Errorf("bin of %d bytes is not a whole number of %d-byte values", n, size)
	}
	return off, n / size, true, nil
}

// int8s returns the int8 tensor in place: the slice aliases the file's
// data, which saves a copy of the largest part of an int8 model.
func (d *fileDecoder) int8s() ([]int8, error) {
	off, n, ok, err := d.tensor(1)
	if err != nil || !ok {
		return nil, err
	}
	if n == 0 {
		return []int8{}, nil // &data[off] would be out of range at the end of the file
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&d.data[off])), n), nil
}

func (d *fileDecoder) float32s() ([]float32, error) {
	off, n, ok, err := d.tensor(4)
	if err != nil || !ok {
		return nil, err
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.data[off+4*i:]))
	}
	return out, nil
}

func (d *fileDecoder) int32s() ([]int32, error) {
	off, n, ok, err := d.tensor(4)
	if err != nil || !ok {
		return nil, err
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(d.data[off+4*i:]))
	}
	return out, nil
}

// skip skips one value of any type. It keeps a count of values still to
// skip instead of recursing, so deeply nested hostile input cannot exhaust
// the stack (msgpack's Skip recurses, and a Go stack overflow is fatal, not
// a recoverable panic).
func (d *fileDecoder) skip() error {
	for pending := uint64(1); pending > 0; pending-- {
		c, err := d.peek()
		if err != nil {
			return err
		}
		switch {
		case isMap(c):
			n, err := d.mapLen()
			if err != nil {
				return err
			}
			pending += 2 * uint64(n)
		case isArray(c):
			n, err := d.arrayLen(math.MaxInt)
			if err != nil {
				return err
			}
			pending += uint64(n)
		case msgpcode.IsString(c) || msgpcode.IsBin(c):
			if _, _, err := d.blob("value"); err != nil {
				return err
			}
		case isExt(c):
			_, n, err := d.d.DecodeExtHeader()
			if err != nil {
				return readErr(err)
			}
			if n < 0 || length(n) > uint64(d.left()) {
				return fmt.Errorf("ext of %d bytes but %d bytes left in the file", length(n), d.left())
			}
			d.advance(n)
		case c == msgpcode.Nil, c == msgpcode.True, c == msgpcode.False:
			d.advance(1)
		case c == msgpcode.Uint64:
			if _, err := d.d.DecodeUint64(); err != nil {
				return readErr(err)
			}
		case isNumber(c):
			if _, err := d.d.DecodeFloat64(); err != nil {
				return readErr(err)
			}
		default:
			return fmt.Errorf("invalid msgpack code 0x%02x", c)
		}
	}
	return nil
}

// -------------------------------------------------------------- validation

// validateFile checks everything LoadFile promises about a model: the
// float model resolves and its weights are finite, the int8 model passes
// QModel.Validate, the spec fits the input and there is a label per output.
// EncodeFile runs it too, so every file written can be read back.
func validateFile(f *File) error {
	var (
		name  string
		input Shape
		meta  Meta
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
		var out Shape
		var ok bool
		if f.Float != nil {
			out, ok = walkShapes(input, f.Float.Layers, func(l *Layer) Layer { return *l })
		} else {
			out, ok = walkShapes(input, f.Int8.Layers, (*QLayer).shapeOnly)
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
func walkShapes[L any](in Shape, layers []L, shape func(*L) Layer) (out Shape, ok bool) {
	if len(layers) == 0 {
		return Shape{}, false
	}
	out = in
	for i := range layers {
		l := shape(&layers[i])
		var err error
		if out, err = l.OutShape(out); err != nil || out.Validate() != nil {
			return Shape{}, false
		}
	}
	return out, true
}

// shapeOnly is the float layer with l's shape fields, for walkShapes.
func (l *QLayer) shapeOnly() Layer {
	return Layer{Kind: l.Kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW, Stride: l.Stride, Pad: l.Pad, OutH: l.OutH, OutW: l.OutW}
}

func checkMeta(meta *Meta, input Shape) error {
	s := &meta.Spec
	if s.ChannelOrder != "" || s.Mean != nil || s.Std != nil || s.Resize != "" || s.ResizeShorter != 0 {
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
// ones): MaxDim bounds sizes throughout vggedge, and it keeps the shape
// arithmetic (2·pad, …) from overflowing an int on 32-bit boards.
func checkDims(in, out, kh, kw, stride, pad, outH, outW int) error {
	for _, f := range []struct {
		key string
		v   int
	}{{"in", in}, {"out", out}, {"kh", kh}, {"kw", kw}, {"stride", stride}, {"pad", pad}, {"out_h", outH}, {"out_w", outW}} {
		if f.v < 0 || f.v > MaxDim {
			return fmt.Errorf("%s %d: must be in [0, %d]", f.key, f.v, MaxDim)
		}
	}
	return nil
}

// fixLayerErr turns a *LayerError from Resolve, Shapes or CheckRunnable
// into the file's "float layer 3 features.5: …" form.
func fixLayerErr(which string, err error) error {
	var le *LayerError
	if errors.As(err, &le) {
		return &layerErr{layerPrefix(which, le.Index, le.Name), le.Err}
	}
	return fmt.Errorf("%s: %w", which, err)
}

// validateFloat checks a float model and returns its output shape. m.Layers'
// In fields are filled in (Resolve).
func validateFloat(m *Model) (Shape, error) {
	if err := checkText(m.Class, false); err != nil {
		return Shape{}, fmt.Errorf("float: class: %w", err)
	}
	hasParams := false
	for i := range m.Layers {
		l := &m.Layers[i]
		fail := func(err error) error { return &layerErr{layerPrefix("float", i, l.Name), err} }
		if err := checkText(l.Name, false); err != nil {
			return Shape{}, fail(fmt.Errorf("name: %w", err))
		}
		if err := checkText(string(l.Kind), false); err != nil {
			return Shape{}, fail(fmt.Errorf("kind: %w", err))
		}
		if err := checkDims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW); err != nil {
			return Shape{}, fail(err)
		}
		if !isFinite64(l.P) || !isFinite64(l.Eps) {
			return Shape{}, fail(fmt.Errorf("p %g, eps %g: must be finite", l.P, l.Eps))
		}
		if err := checkRole(l.Role); err != nil {
			return Shape{}, fail(err)
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
				ok = l.Kind == Conv2d || l.Kind == Linear || l.Kind == SqueezeExcite
			case "weight2", "bias2":
				ok = l.Kind == SqueezeExcite
			default:
				ok = l.Kind == BatchNorm2d
			}
			if !ok {
				return Shape{}, fail(fmt.Errorf("%s: a %s layer has no such parameter", t.key, display(string(l.Kind))))
			}
			for j, v := range t.v {
				if !finite(v) {
					return Shape{}, fail(fmt.Errorf("%s[%d] %g: must be finite", t.key, j, v))
				}
			}
		}
	}
	shapes, err := m.Resolve()
	if err != nil {
		return Shape{}, fixLayerErr("float", err)
	}
	// A model carries all its parameters or none (an architecture only,
	// for costing); with parameters it must be runnable.
	if hasParams {
		if err := m.CheckRunnable(shapes); err != nil {
			return Shape{}, fixLayerErr("float", err)
		}
	}
	return shapes[len(shapes)-1], nil
}

// checkRole accepts "" and the roles of Roles.
func checkRole(r Role) error {
	if r == "" || slices.Contains(Roles, r) {
		return nil
	}
	return fmt.Errorf("role %s: want one of %v or none", display(string(r)), Roles)
}

func isFinite64(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// validateInt8 checks an int8 model and returns its output shape: Validate,
// plus what it leaves out — finite scalars and no parameters a layer's kind
// does not use (they would be carried along unchecked).
func validateInt8(q *QModel) (Shape, error) {
	for i := range q.Layers {
		l := &q.Layers[i]
		fail := func(err error) error { return &layerErr{layerPrefix("int8", i, l.Name), err} }
		if err := checkText(l.Name, false); err != nil {
			return Shape{}, fail(fmt.Errorf("name: %w", err))
		}
		if err := checkText(string(l.Kind), false); err != nil {
			return Shape{}, fail(fmt.Errorf("kind: %w", err))
		}
		if err := checkDims(l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW); err != nil {
			return Shape{}, fail(err)
		}
		if !finite(l.InScale) || !finite(l.OutScale) {
			return Shape{}, fail(fmt.Errorf("in_scale %g, out_scale %g: must be finite", l.InScale, l.OutScale))
		}
		if err := checkRole(l.Role); err != nil {
			return Shape{}, fail(err)
		}
		weighted := l.Kind == Conv2d || l.Kind == Linear
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
			{"pad_value", l.PadValue != nil, -1, l.Kind == Conv2d},
		} {
			if !t.present {
				continue
			}
			if !t.ok {
				return Shape{}, fail(fmt.Errorf("%s: a %s layer has no such parameter", t.key, display(string(l.Kind))))
			}
			// Validate skips mult and shift of the logits layer (it
			// does not requantize); present, they must still fit.
			if l.Logits && t.n >= 0 && t.n != l.Out {
				return Shape{}, fail(fmt.Errorf("%s has %d values, want %d", t.key, t.n, l.Out))
			}
		}
	}
	if err := q.Validate(); err != nil {
		return Shape{}, fixLayerErr("int8", err)
	}
	// The output shape, without Shapes' second pass over every weight;
	// the walk cannot fail once Validate has passed.
	out, _ := walkShapes(q.Input, q.Layers, (*QLayer).shapeOnly)
	return out, nil
}

// ---------------------------------------------------------------- writing

// SaveFile writes f to path atomically (internal/atomicfile): it encodes
// into a temporary file in the same directory, syncs it, renames it over
// path and syncs the directory, so path holds
// either the old file or the whole new one, and an error leaves the old file
// untouched and no temporary file behind. A new file gets mode 0644; a
// replaced file keeps its mode.
func SaveFile(path string, f *File) error {
	err := atomicfile.Write(path, atomicfile.ModeOf(path, 0o644), func(w io.Writer) error { return encodeFile(w, f) })
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// EncodeFile validates f and writes it in the model file format. When f has
// both models, they must have the same input, and the float model's name,
// spec and labels must be unset or the int8 model's; the file records the
// int8 model's name and meta.
func EncodeFile(w io.Writer, f *File) error {
	if err := encodeFile(w, f); err != nil {
		return fmt.Errorf("encode model file: %w", err)
	}
	return nil
}

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
		if !reflect.DeepEqual(fm.Meta.Spec, InputSpec{}) && !reflect.DeepEqual(fm.Meta.Spec, q.Meta.Spec) {
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

// countingWriter refuses to write more than LoadFile would read.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > MaxFileSize {
		return 0, fmt.Errorf("the model file would be larger than %d bytes, the most LoadFile reads", MaxFileSize)
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
	name, input, meta := f.Name(), Shape{}, f.Meta()
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

func (e *fileEncoder) spec(s *InputSpec) []field {
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

func (e *fileEncoder) provenance(p *Provenance) []field {
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

func (e *fileEncoder) floatLayer(l *Layer) []field {
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
	case l.Bias || l.Kind == Conv2d || l.Kind == Linear:
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

func (e *fileEncoder) int8Layer(l *QLayer) []field {
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
