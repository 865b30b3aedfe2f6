package vgm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

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
