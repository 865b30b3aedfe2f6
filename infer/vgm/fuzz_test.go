package vgm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// FuzzDecodeFile feeds Decode arbitrary bytes, starting from real model
// files. It must never panic (the recover in Decode turns a panic into
// a "decoder bug" error, which fails here), its errors are one line, and a
// file it accepts validates and survives a re-encode: encoding the decoded
// model and decoding that again gives the same bytes once more.
func FuzzDecodeFile(f *testing.F) {
	if golden, err := os.ReadFile(filepath.Join("testdata", "tiny.vgm")); err == nil {
		f.Add(golden)
	}
	q, err := infer.RandomQModel(smallNet(5), 5)
	if err != nil {
		f.Fatal(err)
	}
	arch, err := infer.VGG("vgg11_bn", infer.Shape{C: 3, H: 32, W: 32}, 10)
	if err != nil {
		f.Fatal(err)
	}
	tiny := tinyFile()
	for _, file := range []*File{
		tiny,
		{Float: tiny.Float},
		{Int8: tiny.Int8},
		{Float: smallNet(5)},
		{Int8: q},
		{Float: arch},
		{Float: seNet(2)}, // squeeze-excite, stride-2 1x1
	} {
		f.Add(encode(f, file))
	}
	// A file with unknown keys of every msgpack type.
	f.Add(withTopKey(f, encode(f, &File{Int8: tinyQModel()}),
		mp(f, "future", []any{nil, true, 1, -1, 300, -300, 70000, int64(1) << 40, 1.5, float32(2.5), "s", []byte{1}, map[string]int{"a": 1}})))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data, "fuzz.vgm")
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "decoder bug") {
				t.Fatalf("Decode panicked: %v", err)
			}
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "load fuzz.vgm: ") {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		if file.Float == nil && file.Int8 == nil {
			t.Fatal("decoded a file with no model")
		}
		if file.Int8 != nil {
			if err := file.Int8.Validate(); err != nil {
				t.Fatalf("decoded int8 model does not validate: %v", err)
			}
		}
		if file.Float != nil {
			if _, err := file.Float.Clone().Resolve(); err != nil {
				t.Fatalf("decoded float model does not resolve: %v", err)
			}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, file); err != nil {
			t.Fatalf("decoded model does not re-encode: %v", err)
		}
		again, err := Decode(buf.Bytes(), "again.vgm")
		if err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		var buf2 bytes.Buffer
		if err := Encode(&buf2, again); err != nil {
			t.Fatalf("second re-encode: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("encode(decode(x)) is not stable: %d then %d bytes", buf.Len(), buf2.Len())
		}
	})
}
