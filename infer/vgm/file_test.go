package vgm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/vggedge/vggedge/infer"
	"github.com/vmihailenco/msgpack/v5"
)

var updateVGM = flag.Bool("update-vgm", false, "rewrite testdata/tiny.vgm from tinyFile()")

// tinyQModel is a hand-built int8 model on tinyModel's 1x4x4 input:
// conv 2x2 (ReLU fused) → max-pool → flatten → Linear logits.
func tinyQModel() *infer.QModel {
	return &infer.QModel{Name: "tiny", Input: infer.Shape{C: 1, H: 4, W: 4}, Layers: []infer.QLayer{
		{Name: "features.0", Kind: infer.Conv2d, In: 1, Out: 2, KH: 2, KW: 2, Stride: 1, ReLU: true,
			Weight: []int8{127, 0, 0, 127, 0, 127, -127, 0}, WScale: []float32{0.01, 0.02},
			Bias: []int32{100, -50}, Mult: []int32{1 << 30, 1 << 29}, Shift: []int32{-3, -2}, PadValue: []int8{0},
			InScale: 1, InZero: -128, OutScale: 0.05, OutZero: -128},
		{Name: "features.3", Kind: infer.MaxPool2d, KH: 2, KW: 2, Stride: 2, InScale: 0.05, InZero: -128, OutScale: 0.05, OutZero: -128},
		{Name: "flatten", Kind: infer.Flatten, InScale: 0.05, InZero: -128, OutScale: 0.05, OutZero: -128},
		{Name: "classifier.0", Kind: infer.Linear, In: 2, Out: 2, Logits: true,
			Weight: []int8{1, -2, 3, -4}, WScale: []float32{0.5, 0.25}, Bias: []int32{7, -7},
			InScale: 0.05, InZero: -128},
	}}
}

func tinyMeta() infer.Meta {
	return infer.Meta{
		Spec:   infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.5}, Std: []float32{0.25}, Resize: "stretch"},
		Labels: []string{"yes", "no"},
		Prov: infer.Provenance{SourceFile: "tiny.pth", SourceSHA256: strings.Repeat("ab", 32), Calibration: "percentile",
			Percentile: 99.99, Samples: 16, Version: "test", Created: "2025-01-02T03:04:05Z", Notes: "hand-built\nfor tests"},
	}
}

// tinyFile is the file of testdata/tiny.vgm: tinyModel (with BatchNorm)
// and tinyQModel with tinyMeta.
func tinyFile() *File {
	m, _ := tinyModel()
	m.Class = "VGG"
	q := tinyQModel()
	m.Meta, q.Meta = tinyMeta(), tinyMeta()
	return &File{Float: m, Int8: q}
}

// smallNet is a VGG-shaped float model with weights, small enough to encode
// in every test: conv+BN+ReLU, max-pool, conv without bias, avg-pool,
// flatten, Linear+ReLU+Dropout, Linear.
func smallNet(seed uint64) *infer.Model {
	m := &infer.Model{Name: "small", Class: "VGG", Input: infer.Shape{C: 3, H: 8, W: 8}, Layers: []infer.Layer{
		{Name: "features.0", Kind: infer.Conv2d, Out: 4, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
		{Name: "features.1", Kind: infer.BatchNorm2d, Eps: 1e-5},
		{Name: "features.2", Kind: infer.ReLU},
		{Name: "features.3", Kind: infer.MaxPool2d, KH: 2, KW: 2, Stride: 2},
		{Name: "features.4", Kind: infer.Conv2d, Out: 6, KH: 3, KW: 3, Stride: 1, Pad: 1},
		{Name: "features.5", Kind: infer.ReLU},
		{Name: "avgpool", Kind: infer.AdaptiveAvgPool2d, OutH: 2, OutW: 2},
		{Name: "flatten", Kind: infer.Flatten, Functional: true},
		{Name: "classifier.0", Kind: infer.Linear, Out: 7, Bias: true},
		{Name: "classifier.1", Kind: infer.ReLU},
		{Name: "classifier.2", Kind: infer.Dropout, P: 0.5},
		{Name: "classifier.3", Kind: infer.Linear, Out: 3, Bias: true},
	}}
	if _, err := m.Resolve(); err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	vals := func(n int, off float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32() - 0.5 + off
		}
		return v
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case infer.Conv2d:
			l.Weight = vals(l.Out*l.In*l.KH*l.KW, 0)
		case infer.Linear:
			l.Weight = vals(l.Out*l.In, 0)
		case infer.BatchNorm2d:
			l.Gamma, l.Beta, l.Mean, l.Var = vals(l.In, 1), vals(l.In, 0), vals(l.In, 0), vals(l.In, 1)
		}
		if l.Bias {
			l.BiasData = vals(l.Out, 0)
		}
	}
	m.Meta = infer.Meta{Spec: infer.ImageNetSpec(), Labels: []string{"cat", "dog", "bird"},
		Prov: infer.Provenance{SourceFile: "small.pth", SourceSHA256: strings.Repeat("0f", 32), Version: "test"}}
	return m
}

func smallQModel(t testing.TB, seed uint64) *infer.QModel {
	t.Helper()
	q, err := infer.RandomQModel(smallNet(seed), seed)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func encode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawEncode writes f without validating it: for files that are well-formed
// msgpack but wrong models.
func rawEncode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	e := &fileEncoder{e: msgpack.NewEncoder(bw), w: bw}
	if err := e.file(f); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func resolved(t testing.TB, m *infer.Model) *infer.Model {
	t.Helper()
	r := m.Clone()
	if _, err := r.Resolve(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestModelFileRoundTripFloat(t *testing.T) {
	for _, m := range []*infer.Model{smallNet(1), tinyFile().Float} {
		t.Run(m.Name, func(t *testing.T) {
			data := encode(t, &File{Float: m})
			f, err := Decode(data, "float.vgm")
			if err != nil {
				t.Fatal(err)
			}
			if f.Int8 != nil {
				t.Errorf("decoded an int8 model from a float-only file")
			}
			if want := resolved(t, m); !reflect.DeepEqual(f.Float, want) {
				t.Errorf("round trip changed the model:\n got  %+v\n want %+v", f.Float, want)
			}
			if f.Name() != m.Name || !reflect.DeepEqual(f.Meta(), m.Meta) {
				t.Errorf("Name/Meta = %q %+v, want %q %+v", f.Name(), f.Meta(), m.Name, m.Meta)
			}
			if again := encode(t, f); !bytes.Equal(again, data) {
				t.Errorf("re-encoding the decoded model gives different bytes")
			}
			// The decoded model runs and gives the original's outputs.
			x := make([]float32, m.Input.Elems())
			for i := range x {
				x[i] = float32(i%7) - 3
			}
			want, err := m.ForwardFloat(x)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Float.ForwardFloat(x)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("outputs %v, want %v", got, want)
			}
		})
	}
}

func TestModelFileRoundTripInt8(t *testing.T) {
	pil := smallQModel(t, 8)
	pil.Meta.Spec.ResizeFilter = infer.ResizeBilinearAntialias
	for _, q := range []*infer.QModel{smallQModel(t, 7), tinyQModel(), pil} {
		t.Run(q.Name, func(t *testing.T) {
			data := encode(t, &File{Int8: q})
			f, err := Decode(data, "int8.vgm")
			if err != nil {
				t.Fatal(err)
			}
			if f.Float != nil {
				t.Errorf("decoded a float model from an int8-only file")
			}
			if !reflect.DeepEqual(f.Int8, q) {
				t.Errorf("round trip changed the model:\n got  %+v\n want %+v", f.Int8, q)
			}
			if f.Name() != q.Name || !reflect.DeepEqual(f.Meta(), q.Meta) {
				t.Errorf("Name/Meta = %q %+v, want %q %+v", f.Name(), f.Meta(), q.Name, q.Meta)
			}
			// int8 weights alias the file's bytes instead of being copied.
			for _, l := range f.Int8.Layers {
				for _, s := range [][]int8{l.Weight, l.PadValue} {
					if len(s) == 0 {
						continue
					}
					p := uintptr(unsafe.Pointer(&s[0]))
					if lo := uintptr(unsafe.Pointer(&data[0])); p < lo || p+uintptr(len(s)) > lo+uintptr(len(data)) {
						t.Errorf("layer %s: int8 tensor does not alias the file data", l.Name)
					}
				}
			}
			if again := encode(t, f); !bytes.Equal(again, data) {
				t.Errorf("re-encoding the decoded model gives different bytes")
			}
			if _, err := infer.NewSession(f.Int8); err != nil {
				t.Errorf("NewSession on the decoded model: %v", err)
			}
		})
	}
}

func TestModelFileRoundTripBoth(t *testing.T) {
	m := smallNet(3)
	q := smallQModel(t, 3)
	q.Meta.Prov.Calibration, q.Meta.Prov.Samples = "minmax", 100
	data := encode(t, &File{Float: m, Int8: q})
	f, err := Decode(data, "both.vgm")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Int8, q) {
		t.Errorf("int8 model changed:\n got  %+v\n want %+v", f.Int8, q)
	}
	// The float model comes back with the file's (the int8 model's) meta.
	want := resolved(t, m)
	want.Meta = q.Meta
	if !reflect.DeepEqual(f.Float, want) {
		t.Errorf("float model changed:\n got  %+v\n want %+v", f.Float, want)
	}
	if f.Meta().Prov.Calibration != "minmax" || f.Name() != "small" {
		t.Errorf("Meta/Name = %+v %q", f.Meta(), f.Name())
	}

	// A float model with no meta of its own takes the int8 model's.
	bare := smallNet(3)
	bare.Name, bare.Meta = "", infer.Meta{}
	if got := encode(t, &File{Float: bare, Int8: q}); !bytes.Equal(got, data) {
		t.Errorf("a float model without name and meta should encode as one with the int8 model's")
	}
}

func TestModelFileArchitectureOnly(t *testing.T) {
	m, err := infer.VGG("vgg16_bn", infer.DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	data := encode(t, &File{Float: m})
	if len(data) > 4096 {
		t.Errorf("an architecture-only vgg16_bn takes %d bytes", len(data))
	}
	f, err := Decode(data, "vgg16.vgm")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Float, m) {
		t.Errorf("round trip changed the model")
	}
}

// TestModelFileGolden pins the format: a committed version-1 file must keep
// decoding to the same model, and encoding that model must reproduce it
// byte for byte. Run with -update-vgm after a deliberate format change (and
// raise FileVersion if old readers would misread the new file).
func TestModelFileGolden(t *testing.T) {
	path := filepath.Join("testdata", "tiny.vgm")
	data := encode(t, tinyFile())
	if *updateVGM {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Errorf("encoding tinyFile() no longer gives %s (%d bytes, now %d): the format changed", path, len(golden), len(data))
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := tinyFile()
	want.Float = resolved(t, want.Float)
	if !reflect.DeepEqual(f, want) {
		t.Errorf("%s decodes to\n %+v\n %+v\nwant\n %+v\n %+v", path, f.Float, f.Int8, want.Float, want.Int8)
	}
}

func TestSaveFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.vgm")
	good := tinyFile()
	if err := Save(path, good); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("new file has mode %v, want 0644", st.Mode().Perm())
	}
	old, _ := os.ReadFile(path)
	if f, err := Load(path); err != nil || f.Int8 == nil || f.Float == nil {
		t.Fatalf("Load after Save: %v", err)
	}

	only := func() {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "m.vgm" {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("directory holds %v, want only m.vgm", names)
		}
	}
	// A model that fails validation: the old file stays, no temp file.
	bad := tinyFile()
	bad.Int8.Layers[0].WScale[1] = float32(math.NaN())
	err = Save(path, bad)
	if err == nil || !strings.Contains(err.Error(), "save "+path+": int8 layer 0 features.0: w_scale[1] NaN") {
		t.Errorf("Save(bad) = %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Errorf("a failed Save changed the existing file")
	}
	only()
	if err := Save(path, &File{}); err == nil {
		t.Errorf("Save of an empty File succeeded")
	}
	only()

	// Replacing keeps the file's mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, &File{Float: smallNet(1)}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file has mode %v, want 0600 kept", st.Mode().Perm())
	}
	if f, err := Load(path); err != nil || f.Name() != "small" {
		t.Errorf("Load after replacing: %v", err)
	}
	only()

	if err := Save(filepath.Join(dir, "missing", "m.vgm"), good); err == nil {
		t.Errorf("Save into a missing directory succeeded")
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "none.vgm"))
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "load "+filepath.Join(dir, "none.vgm")+": no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	// A sparse file just over the limit is refused before it is read.
	big := filepath.Join(dir, "big.vgm")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(MaxFileSize + 1); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	fh.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than the 4294967296 bytes a model file may have") {
		t.Errorf("huge file: %v", err)
	}
	runtime.ReadMemStats(&ms)
	if d := ms.TotalAlloc - before; d > 1<<20 {
		t.Errorf("refusing a huge file allocated %d bytes", d)
	}
}

func TestEncodeFileErrors(t *testing.T) {
	otherInput := tinyFile()
	otherInput.Float.Input = infer.Shape{C: 1, H: 5, W: 5}
	otherName := tinyFile()
	otherName.Float.Name = "other"
	otherLabels := tinyFile()
	otherLabels.Float.Meta.Labels = []string{"a", "b"}
	nanWeight := &File{Float: smallNet(1)}
	nanWeight.Float.Layers[0].Weight[3] = float32(math.Inf(1))
	badName := &File{Int8: tinyQModel()}
	badName.Int8.Layers[1].Name = "pool\n2"
	for _, c := range []struct {
		name string
		f    *File
		want string
	}{
		{"nil", nil, "no model to write"},
		{"empty", &File{}, "no model to write"},
		{"input", otherInput, "the float model's input 1x5x5 differs from the int8 model's 1x4x4"},
		{"name", otherName, "the float model is called other, the int8 model tiny"},
		{"labels", otherLabels, "different labels"},
		{"inf weight", nanWeight, "float layer 0 features.0: weight[3] +Inf: must be finite"},
		{"name with newline", badName, `int8 layer 1 "pool\n2": name: contains the control character U+000A`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, c.f)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Encode = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// checkLoadErr checks that decoding data fails with a one-line error naming
// the file and containing want, without the decoder panicking.
func checkLoadErr(t *testing.T, data []byte, want string) {
	t.Helper()
	_, err := Decode(data, "bad.vgm")
	switch {
	case err == nil:
		t.Errorf("decoded without error, want %q", want)
	case strings.Contains(err.Error(), "decoder bug"):
		t.Errorf("decoder panicked: %v", err)
	case !strings.HasPrefix(err.Error(), "load bad.vgm: ") || strings.Contains(err.Error(), "\n"):
		t.Errorf("error %q: want one line beginning with the file name", err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("error %q\n does not contain %q", err, want)
	}
}

// splice replaces data[at:at+n] with repl.
func splice(data []byte, at, n int, repl ...byte) []byte {
	out := append([]byte(nil), data[:at]...)
	out = append(out, repl...)
	return append(out, data[at+n:]...)
}

// after returns the offset just after the first occurrence of the msgpack
// string key in data.
func after(t testing.TB, data []byte, key string) int {
	t.Helper()
	pat := append([]byte{byte(0xa0 + len(key))}, key...)
	i := bytes.Index(data, pat)
	if i < 0 {
		t.Fatalf("key %q not in the file", key)
	}
	return i + len(pat)
}

// withTopKey inserts the raw key/value pair kv into data's top-level map
// after "format" and "version" (data begins with a fixmap).
func withTopKey(t testing.TB, data, kv []byte) []byte {
	t.Helper()
	if data[0] < 0x80 || data[0] >= 0x8f {
		t.Fatalf("file does not begin with a small fixmap: %#x", data[0])
	}
	at := after(t, data, "version") + 1 // version is a fixint
	out := splice(data, at, 0, kv...)
	out[0]++
	return out
}

func mp(t testing.TB, vs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	for _, v := range vs {
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// rawFile builds a file by hand from ordered key/value pairs of the
// top-level map (values are encoded by msgpack's reflection; []byte is a
// bin).
func rawFile(t testing.TB, kvs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := e.EncodeMapLen(len(kvs) / 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range kvs {
		if raw, ok := v.(msgpack.RawMessage); ok {
			buf.Write(raw)
			continue
		}
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// rawMap encodes ordered key/value pairs as a map.
func rawMap(t testing.TB, kvs ...any) msgpack.RawMessage {
	return msgpack.RawMessage(rawFile(t, kvs...))
}

func rawArray(t testing.TB, vs ...msgpack.RawMessage) msgpack.RawMessage {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := e.EncodeArrayLen(len(vs)); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		buf.Write(v)
	}
	return buf.Bytes()
}

func f32bin(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestDecodeFileHostile(t *testing.T) {
	tiny := encode(t, tinyFile())
	q8 := encode(t, &File{Int8: tinyQModel()})
	fl := encode(t, &File{Float: tinyFile().Float})
	ff := func(layer msgpack.RawMessage) []byte {
		return rawFile(t, "format", FileMagic, "version", 1, "input", []int{1, 1, 2},
			"float", rawMap(t, "layers", rawArray(t, layer)))
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	manyLayers := &infer.Model{Name: "relus", Input: infer.Shape{C: 1, H: 1, W: 1}}
	for range maxFileLayers + 1 {
		manyLayers.Layers = append(manyLayers.Layers, infer.Layer{Name: "r", Kind: infer.ReLU})
	}
	deep := append(bytes.Repeat([]byte{0x91}, 1_000_000), 0xc0)
	// Layer 1 (the max-pool) is a fixmap: add a second "kind" to it.
	at := bytes.Index(q8, []byte("\xa4name\xaafeatures.3")) - 1
	dupKey := splice(q8, at, 1, append([]byte{q8[at] + 1}, mp(t, "kind", "relu")...)...)

	cases := []struct {
		name  string
		data  []byte
		want  string
		valid bool // the file is fine: unknown keys are skipped
	}{
		{"empty", nil, "not a vggedge model file: the file is empty", false},
		{"text", []byte("vggedge-model 1\n"), "not a vggedge model file: it does not begin with a msgpack map", false},
		{"wrong magic", bytes.Replace(tiny, []byte("vggedge-model"), []byte("vggedge-mode1"), 1),
			`not a vggedge model file: format is vggedge-mode1, want "vggedge-model"`, false},
		{"magic not a string", rawFile(t, "format", 1, "version", 1), "not a vggedge model file: format: want a string, got an integer", false},
		{"format not first", rawFile(t, "version", 1, "format", FileMagic), `it does not begin with the key "format"`, false},
		{"no version", rawFile(t, "format", FileMagic, "name", "x"), "version: missing (it must be the second key)", false},
		{"future version", splice(tiny, after(t, tiny, "version"), 1, 2),
			"model file version 2: this build of vggedge reads version 1 and older", false},
		{"version 0", splice(tiny, after(t, tiny, "version"), 1, 0), "version 0: must be at least 1", false},
		{"version string", splice(tiny, after(t, tiny, "version"), 1, 0xa1, '1'), "version: want an integer, got a string", false},
		{"trailing byte", append(append([]byte(nil), tiny...), 0xc0), "1 bytes after the end of the model", false},
		{"concatenated", append(append([]byte(nil), tiny...), tiny...), "bytes after the end of the model", false},
		{"missing input", rawFile(t, "format", FileMagic, "version", 1, "int8", rawMap(t, "layers", rawArray(t))), "input: missing", false},
		{"no model", rawFile(t, "format", FileMagic, "version", 1, "input", []int{1, 2, 2}), "holds neither a float nor an int8 model", false},
		{"no layers", rawFile(t, "format", FileMagic, "version", 1, "input", []int{1, 2, 2}, "int8", rawMap(t)), "int8: layers: missing", false},
		{"input of 2", rawFile(t, "format", FileMagic, "version", 1, "input", []int{1, 2}), "input: 2 values, want [C, H, W]", false},
		{"input negative", bytes.Replace(q8, []byte{0x93, 1, 4, 4}, []byte{0x93, 1, 0xff, 4}, 1), "input 1x-1x4: every dimension must be positive", false},
		{"input huge", bytes.Replace(q8, []byte{0x93, 1, 4, 4}, []byte{0x93, 1, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4}, 1),
			"input: [1]: 18446744073709551615 is out of range", false},

		// Length prefixes larger than the file.
		{"huge bin", splice(q8, after(t, q8, "weight"), 2, append([]byte{0xc6}, huge...)...),
			"int8 layer 0 features.0: weight: bin of 4294967295 bytes but", false},
		{"huge layers array", splice(q8, after(t, q8, "layers"), 1, append([]byte{0xdd}, huge...)...),
			"int8: layers: array of 4294967295 elements but", false},
		{"huge layer map", splice(q8, after(t, q8, "layers")+1, 1, append([]byte{0xdf}, huge...)...),
			"int8 layer 0: map of 4294967295 entries but", false},
		{"huge name", splice(q8, after(t, q8, "name"), 5, append([]byte{0xdb}, huge...)...),
			"name: string of 4294967295 bytes but", false},
		{"huge top map", splice(q8, 0, 1, append([]byte{0xdf}, huge...)...),
			"not a vggedge model file: map of 4294967295 entries but", false},
		{"huge labels", splice(tiny, after(t, tiny, "labels"), 1, append([]byte{0xdd}, huge...)...),
			"labels: array of 4294967295 elements but", false},
		{"huge spec map", splice(tiny, after(t, tiny, "spec"), 1, append([]byte{0xdf}, huge...)...),
			"spec: map of 4294967295 entries but", false},
		{"huge mean", splice(tiny, after(t, tiny, "mean"), 1, append([]byte{0xdd}, huge...)...),
			"spec: mean: array of 4294967295 elements but", false},
		{"huge float weight", splice(fl, after(t, fl, "weight"), 2, append([]byte{0xc6}, huge...)...),
			"float layer 0 features.0: weight: bin of 4294967295 bytes but", false},
		{"huge ext", withTopKey(t, q8, append(mp(t, "future"), append([]byte{0xc9}, append(huge, 1)...)...)),
			"future: ext of 4294967295 bytes but", false},
		{"huge unknown array", withTopKey(t, q8, append(mp(t, "future"), append([]byte{0xdd}, huge...)...)),
			"future: array of 4294967295 elements but", false},
		{"huge unknown str", withTopKey(t, q8, append(mp(t, "future"), append([]byte{0xdb}, huge...)...)),
			"future: value of 4294967295 bytes but", false},
		{"huge key", withTopKey(t, q8, append([]byte{0xdb}, huge...)), "map key: string of 4294967295 bytes but", false},
		{"too many layers", rawEncode(t, &File{Float: manyLayers}), "float: layers: array of 4097 elements: more than the 4096 allowed", false},

		// Forward compatibility: unknown keys of any shape are skipped.
		{"unknown key", withTopKey(t, q8, mp(t, "future", map[string]any{"a": []any{1, "x", 2.5, nil, true, []byte{1}}})), "", true},
		{"unknown ext", withTopKey(t, q8, append(mp(t, "future"), 0xd6, 5, 1, 2, 3, 4)), "", true},
		{"deeply nested unknown", withTopKey(t, q8, append(mp(t, "future"), deep...)), "", true},
		{"invalid code", withTopKey(t, q8, append(mp(t, "future"), 0xc1)), "future: invalid msgpack code 0xc1", false},
		{"duplicate key", withTopKey(t, q8, mp(t, "name", "again")), "name: the key appears twice", false},
		{"duplicate layer key", dupKey, "int8 layer 1 features.3: kind: the key appears twice", false},
		{"integer key", withTopKey(t, q8, mp(t, 1, 2)), "map key: want a string, got an integer", false},
		{"layers not an array", splice(q8, after(t, q8, "layers"), 1, 0xc0), "int8: layers: want an array, got nil", false},

		// Tensors.
		{"bin of 7 bytes", ff(rawMap(t, "name", "fc", "kind", "linear", "out", 1, "bias", false, "weight", make([]byte, 7))),
			"float layer 0 fc: weight: bin of 7 bytes is not a whole number of 4-byte values", false},
		{"weights as an array", ff(rawMap(t, "name", "fc", "kind", "linear", "out", 1, "weight", []float32{1, 2})),
			"float layer 0 fc: weight: want a bin, got an array", false},
		{"float layer ok", ff(rawMap(t, "name", "fc", "kind", "linear", "out", 1, "bias", f32bin(0.5), "weight", f32bin(1, 2))), "", true},
		{"float weight NaN", ff(rawMap(t, "name", "fc", "kind", "linear", "out", 1, "bias", false, "weight", f32bin(1, float32(math.NaN())))),
			"float layer 0 fc: weight[1] NaN: must be finite", false},
		{"wrong weight count", ff(rawMap(t, "name", "fc", "kind", "linear", "out", 1, "bias", false, "weight", f32bin(1, 2, 3))),
			"float layer 0 fc: weight has 3 values, want 2", false},
		{"unknown kind", ff(rawMap(t, "name", "x", "kind", "conv3d")), `float layer 0 x: unknown layer type "conv3d"`, false},
		{"pad too large", ff(rawMap(t, "name", "p", "kind", "maxpool2d", "kh", 2, "stride", 1, "pad", 1<<30)),
			"float layer 0 p: pad 1073741824: must be in [0, 1048576]", false},
		{"pad beyond int32", ff(rawMap(t, "name", "p", "kind", "maxpool2d", "pad", int64(1)<<40)),
			"float layer 0 p: pad: 1099511627776 is out of range [-2147483648, 2147483647]", false},
		{"eps NaN", ff(rawMap(t, "name", "bn", "kind", "batchnorm2d", "eps", math.NaN())), "float layer 0 bn: p 0, eps NaN: must be finite", false},
		{"p string", ff(rawMap(t, "name", "d", "kind", "dropout", "p", "0.5")), "float layer 0 d: p: want a number, got a string", false},
		{"weight on relu", ff(rawMap(t, "name", "r", "kind", "relu", "weight", f32bin(1))), "float layer 0 r: weight: a relu layer has no such parameter", false},
		{"escape in name", ff(rawMap(t, "name", "\x1b[31mred", "kind", "relu")), `float layer 0 "\x1b[31mred": name: contains the control character U+001B`, false},
		{"bad utf-8 name", ff(rawMap(t, "name", "a\xffb", "kind", "relu")), `float layer 0 "a\xffb": name: not valid UTF-8`, false},
	}

	// Semantic errors in well-formed files.
	mutQ := func(name, want string, mut func(q *infer.QModel)) {
		q := tinyQModel()
		mut(q)
		cases = append(cases, struct {
			name  string
			data  []byte
			want  string
			valid bool
		}{name, rawEncode(t, &File{Int8: q}), want, false})
	}
	mutQ("negative w_scale", "int8 layer 0 features.0: w_scale[1] -0.1: must be finite and positive", func(q *infer.QModel) { q.Layers[0].WScale[1] = -0.1 })
	mutQ("zero w_scale", "int8 layer 3 classifier.0: w_scale[0] 0: must be finite and positive", func(q *infer.QModel) { q.Layers[3].WScale[0] = 0 })
	mutQ("NaN w_scale", "int8 layer 0 features.0: w_scale[0] NaN: must be finite and positive", func(q *infer.QModel) { q.Layers[0].WScale[0] = float32(math.NaN()) })
	mutQ("NaN in_scale", "int8 layer 1 features.3: in_scale NaN, out_scale 0.05: must be finite", func(q *infer.QModel) { q.Layers[1].InScale = float32(math.NaN()) })
	mutQ("negative out_scale", "int8 layer 0 features.0: out_scale -1: must be finite and positive", func(q *infer.QModel) { q.Layers[0].OutScale = -1 })
	mutQ("weight -128", "int8 layer 3 classifier.0: weight[2] is -128: weights must be in [-127, 127]", func(q *infer.QModel) { q.Layers[3].Weight[2] = -128 })
	mutQ("shapes do not chain", "int8 layer 3 classifier.0: in_features 3, but its input has 2 values", func(q *infer.QModel) { q.Layers[3].In = 3 })
	mutQ("zero point", "int8 layer 0 features.0: zero points -128/200: must be in [-128, 127]", func(q *infer.QModel) { q.Layers[0].OutZero = 200 })
	mutQ("negative mult", "int8 layer 0 features.0: mult[1]/shift[1] = -5/-2", func(q *infer.QModel) { q.Layers[0].Mult[1] = -5 })
	mutQ("missing w_scale", "int8 layer 3 classifier.0: w_scale/bias have 0/2 values, want 2", func(q *infer.QModel) { q.Layers[3].WScale = nil })
	mutQ("pad_value on linear", "int8 layer 3 classifier.0: pad_value: a linear layer has no such parameter", func(q *infer.QModel) { q.Layers[3].PadValue = []int8{0} })
	mutQ("w_scale on pool", "int8 layer 1 features.3: w_scale: a maxpool2d layer has no such parameter", func(q *infer.QModel) { q.Layers[1].WScale = []float32{1} })
	mutQ("logits mult", "int8 layer 3 classifier.0: mult has 1 values, want 2", func(q *infer.QModel) { q.Layers[3].Mult = []int32{1} })
	mutQ("batchnorm in int8", `int8 layer 1 features.3: kind "batchnorm2d" cannot be in an int8 model`, func(q *infer.QModel) { q.Layers[1].Kind = infer.BatchNorm2d })
	mutQ("labels count", "labels: 3 labels for 2 outputs", func(q *infer.QModel) { q.Meta.Labels = []string{"a", "b", "c"} })
	mutQ("label newline", "labels[1]: contains the control character U+000A", func(q *infer.QModel) { q.Meta.Labels = []string{"a", "b\nc"} })
	mutQ("spec channels", "spec: channel_order RGB needs 3 input channels, the model has 1", func(q *infer.QModel) { q.Meta.Spec = infer.ImageNetSpec() })
	mutQ("spec std", "spec: channel 0: mean 0, std 0: want finite values and std > 0", func(q *infer.QModel) {
		q.Meta.Spec = infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0}, Std: []float32{0}, Resize: "stretch"}
	})
	mutQ("spec filter", `spec: resize_filter "lanczos": want bilinear-antialias or none (vggedge's area/bilinear)`, func(q *infer.QModel) {
		q.Meta.Spec = infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.5}, Std: []float32{0.5}, Resize: "stretch", ResizeFilter: "lanczos"}
	})
	mutQ("spec without order", `spec: channel_order "": want RGB, BGR or GRAY`, func(q *infer.QModel) { q.Meta.Spec = infer.InputSpec{Resize: "stretch"} })
	mutQ("percentile", "provenance: percentile NaN: must be in [0, 100]", func(q *infer.QModel) { q.Meta.Prov.Percentile = math.NaN() })
	mutQ("no layers", "int8: model has no layers", func(q *infer.QModel) { q.Layers = nil })

	mutF := func(name, want string, mut func(m *infer.Model)) {
		m, _ := tinyModel()
		mut(m)
		cases = append(cases, struct {
			name  string
			data  []byte
			want  string
			valid bool
		}{name, rawEncode(t, &File{Float: m}), want, false})
	}
	mutF("float shapes do not chain", "float layer 6 classifier.0: in_features 5, but its input has 4 values", func(m *infer.Model) { m.Layers[6].In = 5 })
	mutF("conv out mismatch", "float layer 0 features.0: weight has 8 values, want 12", func(m *infer.Model) { m.Layers[0].Out = 3 })
	mutF("negative var", "float layer 1 features.1: running_var[1] = -5 with eps 0.25: var+eps must be positive", func(m *infer.Model) { m.Layers[1].Var[1] = -5 })
	mutF("missing BN params", "float layer 1 features.1: no weight values", func(m *infer.Model) { m.Layers[1].Gamma = nil })
	mutF("bias flag without values", "float layer 6 classifier.0: bias=true but no bias values", func(m *infer.Model) { m.Layers[6].BiasData = nil })
	mutF("infinite bias", "float layer 6 classifier.0: bias[1] +Inf: must be finite", func(m *infer.Model) { m.Layers[6].BiasData[1] = float32(math.Inf(1)) })
	mutF("dropout p", "float layer 0 features.0: p 2: must be in [0, 1]", func(m *infer.Model) { m.Layers[0] = infer.Layer{Name: "features.0", Kind: infer.Dropout, P: 2} })

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.valid {
				f, err := Decode(c.data, "ok.vgm")
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				encode(t, f)
				return
			}
			checkLoadErr(t, c.data, c.want)
		})
	}
}

// TestDecodeFileBoundedAlloc checks that length prefixes cannot make the
// decoder allocate more than a few times the file's size.
func TestDecodeFileBoundedAlloc(t *testing.T) {
	q8 := encode(t, &File{Int8: tinyQModel()})
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"bin", splice(q8, after(t, q8, "weight"), 2, append([]byte{0xc6}, huge...)...)},
		{"array", splice(q8, after(t, q8, "layers"), 1, append([]byte{0xdd}, huge...)...)},
		{"string", splice(q8, after(t, q8, "name"), 5, append([]byte{0xdb}, huge...)...)},
		{"map", splice(q8, after(t, q8, "layers")+1, 1, append([]byte{0xdf}, huge...)...)},
		{"array16 of layers", splice(q8, after(t, q8, "layers"), 1, 0xdc, 0xff, 0xff)},
		{"labels", withTopKey(t, q8, append(mp(t, "labels"), append([]byte{0xdd}, huge...)...))},
		{"ext", withTopKey(t, q8, append(mp(t, "x"), append([]byte{0xc9}, append(huge, 1)...)...))},
		{"valid", q8},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Decode(c.data, "alloc.vgm"); (err == nil) != (c.name == "valid") {
				t.Fatalf("Decode: %v", err)
			}
			if best, limit := allocated(t, c.data), uint64(10*len(c.data)); best > limit {
				t.Errorf("decoding %d bytes allocated %d bytes, more than %d", len(c.data), best, limit)
			}
		})
	}

	// The int8 weights are not copied: decoding a 1 MiB model allocates
	// far less than that.
	m := &infer.Model{Name: "wide", Input: infer.Shape{C: 1024, H: 1, W: 1}, Layers: []infer.Layer{{Name: "fc", Kind: infer.Linear, Out: 1024, Bias: true}}}
	q, err := infer.RandomQModel(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	data := encode(t, &File{Int8: q})
	if d := allocated(t, data); d > uint64(len(data))/8 {
		t.Errorf("decoding a %d-byte int8 model allocated %d bytes: are the weights copied?", len(data), d)
	}
}

// allocated is how many bytes decoding data allocates: the least of a few
// runs, against allocations elsewhere in the process.
func allocated(t *testing.T, data []byte) uint64 {
	t.Helper()
	var ms runtime.MemStats
	best := uint64(math.MaxUint64)
	for range 3 {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		Decode(data, "alloc.vgm")
		runtime.ReadMemStats(&ms)
		best = min(best, ms.TotalAlloc-before)
	}
	return best
}

// TestDecodeFileTruncated cuts a real file at every offset: each prefix
// must be an error (the top-level map is never complete), never a panic.
func TestDecodeFileTruncated(t *testing.T) {
	for _, f := range []*File{tinyFile(), {Int8: smallQModel(t, 2)}} {
		data := encode(t, f)
		for n := range len(data) {
			_, err := Decode(data[:n:n], "cut.vgm")
			if err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", f.Name(), n, len(data))
			}
			if msg := err.Error(); strings.Contains(msg, "decoder bug") || strings.Contains(msg, "\n") {
				t.Fatalf("cut to %d bytes: %q", n, msg)
			}
		}
	}
}

// TestDecodeFileByteFlips damages a real file one byte at a time: each
// result is an error or a model that validates and re-encodes.
func TestDecodeFileByteFlips(t *testing.T) {
	data := encode(t, tinyFile())
	ok := 0
	for i := range data {
		for _, mut := range []func(byte) byte{
			func(b byte) byte { return b ^ 0xff },
			func(b byte) byte { return b ^ 0x01 },
			func(b byte) byte { return b ^ 0x80 },
			func(b byte) byte { return b + 1 },
			func(byte) byte { return 0x00 },
			func(byte) byte { return 0xc1 },
			func(byte) byte { return 0xdf },
			func(byte) byte { return 0xff },
		} {
			d := append([]byte(nil), data...)
			d[i] = mut(d[i])
			f, err := Decode(d, "flip.vgm")
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, "decoder bug") || strings.Contains(msg, "\n") {
					t.Fatalf("byte %d = %#x: %q", i, d[i], msg)
				}
				continue
			}
			ok++
			if _, err := Decode(encode(t, f), "again.vgm"); err != nil {
				t.Fatalf("byte %d = %#x: decoded, but the re-encoded model does not: %v", i, d[i], err)
			}
		}
	}
	t.Logf("%d of %d damaged files still decode (changed weights, names, …)", ok, 8*len(data))
}
