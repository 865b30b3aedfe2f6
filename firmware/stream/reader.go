package stream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Bounds on what a Reader accepts. They are far above what vggedge writes
// (ImageNet has 1000 labels of a few dozen bytes) and keep hostile input
// from costing more than its own size.
const (
	MaxString = 4096    // bytes in one string (label, model name, key)
	MaxLabels = 1 << 16 // labels in a header
	MaxTop    = 1 << 16 // entries in a frame's top-k
	maxDepth  = 32      // nesting of skipped unknown values
)

// Reader decodes a results stream.
type Reader struct {
	r    *bufio.Reader
	off  int64 // bytes consumed, for error messages
	good int64 // bytes up to the end of the last complete map
	torn bool  // the stream ended inside a map
	hdr  *Header
	buf  [8]byte
	key  []byte // scratch for map keys, grown up to MaxString
}

// NewReader reads a stream from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReader(r)}
}

// Header is the newest header read, nil before Next has read one.
func (d *Reader) Header() *Header { return d.hdr }

// Offset is the number of bytes up to the end of the last complete map
// (header or result) Next has read: where a writer continuing the stream
// must append.
func (d *Reader) Offset() int64 { return d.good }

// Torn reports whether the stream ended inside a map (its writer was
// killed mid-write, or a connection was cut): Next then returned io.EOF
// after the last complete result, and the torn bytes from Offset on were
// skipped.
func (d *Reader) Torn() bool { return d.torn }

// Next returns the next frame's result. It reads the header first (and any
// later header) on the way. At the end of the stream it returns io.EOF —
// also when the stream ends inside a map, a torn last record (see Torn).
// Malformed or hostile data before the end is an error naming its byte
// offset.
func (d *Reader) Next() (Result, error) {
	if d.torn {
		return Result{}, io.EOF
	}
	res, err := d.next()
	if err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
		// Every read inside a map turns io.EOF into ErrUnexpectedEOF:
		// the input is exhausted, so this is the stream's last record.
		d.torn = true
		return Result{}, io.EOF
	}
	return res, err
}

func (d *Reader) next() (Result, error) {
	for {
		start := d.off
		if _, err := d.r.Peek(1); err == io.EOF {
			return Result{}, io.EOF
		}
		n, err := d.mapLen()
		if err != nil {
			return Result{}, d.fail(start, "a map", err)
		}
		var (
			h                    Header
			res                  Result
			isHeader             bool
			hasFrame, hasTS, top bool
			hasVersion           bool
		)
		for range n {
			kpos := d.off
			key, err := d.keyStr()
			if err != nil {
				return Result{}, d.fail(kpos, "a string key", err)
			}
			vpos := d.off
			switch key {
			case "format":
				isHeader = true
				h.Format, err = d.str()
			case "version":
				var v uint64
				v, err = d.uint()
				h.Version, hasVersion = int(min(v, math.MaxInt32)), true
			case "model":
				h.Model, err = d.str()
			case "labels":
				h.Labels, err = d.strs(MaxLabels)
			case "frame":
				res.Frame, err = d.uint()
				hasFrame = true
			case "ts":
				var ns int64
				ns, err = d.int()
				res.Time, hasTS = time.Unix(0, ns).UTC(), true
			case "top":
				res.Top, err = d.top()
				top = true
			case "latency_ms":
				res.LatencyMs, err = d.float()
			case "truth":
				res.Truth, err = d.str()
			default:
				err = d.skip(0)
			}
			if err != nil {
				return Result{}, d.fail(vpos, fmt.Sprintf("the value of %q", key), err)
			}
		}
		if isHeader {
			if h.Format != Format {
				return Result{}, fmt.Errorf("stream: header at byte %d: format %q, want %q", start, h.Format, Format)
			}
			if !hasVersion || h.Version != Version {
				return Result{}, fmt.Errorf("stream: header at byte %d: version %d not supported (this reader knows %d)", start, h.Version, Version)
			}
			d.hdr = &h
			d.good = d.off
			continue
		}
		if d.hdr == nil {
			return Result{}, fmt.Errorf("stream: map at byte %d: want the header map (\"format\": %q) first", start, Format)
		}
		if !hasFrame || !hasTS || !top {
			return Result{}, fmt.Errorf("stream: frame map at byte %d: missing one of the keys \"frame\", \"ts\", \"top\"", start)
		}
		d.good = d.off
		return res, nil
	}
}

// fail wraps err with where the stream broke; an EOF inside a value is
// unexpected.
func (d *Reader) fail(pos int64, want string, err error) error {
	return fmt.Errorf("stream: byte %d: want %s: %w", pos, want, err)
}

func (d *Reader) byte() (byte, error) {
	c, err := d.r.ReadByte()
	if err == nil {
		d.off++
	}
	return c, noEOF(err)
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: Next checks for the clean
// end of the stream before a map starts, so every other EOF cuts a value.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// be reads an n-byte (n ≤ 8) big-endian unsigned integer.
func (d *Reader) be(n int) (uint64, error) {
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return 0, noEOF(err)
	}
	d.off += int64(n)
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func typeErr(c byte) error { return fmt.Errorf("got %s", typeName(c)) }

func (d *Reader) mapLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	return d.lenOf(c, 0x80, 0x8f, 0xde, 0xdf)
}

func (d *Reader) arrayLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	return d.lenOf(c, 0x90, 0x9f, 0xdc, 0xdd)
}

// lenOf reads the length of a map or array whose fix form is fixLo..fixHi
// and whose 16/32-bit forms are b16 and b32.
func (d *Reader) lenOf(c, fixLo, fixHi, b16, b32 byte) (int, error) {
	switch c {
	case b16:
		v, err := d.be(2)
		return int(v), err
	case b32:
		v, err := d.be(4)
		return int(v), err
	}
	if c >= fixLo && c <= fixHi {
		return int(c & 0x0f), nil
	}
	return 0, typeErr(c)
}

// strLen reads a str header.
func (d *Reader) strLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f), nil
	case c == 0xd9:
		v, err := d.be(1)
		return int(v), err
	case c == 0xda:
		v, err := d.be(2)
		return int(v), err
	case c == 0xdb:
		v, err := d.be(4)
		return int(v), err
	}
	return 0, typeErr(c)
}

// keyStr reads a string into the reused key buffer; the result is valid
// until the next key.
func (d *Reader) keyStr() (string, error) {
	n, err := d.strLen()
	if err != nil {
		return "", err
	}
	if n > MaxString {
		return "", fmt.Errorf("string of %d bytes (limit %d)", n, MaxString)
	}
	if cap(d.key) < n {
		d.key = make([]byte, n) // n ≤ MaxString
	}
	d.key = d.key[:n]
	if _, err := io.ReadFull(d.r, d.key); err != nil {
		return "", noEOF(err)
	}
	d.off += int64(n)
	return string(d.key), nil
}

func (d *Reader) str() (string, error) {
	s, err := d.keyStr()
	return s, err
}

// strs reads an array of at most limit strings, growing the slice as
// elements arrive rather than from the declared length.
func (d *Reader) strs(limit int) ([]string, error) {
	n, err := d.arrayLen()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("array of %d strings (limit %d)", n, limit)
	}
	out := make([]string, 0, min(n, 64))
	for i := range n {
		s, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *Reader) top() ([]Class, error) {
	n, err := d.arrayLen()
	if err != nil {
		return nil, err
	}
	if n > MaxTop {
		return nil, fmt.Errorf("top-k of %d entries (limit %d)", n, MaxTop)
	}
	out := make([]Class, 0, min(n, 16))
	for i := range n {
		m, err := d.mapLen()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		var c Class
		for range m {
			key, err := d.keyStr()
			if err != nil {
				return nil, fmt.Errorf("entry %d key: %w", i, err)
			}
			switch key {
			case "label":
				c.Label, err = d.str()
			case "score":
				var f float64
				f, err = d.float()
				c.Score = float32(f)
			default:
				err = d.skip(0)
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d %q: %w", i, key, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// uint reads a non-negative integer of any msgpack integer type.
func (d *Reader) uint() (uint64, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= 0xe0:
		return 0, fmt.Errorf("negative integer %d", int8(c))
	case c >= 0xcc && c <= 0xcf:
		return d.be(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3:
		v, err := d.signed(c)
		if err == nil && v < 0 {
			err = fmt.Errorf("negative integer %d", v)
		}
		return uint64(v), err
	}
	return 0, fmt.Errorf("want an unsigned integer, %w", typeErr(c))
}

func (d *Reader) signed(c byte) (int64, error) {
	n := 1 << (c - 0xd0)
	v, err := d.be(n)
	if err != nil {
		return 0, err
	}
	shift := 64 - 8*n
	return int64(v<<shift) >> shift, nil
}

func (d *Reader) int() (int64, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0xcc && c <= 0xcf:
		v, err := d.be(1 << (c - 0xcc))
		if err == nil && v > math.MaxInt64 {
			err = fmt.Errorf("integer %d out of int64 range", v)
		}
		return int64(v), err
	case c >= 0xd0 && c <= 0xd3:
		return d.signed(c)
	}
	return 0, fmt.Errorf("want an integer, %w", typeErr(c))
}

// float reads a float32, float64 or integer as float64.
func (d *Reader) float() (float64, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, noEOF(err)
	}
	switch c {
	case 0xca:
		d.off++
		v, err := d.be(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		d.off++
		v, err := d.be(8)
		return math.Float64frombits(v), err
	}
	if err := d.r.UnreadByte(); err != nil {
		return 0, err
	}
	v, err := d.int()
	return float64(v), err
}

// skip reads past one value of any type, without allocating.
func (d *Reader) skip(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("values nested deeper than %d", maxDepth)
	}
	c, err := d.byte()
	if err != nil {
		return err
	}
	var n uint64 // bytes to discard
	var items uint64
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c >= 0x90 && c <= 0x9f:
		items = uint64(c & 0x0f)
	case c >= 0x80 && c <= 0x8f:
		items = 2 * uint64(c&0x0f)
	default:
		switch c {
		case 0xc4, 0xd9: // bin8, str8
			n, err = d.be(1)
		case 0xc5, 0xda:
			n, err = d.be(2)
		case 0xc6, 0xdb:
			n, err = d.be(4)
		case 0xcc, 0xd0:
			n = 1
		case 0xcd, 0xd1:
			n = 2
		case 0xca, 0xce, 0xd2:
			n = 4
		case 0xcb, 0xcf, 0xd3:
			n = 8
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16: type + data
			n = 1 + 1<<(c-0xd4)
		case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type, data
			n, err = d.be(1 << (c - 0xc7))
			n++
		case 0xdc:
			items, err = d.be(2)
		case 0xdd:
			items, err = d.be(4)
		case 0xde:
			items, err = d.be(2)
			items *= 2
		case 0xdf:
			items, err = d.be(4)
			items *= 2
		default: // 0xc1 is never used
			return fmt.Errorf("invalid msgpack byte 0x%02x", c)
		}
		if err != nil {
			return err
		}
	}
	if n > 0 {
		got, err := d.r.Discard(int(n))
		d.off += int64(got)
		if err != nil {
			return noEOF(err)
		}
	}
	for range items {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// typeName names a msgpack type byte for error messages.
func typeName(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		return "an integer"
	case c <= 0x8f || c == 0xde || c == 0xdf:
		return "a map"
	case c <= 0x9f || c == 0xdc || c == 0xdd:
		return "an array"
	case c <= 0xbf || (c >= 0xd9 && c <= 0xdb):
		return "a string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return "a bool"
	case c == 0xca || c == 0xcb:
		return "a float"
	case c >= 0xc4 && c <= 0xc6:
		return "bin"
	case c == 0xc1:
		return "the invalid byte 0xc1"
	}
	return "an extension"
}
