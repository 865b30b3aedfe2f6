package mqtt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// unmarshalBounded decodes a msgpack payload from outside (a broker) into
// v, after checking that every length prefix in it — strings, binaries,
// extensions, arrays, maps — fits in the bytes that follow and that it
// nests at most 32 deep, with a fresh decoder.
//
// msgpack v5.3.6 reads a long string in 1 MB chunks but keeps the grown
// buffer in its pooled decoders (msgpack.Unmarshal): 14 bytes claiming an
// 800 MB string cost a megabyte more on every message, for good — 2000 of
// them took a process to 13 GB. Checked first, a payload costs at most
// about its own size.
func Unmarshal(payload []byte, v any) error {
	if err := checkMsgpack(payload); err != nil {
		return err
	}
	return msgpack.NewDecoder(bytes.NewReader(payload)).Decode(v)
}

var errMsgpackShort = errors.New("msgpack: a length runs past the end of the payload")

// checkMsgpack walks one msgpack value covering all of b.
func checkMsgpack(b []byte) error {
	rest, err := skipMsgpack(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("msgpack: %d bytes after the value", len(rest))
	}
	return nil
}

// skipMsgpack returns b after its first value.
func skipMsgpack(b []byte, depth int) ([]byte, error) {
	if depth > 32 {
		return nil, errors.New("msgpack: nested deeper than 32")
	}
	if len(b) == 0 {
		return nil, errMsgpackShort
	}
	c, b := b[0], b[1:]
	// n reads a big-endian length of k bytes.
	n := func(k int) (int, error) {
		if len(b) < k {
			return 0, errMsgpackShort
		}
		var v uint64
		for _, x := range b[:k] {
			v = v<<8 | uint64(x)
		}
		b = b[k:]
		if v > uint64(len(b)) { // every element takes at least a byte
			return 0, errMsgpackShort
		}
		return int(v), nil
	}
	raw := func(k int) ([]byte, error) { // a length, then that many bytes
		l, err := n(k)
		if err != nil {
			return nil, err
		}
		return b[l:], nil
	}
	fixed := func(k int) ([]byte, error) {
		if len(b) < k {
			return nil, errMsgpackShort
		}
		return b[k:], nil
	}
	items := func(count int) ([]byte, error) {
		var err error
		for range count {
			if b, err = skipMsgpack(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		return b, nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return items(2 * int(c&0x0f))
	case c >= 0x90 && c <= 0x9f: // fixarray
		return items(int(c & 0x0f))
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return fixed(int(c & 0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		return raw(1)
	case 0xc5, 0xda:
		return raw(2)
	case 0xc6, 0xdb:
		return raw(4)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type, data
		k := map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c]
		l, err := n(k)
		if err != nil {
			return nil, err
		}
		if len(b) < 1+l {
			return nil, errMsgpackShort
		}
		return b[1+l:], nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return fixed(4)
	case 0xcb, 0xcf, 0xd3:
		return fixed(8)
	case 0xcc, 0xd0:
		return fixed(1)
	case 0xcd, 0xd1:
		return fixed(2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type)
		return fixed(1 + 1<<(c-0xd4))
	case 0xdc, 0xdd: // array16/32
		l, err := n(map[byte]int{0xdc: 2, 0xdd: 4}[c])
		if err != nil {
			return nil, err
		}
		return items(l)
	case 0xde, 0xdf: // map16/32
		l, err := n(map[byte]int{0xde: 2, 0xdf: 4}[c])
		if err != nil {
			return nil, err
		}
		if 2*l > len(b) {
			return nil, errMsgpackShort
		}
		return items(2 * l)
	}
	return nil, fmt.Errorf("msgpack: invalid byte 0x%02x", c)
}
