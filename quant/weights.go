package quant

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vggedge/vggedge/infer"
)

// Tensor is one named tensor of a weight file, converted to float32
// whatever its stored dtype (integer and bool tensors too, so a state_dict's
// num_batches_tracked reads like any other entry). Data is in C (row-major)
// order; a scalar has an empty Shape and one value.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// maxTensorElems bounds the values of one tensor. 2^31-1 keeps every index
// an int on 32-bit ARM (as infer does); VGG's largest tensor has 102,760,448.
const maxTensorElems = 1<<31 - 1

// tensorElems returns the number of values of a tensor of this shape, or an
// error when a dimension is negative or the product exceeds maxTensorElems
// (checked per factor, so hostile shapes cannot overflow).
func tensorElems(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension", shape)
		}
		if d > maxTensorElems {
			return 0, fmt.Errorf("shape %v: dimension larger than %d", shape, maxTensorElems)
		}
		n *= d // both factors ≤ 2^31-1: no int64 overflow
		if n > maxTensorElems {
			return 0, fmt.Errorf("shape %v: more than %d values", shape, maxTensorElems)
		}
	}
	return n, nil
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// shapeString prints a shape the way PyTorch users read it: [64, 3, 3, 3].
func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// weightsDtype says how one stored element becomes a float32.
type weightsDtype struct {
	name string // the safetensors spelling: "F32", "BF16", …
	size int    // bytes per element
	// decode converts little-endian src (len(src) == len(dst)·size).
	decode func(dst []float32, src []byte)
}

var (
	dtF32 = &weightsDtype{"F32", 4, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	}}
	dtF16 = &weightsDtype{"F16", 2, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = halfToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}}
	dtBF16 = &weightsDtype{"BF16", 2, func(dst []float32, src []byte) {
		for i := range dst {
			// bfloat16 is the top half of a float32: exact.
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	}}
	dtF64 = &weightsDtype{"F64", 8, func(dst []float32, src []byte) {
		for i := range dst {
			// Rounds to nearest; values beyond float32's range become
			// ±Inf, which LoadWeights rejects by name.
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	}}
	dtI8 = &weightsDtype{"I8", 1, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	}}
	dtU8 = &weightsDtype{"U8", 1, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(src[i])
		}
	}}
	dtBool = &weightsDtype{"BOOL", 1, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = 0
			if src[i] != 0 {
				dst[i] = 1
			}
		}
	}}
	dtI16 = &weightsDtype{"I16", 2, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
		}
	}}
	dtU16 = &weightsDtype{"U16", 2, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}}
	dtI32 = &weightsDtype{"I32", 4, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
		}
	}}
	dtU32 = &weightsDtype{"U32", 4, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint32(src[4*i:]))
		}
	}}
	dtI64 = &weightsDtype{"I64", 8, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
		}
	}}
	dtU64 = &weightsDtype{"U64", 8, func(dst []float32, src []byte) {
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint64(src[8*i:]))
		}
	}}
)

// halfToFloat32 converts IEEE 754 binary16 bits exactly (every half value,
// subnormals, ±Inf and NaN included, is a float32).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // Inf, NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		// Zero or subnormal: mant·2^-24, exact in float32.
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// decodeChunk is the size of the staging buffer used while streaming a
// tensor's bytes into its float32 slice: large enough for full-speed reads,
// small next to the tensors themselves.
const decodeChunk = 1 << 20

// readDecode reads len(dst)·dt.size bytes from r and converts them into
// dst through buf (reused between calls), so a tensor never exists twice
// in full. bigEndian swaps each element first.
func readDecode(r io.Reader, dst []float32, dt *weightsDtype, bigEndian bool, buf *[]byte) error {
	per := decodeChunk / dt.size
	if need := min(per, len(dst)) * dt.size; cap(*buf) < need {
		// Grow geometrically up to decodeChunk: small tensors (and
		// fuzzed inputs) do not pay for a full megabyte each.
		*buf = make([]byte, min(max(need, 2*cap(*buf)), per*dt.size))
	}
	for len(dst) > 0 {
		n := min(per, len(dst))
		b := (*buf)[:n*dt.size]
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if bigEndian && dt.size > 1 {
			swapElements(b, dt.size)
		}
		dt.decode(dst[:n], b)
		dst = dst[n:]
	}
	return nil
}

func swapElements(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for j, k := 0, size-1; j < k; j, k = j+1, k-1 {
			e[j], e[k] = e[k], e[j]
		}
	}
}

// Weight-file formats ReadWeights recognises.
const (
	formatUnknown = iota
	formatSafetensors
	formatPTH
)

// sniffWeights decides a file's format from its first bytes (and size):
// extensions lie (".bin" is used for both), contents do not.
func sniffWeights(head []byte, size int64) int {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return formatPTH // torch.save's zip format
	case len(head) >= 9 && binary.LittleEndian.Uint64(head) <= uint64(size-8) &&
		bytes.HasPrefix(bytes.TrimLeft(head[8:], " \t\r\n"), []byte("{")):
		// The JSON header may be led by whitespace (writers pad it to
		// align the data).
		return formatSafetensors
	case len(head) > 0 && (head[0] == 0x80 || head[0] == 0x8a || head[0] == 'L'):
		// A pickle: torch.save's legacy format starts with the magic
		// number as a pickled long (PROTO n; LONG1; or text LONG at
		// protocol 0/1).
		return formatPTH
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return formatPTH // the pre-2017 tar format; ReadPTH explains
	}
	return formatUnknown
}

// ReadWeights reads a float weight file — safetensors, or torch.save output
// (zip or legacy) — recognising the format from its content rather than its
// extension. It also returns the SHA-256 of the file (hex), the model file's
// provenance record.
func ReadWeights(path string) (map[string]*Tensor, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s: not a regular file", path)
	}
	size := fi.Size()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	format := sniffWeights(head[:n], size)
	if format == formatUnknown {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".safetensors":
			format = formatSafetensors
		case ".pth", ".pt", ".bin", ".ckpt", ".tar":
			format = formatPTH
		default:
			return nil, "", fmt.Errorf("%s: neither a safetensors file nor torch.save output (a zip or pickle)", path)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	var ts map[string]*Tensor
	switch format {
	case formatSafetensors:
		// One sequential pass both hashes and decodes.
		ts, err = readSafetensors(io.TeeReader(f, h), size, path)
		if err == nil {
			// Hash anything the decoder did not need to read (nothing,
			// for a valid file, which ends where its last tensor does).
			if _, err = io.Copy(h, f); err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
	default:
		// The zip reader seeks, so hash in a pass of its own (the file
		// is in the page cache afterwards).
		if _, err = io.Copy(h, f); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		ts, err = readPTH(f, size, path)
	}
	if err != nil {
		return nil, "", err
	}
	return ts, hex.EncodeToString(h.Sum(nil)), nil
}

// LoadWeights assigns torchvision state_dict tensors (features.N.weight/bias,
// classifier.N.weight/bias, BN weight/bias/running_mean/running_var;
// num_batches_tracked ignored) to the layers of m with the same names,
// checking every shape against the layer. Unused tensors and layers left
// without weights are errors naming them. On error m is left unchanged.
//
// The layers share the tensors' Data slices (infer never writes parameters
// in place). Values must be finite, and running_var not negative: a NaN in
// a weight file is a broken file, better reported here by name than as
// garbage logits later.
func LoadWeights(m *infer.Model, ts map[string]*Tensor) error {
	if m == nil {
		return errors.New("nil model")
	}
	// Resolve on a copy fills in every layer's In (needed for the expected
	// shapes) without touching m before everything has been checked.
	r := m.Clone()
	if _, err := r.Resolve(); err != nil {
		return fmt.Errorf("model %s: %w", m.Name, err)
	}
	used := make(map[string]bool, len(ts))
	// Three lists, each shown (up to a point) in the error: a wrong
	// shape, a missing tensor and an unused one are different mistakes and
	// a long list of one must not hide the others.
	var bad, missing []string
	type assignment struct {
		layer int
		field *[]float32
		data  []float32
	}
	var assign []assignment
	take := func(i int, name string, want []int, field *[]float32, finite, nonNegative bool) {
		t, ok := ts[name]
		if !ok || t == nil {
			missing = append(missing, fmt.Sprintf("%s: missing (layer %s needs shape %s)", name, r.Layers[i].Name, shapeString(want)))
			return
		}
		used[name] = true
		if !equalShape(t.Shape, want) {
			bad = append(bad, fmt.Sprintf("%s: shape %s in the file, but layer %s (%s) needs %s",
				name, shapeString(t.Shape), r.Layers[i].Name, describeLayer(&r.Layers[i]), shapeString(want)))
			return
		}
		if int64(len(t.Data)) != numel(want) {
			bad = append(bad, fmt.Sprintf("%s: %d values for shape %s", name, len(t.Data), shapeString(want)))
			return
		}
		for j, v := range t.Data {
			if finite && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				bad = append(bad, fmt.Sprintf("%s: value %d is %g", name, j, v))
				return
			}
			if nonNegative && v < 0 {
				bad = append(bad, fmt.Sprintf("%s: value %d is %g, a variance must not be negative", name, j, v))
				return
			}
		}
		assign = append(assign, assignment{i, field, t.Data})
	}
	out := m.Clone() // fresh layer slice: m changes only if all is well
	for i := range r.Layers {
		l := &r.Layers[i]
		o := &out.Layers[i]
		switch l.Kind {
		case infer.Conv2d:
			take(i, l.Name+".weight", []int{l.Out, l.In, l.KH, l.KW}, &o.Weight, true, false)
			if l.Bias {
				take(i, l.Name+".bias", []int{l.Out}, &o.BiasData, true, false)
			}
		case infer.Linear:
			take(i, l.Name+".weight", []int{l.Out, l.In}, &o.Weight, true, false)
			if l.Bias {
				take(i, l.Name+".bias", []int{l.Out}, &o.BiasData, true, false)
			}
		case infer.BatchNorm2d:
			c := []int{l.In}
			take(i, l.Name+".weight", c, &o.Gamma, true, false)
			take(i, l.Name+".bias", c, &o.Beta, true, false)
			take(i, l.Name+".running_mean", c, &o.Mean, true, false)
			take(i, l.Name+".running_var", c, &o.Var, true, true)
			// A counter of training steps: nothing to run with.
			if _, ok := ts[l.Name+".num_batches_tracked"]; ok {
				used[l.Name+".num_batches_tracked"] = true
			}
		}
	}
	var unused []string
	for name := range ts {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(bad)+len(missing)+len(unused) > 0 {
		hint := ""
		if len(unused) > 0 && allPrefixed(unused, "module.") {
			hint = ` (the names start with "module.": the checkpoint was saved from nn.DataParallel; save model.module.state_dict())`
		}
		var lines []string
		list := func(items []string, what string) {
			const show = 10
			for i, it := range items {
				if i == show {
					lines = append(lines, fmt.Sprintf("… and %d more %s", len(items)-show, what))
					break
				}
				lines = append(lines, it)
			}
		}
		list(bad, "mismatches")
		list(missing, "missing tensors")
		for i, name := range unused {
			unused[i] = fmt.Sprintf("%s: not used by any layer of %s", name, m.Name)
		}
		list(unused, "unused tensors")
		return fmt.Errorf("loading weights into %s%s:\n  %s", m.Name, hint, strings.Join(lines, "\n  "))
	}
	for _, a := range assign {
		*a.field = a.data
	}
	m.Layers = out.Layers
	// In may have been 0 in m; the resolved value is what was checked.
	for i := range m.Layers {
		m.Layers[i].In = r.Layers[i].In
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func numel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

func allPrefixed(names []string, prefix string) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			return false
		}
	}
	return true
}

func describeLayer(l *infer.Layer) string {
	switch l.Kind {
	case infer.Conv2d:
		return fmt.Sprintf("conv2d %d→%d, %dx%d", l.In, l.Out, l.KH, l.KW)
	case infer.Linear:
		return fmt.Sprintf("linear %d→%d", l.In, l.Out)
	case infer.BatchNorm2d:
		return fmt.Sprintf("batchnorm2d %d", l.In)
	}
	return string(l.Kind)
}
