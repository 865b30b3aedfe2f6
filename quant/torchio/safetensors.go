package torchio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"
)

// The safetensors format (github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of UTF-8 JSON
//
//	{"__metadata__": {"k": "v", …}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …}
//
// then the data section; offsets are relative to it, the tensors tile it
// exactly (sorted by offset, each begins where the previous ends, the last
// ends at the end of the file) and are little-endian, C order. The reader
// below applies the reference implementation's checks (safetensors/src/
// tensor.rs: Metadata::validate, read_metadata) and a few more, so a
// hostile file yields an error naming the file and the tensor, never a
// panic or an allocation the file's size does not justify.

// safetensorsMaxHeader is the reference implementation's MAX_HEADER_SIZE.
const safetensorsMaxHeader = 100_000_000

// safetensorsDtypes are the dtypes read (and converted to float32). The
// 8-bit float, 4/6-bit and complex types are rejected by name.
var safetensorsDtypes = map[string]*weightsDtype{
	"F32": dtF32, "F16": dtF16, "BF16": dtBF16, "F64": dtF64,
	"I8": dtI8, "U8": dtU8, "BOOL": dtBool, "I16": dtI16, "U16": dtU16,
	"I32": dtI32, "U32": dtU32, "I64": dtI64, "U64": dtU64,
}

// stEntry is one validated header entry.
type stEntry struct {
	name       string
	dt         *weightsDtype
	shape      []int64
	numel      int64
	begin, end int64
}

// ReadSafetensors reads a .safetensors file in one sequential pass,
// converting each tensor to float32 as its bytes arrive (the file's data
// section is never held in memory next to the converted tensors).
func ReadSafetensors(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readSafetensors(f, fi.Size(), path)
}

// DecodeSafetensors decodes a safetensors file held in memory; name is used
// in error messages.
func DecodeSafetensors(data []byte, name string) (map[string]*Tensor, error) {
	return readSafetensors(bytes.NewReader(data), int64(len(data)), name)
}

// readSafetensors decodes size bytes read sequentially from r.
func readSafetensors(r io.Reader, size int64, file string) (map[string]*Tensor, error) {
	if size < 8 {
		return nil, fmt.Errorf("%s: %d bytes: too short for a safetensors file (8-byte header length)", file, size)
	}
	var nb [8]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return nil, fmt.Errorf("%s: reading the header length: %w", file, err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > safetensorsMaxHeader {
		return nil, fmt.Errorf("%s: header length %d exceeds the format's limit of %d bytes", file, n, safetensorsMaxHeader)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%s: header length %d runs past the end of the %d-byte file", file, n, size)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%s: reading the %d-byte header: %w", file, n, unexpected(err))
	}
	entries, err := parseSafetensorsHeader(hdr, size-8-int64(n), file)
	if err != nil {
		return nil, err
	}
	ts := make(map[string]*Tensor, len(entries))
	var buf []byte
	for _, e := range entries {
		// Entries tile the data section in order (checked), so reading
		// them one after the other walks the file once.
		t := &Tensor{Name: e.name, Shape: intShape(e.shape), Data: make([]float32, e.numel)}
		if err := readDecode(r, t.Data, e.dt, false, &buf); err != nil {
			return nil, fmt.Errorf("%s: tensor %q (bytes %d..%d of the data): %w", file, e.name, e.begin, e.end, unexpected(err))
		}
		ts[e.name] = t
	}
	return ts, nil
}

// jsonEOF says what an EOF from the JSON decoder means here.
func jsonEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the header's JSON ends early")
	}
	return err
}

// stHeaderEntry is the JSON of one tensor. Pointers tell a missing field
// from a zero one.
type stHeaderEntry struct {
	Dtype   *string  `json:"dtype"`
	Shape   *[]int64 `json:"shape"`
	Offsets *[]int64 `json:"data_offsets"`
}

// parseSafetensorsHeader parses the JSON header and checks it against a
// data section of dataLen bytes. The entries come back sorted by offset.
func parseSafetensorsHeader(hdr []byte, dataLen int64, file string) ([]stEntry, error) {
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("%s: header is not valid UTF-8", file)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: header is not JSON: %w", file, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: header is not a JSON object", file)
	}
	var entries []stEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: header: %w", file, jsonEOF(err))
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s: header: object key expected", file)
		}
		if seen[name] {
			// serde (the reference) keeps one of the two silently; a
			// second definition is a broken or forged file.
			return nil, fmt.Errorf("%s: tensor %q is defined twice in the header", file, name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return nil, fmt.Errorf("%s: __metadata__ must map strings to strings: %w", file, jsonEOF(err))
			}
			continue
		}
		var he stHeaderEntry
		if err := dec.Decode(&he); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, name, jsonEOF(err))
		}
		e, err := checkSafetensorsEntry(name, &he)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, name, err)
		}
		entries = append(entries, e)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("%s: header: unterminated JSON object", file)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: header: data after the JSON object", file)
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var at int64
	for _, e := range entries {
		if e.begin != at {
			what := "overlaps the previous tensor"
			if e.begin > at {
				what = fmt.Sprintf("leaves bytes %d..%d of the data unused", at, e.begin)
			}
			return nil, fmt.Errorf("%s: tensor %q: data_offsets [%d, %d] %s (tensors must tile the data section)", file, e.name, e.begin, e.end, what)
		}
		if e.end > dataLen {
			return nil, fmt.Errorf("%s: tensor %q: data_offsets [%d, %d] run past the %d-byte data section", file, e.name, e.begin, e.end, dataLen)
		}
		at = e.end
	}
	if at != dataLen {
		return nil, fmt.Errorf("%s: the tensors cover %d bytes, but the data section has %d", file, at, dataLen)
	}
	return entries, nil
}

func checkSafetensorsEntry(name string, he *stHeaderEntry) (stEntry, error) {
	e := stEntry{name: name}
	if he.Dtype == nil || he.Shape == nil || he.Offsets == nil {
		return e, errors.New(`needs "dtype", "shape" and "data_offsets"`)
	}
	dt, ok := safetensorsDtypes[*he.Dtype]
	if !ok {
		return e, fmt.Errorf("dtype %q is not supported (F32, F16, BF16, F64 and integer types are)", *he.Dtype)
	}
	e.dt = dt
	numel, err := tensorElems(*he.Shape)
	if err != nil {
		return e, err
	}
	e.shape, e.numel = *he.Shape, numel
	if len(*he.Offsets) != 2 {
		return e, fmt.Errorf("data_offsets %v: want [begin, end]", *he.Offsets)
	}
	e.begin, e.end = (*he.Offsets)[0], (*he.Offsets)[1]
	if e.begin < 0 || e.end < e.begin {
		return e, fmt.Errorf("data_offsets [%d, %d]: want 0 ≤ begin ≤ end", e.begin, e.end)
	}
	if want := numel * int64(dt.size); e.end-e.begin != want { // ≤ 2^31·8: no overflow
		return e, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", e.begin, e.end, e.end-e.begin, dt.name, *he.Shape, want)
	}
	return e, nil
}
