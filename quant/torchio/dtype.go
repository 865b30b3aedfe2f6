package torchio

import (
	"encoding/binary"
	"io"
	"math"
)

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
			// ±Inf, which quant.LoadWeights rejects by name.
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

// unexpected turns an EOF inside a structure into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
