package torchio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// WriteSafetensors writes ts as a safetensors file of F32 tensors, byte for
// byte as the reference implementation (safetensors' serialize, and so
// safetensors.torch.save_file) writes the same tensors: tensors sorted by
// name (the reference sorts by dtype, then name; all are F32 here), header
// JSON compact with keys in that order and fields dtype, shape,
// data_offsets, padded with spaces to a multiple of 8 bytes, no
// __metadata__.
func WriteSafetensors(w io.Writer, ts []*Tensor) error {
	sorted := make([]*Tensor, len(ts))
	copy(sorted, ts)
	seen := map[string]bool{}
	for i, t := range sorted {
		if t == nil {
			return fmt.Errorf("safetensors: tensor %d is nil", i)
		}
		if !utf8.ValidString(t.Name) {
			return fmt.Errorf("safetensors: tensor %q: name is not valid UTF-8", t.Name)
		}
		if t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= int64(d)
			if n > maxTensorElems {
				return fmt.Errorf("safetensors: tensor %q: shape %v has more than %d values", t.Name, t.Shape, maxTensorElems)
			}
		}
		if n != int64(len(t.Data)) {
			return fmt.Errorf("safetensors: tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.Data))
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	hdr := []byte{'{'}
	var off int64
	for i, t := range sorted {
		if i > 0 {
			hdr = append(hdr, ',')
		}
		hdr = appendSerdeString(hdr, t.Name)
		hdr = append(hdr, `:{"dtype":"F32","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				hdr = append(hdr, ',')
			}
			hdr = strconv.AppendInt(hdr, int64(d), 10)
		}
		hdr = append(hdr, `],"data_offsets":[`...)
		hdr = strconv.AppendInt(hdr, off, 10)
		off += 4 * int64(len(t.Data))
		hdr = append(hdr, ',')
		hdr = strconv.AppendInt(hdr, off, 10)
		hdr = append(hdr, "]}"...)
	}
	hdr = append(hdr, '}')
	// The reference pads the JSON with spaces so the data section starts
	// 8-byte aligned.
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	if len(hdr) > safetensorsMaxHeader {
		return fmt.Errorf("safetensors: header of %d bytes exceeds the format's limit of %d", len(hdr), safetensorsMaxHeader)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var nb [8]byte
	binary.LittleEndian.PutUint64(nb[:], uint64(len(hdr)))
	bw.Write(nb[:])
	bw.Write(hdr)
	// Convert a chunk at a time: one Write per value is ten times slower.
	chunk := make([]byte, 0, 1<<16)
	for _, t := range sorted {
		for i, v := range t.Data {
			chunk = binary.LittleEndian.AppendUint32(chunk, math.Float32bits(v))
			if len(chunk) == cap(chunk) || i == len(t.Data)-1 {
				bw.Write(chunk)
				chunk = chunk[:0]
			}
		}
	}
	// bufio keeps the first write error and returns it here.
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// appendSerdeString appends s as a JSON string escaped exactly as
// serde_json (which writes the reference header) does: only '"', '\\' and
// control characters, the latter as \b \t \n \f \r or \u00xx (lowercase
// hex); no HTML escaping, non-ASCII written as is.
func appendSerdeString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
