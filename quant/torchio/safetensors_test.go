package torchio

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/gopickle/pytorch"
)

// Byte vectors from the reference implementation's own tests
// (huggingface/safetensors, safetensors/src/tensor.rs).
var (
	// test_serialization: "attn.0", F32 [1, 2, 3], values 0..5.
	refSerialization = []byte{
		64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
		116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
		58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
		101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
		0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
	}
	// test_serialization_forced_alignement: "attn0", F32 [1, 1, 2, 3].
	refAlignment = []byte{
		72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
		121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
		91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
		115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
		32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
		160, 64,
	}
	// test_empty, without and with {"framework": "pt"} metadata.
	refEmpty         = []byte{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}
	refEmptyMetadata = []byte{
		40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
		95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
		116, 34, 125, 125, 32, 32, 32, 32, 32,
	}
)

func TestWriteSafetensorsMatchesReference(t *testing.T) {
	vals := []float32{0, 1, 2, 3, 4, 5}
	for _, c := range []struct {
		name string
		ts   []*Tensor
		want []byte
	}{
		{"test_serialization", []*Tensor{{Name: "attn.0", Shape: []int{1, 2, 3}, Data: vals}}, refSerialization},
		{"test_serialization_forced_alignement", []*Tensor{{Name: "attn0", Shape: []int{1, 1, 2, 3}, Data: vals}}, refAlignment},
		{"test_empty", nil, refEmpty},
	} {
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, c.ts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, buf.Bytes(), c.want)
		}
	}
}

func TestDecodeSafetensorsReferenceVectors(t *testing.T) {
	ok := []struct {
		name  string
		data  []byte
		check map[string][]int // name → shape
	}{
		{"test_serialization", refSerialization, map[string][]int{"attn.0": {1, 2, 3}}},
		{"test_empty", refEmpty, nil},
		{"test_empty metadata", refEmptyMetadata, nil},
		{"test_deserialization", []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), map[string][]int{"test": {2, 2}}},
		{"test_empty_shapes_allowed", []byte("8\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}\x00\x00\x00\x00"), map[string][]int{"test": {}}},
		{"test_zero_sized_tensor", []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}"), map[string][]int{"test": {2, 0}}},
		{"test_whitespace_padded_header", []byte("\x06\x00\x00\x00\x00\x00\x00\x00{}\x0D\x20\x09\x0A"), nil},
		{"test_whitespace_leading_padded_header", []byte("\x06\x00\x00\x00\x00\x00\x00\x00\x09\x0A{}\x0D\x20"), nil},
	}
	for _, c := range ok {
		ts, err := DecodeSafetensors(c.data, c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(ts) != len(c.check) {
			t.Errorf("%s: %d tensors", c.name, len(ts))
		}
		for name, shape := range c.check {
			if ts[name] == nil || !slices.Equal(ts[name].Shape, shape) {
				t.Errorf("%s: tensor %q = %+v, want shape %v", c.name, name, ts[name], shape)
			}
		}
	}
	if ts, _ := DecodeSafetensors(refSerialization, "x"); !bitsEqual(ts["attn.0"].Data, []float32{0, 1, 2, 3, 4, 5}) {
		t.Errorf("test_serialization values %v", ts["attn.0"].Data)
	}

	attack := func() []byte {
		// test_json_attack: ten tensors all claiming bytes 0..16.
		var h strings.Builder
		h.WriteString("{")
		for i := 0; i < 10; i++ {
			if i > 0 {
				h.WriteString(",")
			}
			fmt.Fprintf(&h, `"weight_%d":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`, i)
		}
		h.WriteString("}")
		return stRaw(h.String(), make([]byte, 16))
	}()
	bad := map[string][]byte{
		"test_metadata_incomplete_buffer (extra)": []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00extra_bogus_data_for_polyglot_file"),
		"test_metadata_incomplete_buffer (short)": []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"test_header_too_large":                   []byte("<\x00\x00\x00\x00\xff\xff\xff{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"test_header_too_small":                   {},
		"test_invalid_header_length":              []byte("<\x00\x00\x00\x00\x00\x00\x00"),
		"test_invalid_header_non_utf8":            []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff"),
		"test_invalid_header_not_json":            []byte("\x01\x00\x00\x00\x00\x00\x00\x00{"),
		"test_invalid_info":                       []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}"),
		"test_json_attack":                        attack,
	}
	for name, data := range bad {
		if _, err := DecodeSafetensors(data, "ref.safetensors"); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "ref.safetensors") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

// stRaw assembles a safetensors file from a header and data section.
func stRaw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// stEntryBytes is one tensor for stFile.
type stEntryBytes struct {
	name, dtype string
	shape       []int
	data        []byte
}

// stFile lays tensors out back to back, as the reference does.
func stFile(es ...stEntryBytes) []byte {
	var h strings.Builder
	var data []byte
	h.WriteString("{")
	for i, e := range es {
		if i > 0 {
			h.WriteString(",")
		}
		shape := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(e.shape)), ","), "[]")
		fmt.Fprintf(&h, `%q:{"dtype":%q,"shape":[%s],"data_offsets":[%d,%d]}`, e.name, e.dtype, shape, len(data), len(data)+len(e.data))
		data = append(data, e.data...)
	}
	h.WriteString("}")
	return stRaw(h.String(), data)
}

func le16(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

func le32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func le64(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func TestSafetensorsDtypes(t *testing.T) {
	f32 := math.Float32frombits
	inf := float32(math.Inf(1))
	cases := []struct {
		dtype string
		data  []byte
		want  []float32
	}{
		{"F32", le32(0x3f800000, 0xc0000000, 0x7f800000, 0x00000001), []float32{1, -2, inf, f32(1)}},
		// 1, -2, 2^-24 (smallest subnormal), largest subnormal, 65504, ±Inf, -0
		{"F16", le16(0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x8000),
			[]float32{1, -2, 1.0 / (1 << 24), 1023.0 / (1 << 24), 65504, inf, -inf, f32(0x80000000)}},
		{"BF16", le16(0x3f80, 0xc040, 0x7f80, 0x0001), []float32{1, -3, inf, f32(0x00010000)}},
		{"F64", le64(math.Float64bits(1.5), math.Float64bits(-2.25), math.Float64bits(1e300), math.Float64bits(math.Pi)),
			[]float32{1.5, -2.25, inf, math.Pi}},
		{"I8", []byte{0x80, 0x7f}, []float32{-128, 127}},
		{"U8", []byte{0, 255}, []float32{0, 255}},
		{"BOOL", []byte{0, 1, 2}, []float32{0, 1, 1}},
		{"I16", le16(0x8000, 7), []float32{-32768, 7}},
		{"U16", le16(0xffff), []float32{65535}},
		{"I32", le32(0x80000000, 5), []float32{-2147483648, 5}},
		{"U32", le32(0xffffffff), []float32{4294967295}},
		{"I64", le64(uint64(1<<64-5), 1<<40), []float32{-5, 1 << 40}},
		{"U64", le64(1<<64 - 1), []float32{1 << 64}},
	}
	var es []stEntryBytes
	for _, c := range cases {
		es = append(es, stEntryBytes{c.dtype, c.dtype, []int{len(c.want)}, c.data})
	}
	ts, err := DecodeSafetensors(stFile(es...), "dtypes.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := ts[c.dtype]; got == nil || !bitsEqual(got.Data, c.want) {
			t.Errorf("%s: got %+v, want %v", c.dtype, got, c.want)
		}
	}
	// NaN keeps its payload bits through F16 and BF16.
	ts, err = DecodeSafetensors(stFile(
		stEntryBytes{"h", "F16", []int{1}, le16(0x7e01)},
		stEntryBytes{"b", "BF16", []int{1}, le16(0xffc1)},
	), "nan.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if h, b := math.Float32bits(ts["h"].Data[0]), math.Float32bits(ts["b"].Data[0]); h != 0x7fc02000 || b != 0xffc10000 {
		t.Errorf("NaN bits %08x %08x", h, b)
	}
}

// TestHalfToFloat32AllValues checks every half-precision value against
// its definition, (-1)^s·2^(e-15)·(1+m/1024) (subnormals 2^-14·m/1024),
// computed in float64; and against gopickle's table-driven converter (the
// one its PyTorch loader uses) for the normal values — gopickle v0.2.0
// gets subnormals, -0, ±Inf and NaN wrong (its convertMantissa loop
// condition is inverted, and exponent 31 maps to 2^16), so it is no
// reference there.
func TestHalfToFloat32AllValues(t *testing.T) {
	gopickleWrong := 0
	for h := 0; h < 1<<16; h++ {
		got := halfToFloat32(uint16(h))
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch e {
		case 0x1f:
			if m != 0 {
				if pytorch.FloatBits16to32(uint16(h)) != math.Float32bits(got) {
					gopickleWrong++
				}
				if !math.IsNaN(float64(got)) || math.Float32bits(got)&0x1fff != 0 || math.Float32bits(got)>>13&0x3ff != uint32(m) {
					t.Fatalf("half %#04x: %#08x, want a NaN with payload %#x", h, math.Float32bits(got), m)
				}
				continue
			}
			want = math.Inf(1)
		case 0:
			want = math.Ldexp(float64(m)/1024, -14)
		default:
			want = math.Ldexp(1+float64(m)/1024, e-15)
		}
		if s == 1 {
			want = -want
		}
		if math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("half %#04x: %v (%#08x), want %v", h, got, math.Float32bits(got), want)
		}
		normal := e != 0 && e != 0x1f
		if normal && pytorch.FloatBits16to32(uint16(h)) != math.Float32bits(got) {
			t.Fatalf("half %#04x: %#08x, gopickle %#08x", h, math.Float32bits(got), pytorch.FloatBits16to32(uint16(h)))
		}
		if !normal && pytorch.FloatBits16to32(uint16(h)) != math.Float32bits(got) {
			gopickleWrong++
		}
	}
	t.Logf("gopickle's converter differs on %d of the 4096 zero, subnormal, Inf and NaN halves", gopickleWrong)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := map[string][]int{
		"features.0.weight": {16, 3, 3, 3},
		"features.0.bias":   {16},
		"scalar":            {},
		"empty":             {3, 0},
		`odd "name"\	é`:     {2},
		"classifier.weight": {10, 64},
	}
	order := []string{"features.0.weight", "features.0.bias", "scalar", "empty", `odd "name"\	é`, "classifier.weight"}
	want := randTensors(rng, shapes, order)
	want[len(want)-1].Data[0] = float32(math.NaN())
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, want); err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()[8:8+binary.LittleEndian.Uint64(buf.Bytes())])%8 != 0 {
		t.Error("header not padded to 8 bytes")
	}
	got, err := DecodeSafetensors(buf.Bytes(), "mem")
	if err != nil {
		t.Fatal(err)
	}
	checkSameTensors(t, got, want)

	// The file reader, and Load on a misleading extension.
	path := filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSameTensors(t, got, want)
	got, sum, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSameTensors(t, got, want)
	if w := sha256.Sum256(buf.Bytes()); sum != hex.EncodeToString(w[:]) {
		t.Errorf("sha256 %s, want %x", sum, w)
	}

	// Writer input errors.
	for _, bad := range [][]*Tensor{
		{{Name: "a", Shape: []int{2}, Data: []float32{1}}},
		{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}},
		{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}},
		{{Name: "\xff", Shape: []int{1}, Data: []float32{1}}},
		{{Name: "neg", Shape: []int{-1}, Data: nil}},
		{nil},
	} {
		if err := WriteSafetensors(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("WriteSafetensors(%v): no error", bad)
		}
	}
}

// TestSafetensorsHostile: forged headers give errors naming the file and,
// where there is one, the tensor — never a panic or an allocation the file
// does not back.
func TestSafetensorsHostile(t *testing.T) {
	f32x4 := make([]byte, 16)
	hdr := func(h string, data []byte) []byte { return stRaw(h, data) }
	cases := []struct {
		name string
		data []byte
		want []string // substrings of the error
	}{
		{"huge header length", append(le64(1<<62), "{}"...), []string{"header length"}},
		{"header past EOF", append(le64(1000), "{}"...), []string{"past the end"}},
		{"header over 100 MB", append(le64(100_000_001), "{}"...), []string{"limit"}},
		{"bad JSON", hdr(`{"a":`, nil), []string{`"a"`, "ends early"}},
		{"not an object", hdr(`[1,2]`, nil), []string{"not a JSON object"}},
		{"trailing JSON", hdr(`{}{}`, nil), []string{"after the JSON"}},
		{"duplicate", hdr(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32x4[:4]), []string{`"a"`, "twice"}},
		{"unknown dtype", hdr(`{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`, f32x4[:4]), []string{`"w"`, "F8_E4M3"}},
		{"missing field", hdr(`{"w":{"dtype":"F32","shape":[4]}}`, f32x4), []string{`"w"`, "data_offsets"}},
		{"offsets out of range", hdr(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1600]}}`, f32x4), []string{`"w"`}},
		{"negative offset", hdr(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}`, f32x4), []string{`"w"`}},
		{"reversed offsets", hdr(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}`, f32x4), []string{`"w"`}},
		{"three offsets", hdr(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}}`, f32x4), []string{`"w"`}},
		{"float offset", hdr(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16.5]}}`, f32x4), []string{`"w"`}},
		{"shape/size mismatch", hdr(`{"w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}`, f32x4), []string{`"w"`, "needs 20"}},
		{"dtype/size mismatch", hdr(`{"w":{"dtype":"F64","shape":[4],"data_offsets":[0,16]}}`, f32x4), []string{`"w"`}},
		{"negative dim", hdr(`{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}`, f32x4), []string{`"w"`, "negative"}},
		{"overflowing shape", hdr(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}}`, f32x4), []string{`"w"`}},
		{"shape product overflow", hdr(`{"w":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,4],"data_offsets":[0,16]}}`, f32x4), []string{`"w"`}},
		{"huge shape backed by nothing", hdr(`{"w":{"dtype":"F32","shape":[536870911],"data_offsets":[0,2147483644]}}`, f32x4), []string{`"w"`}},
		{"overlap", hdr(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, f32x4), []string{"overlaps"}},
		{"gap", hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, f32x4), []string{`"a"`, "unused"}},
		{"data beyond tensors", hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32x4), []string{"cover 8 bytes"}},
		{"metadata not strings", hdr(`{"__metadata__":{"a":1}}`, nil), []string{"__metadata__"}},
		{"invalid UTF-8", hdr("{\"\xff\":1}", nil), []string{"UTF-8"}},
		{"tensor not object", hdr(`{"w":[1,2]}`, nil), []string{`"w"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeSafetensors(c.data, "evil.safetensors")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(c.want, "evil.safetensors") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// Truncating a valid file anywhere fails, through the file reader too.
	var buf bytes.Buffer
	WriteSafetensors(&buf, []*Tensor{{Name: "a", Shape: []int{3}, Data: []float32{1, 2, 3}}, {Name: "b", Shape: []int{1}, Data: []float32{4}}})
	dir := t.TempDir()
	for n := 0; n < buf.Len(); n++ {
		if _, err := DecodeSafetensors(buf.Bytes()[:n], "cut"); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	path := filepath.Join(dir, "cut.safetensors")
	os.WriteFile(path, buf.Bytes()[:buf.Len()-2], 0o644)
	if _, err := ReadSafetensors(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: %v", err)
	}
}

func TestLoadUnknown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	os.WriteFile(path, []byte("hello, world"), 0o644)
	_, _, err := Load(path)
	wantErr(t, err, path)
	_, _, err = Load(filepath.Join(dir, "missing.pth"))
	wantErr(t, err, "missing.pth")
	// A .pth that holds a safetensors file is read as what it is.
	var buf bytes.Buffer
	WriteSafetensors(&buf, []*Tensor{{Name: "w", Shape: []int{1}, Data: []float32{2}}})
	path = filepath.Join(dir, "mislabelled.pth")
	os.WriteFile(path, buf.Bytes(), 0o644)
	if ts, _, err := Load(path); err != nil || ts["w"].Data[0] != 2 {
		t.Errorf("safetensors in a .pth: %v", err)
	}
}

func FuzzReadSafetensors(f *testing.F) {
	for _, seed := range [][]byte{refSerialization, refAlignment, refEmpty, refEmptyMetadata,
		[]byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		stFile(stEntryBytes{"h", "F16", []int{2}, le16(1, 2)}, stEntryBytes{"b", "BF16", []int{1, 1}, le16(3)},
			stEntryBytes{"d", "F64", []int{1}, le64(4)}, stEntryBytes{"i", "I64", nil, le64(5)}),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := DecodeSafetensors(data, "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		var all []*Tensor
		for name, tt := range ts {
			n := 1
			for _, d := range tt.Shape {
				n *= d
			}
			if tt.Name != name || n != len(tt.Data) {
				t.Fatalf("tensor %q: shape %v, %d values", name, tt.Shape, len(tt.Data))
			}
			all = append(all, tt)
		}
		// What was read writes and reads back unchanged.
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, all); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := DecodeSafetensors(buf.Bytes(), "rewrite")
		if err != nil {
			t.Fatalf("reread: %v", err)
		}
		checkSameTensors(t, again, all)
	})
}
