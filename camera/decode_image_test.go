package camera

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// lyingJPEG is a real 8x8 JPEG whose frame header (SOF0) claims w x h.
func lyingJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 in the encoded JPEG")
	}
	b[i+5], b[i+6], b[i+7], b[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return b
}

// allocated is the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A few hundred bytes claiming 32000x32000 (image/jpeg would allocate
// ~1.5 GB for its planes), or a size within the pixel limit that the file
// is far too small to hold: one-line errors, and almost nothing allocated.
func TestDecodeImageRefusesLyingSizes(t *testing.T) {
	for _, tt := range []struct {
		w, h int
		want string
	}{
		{32000, 32000, "jpeg of 32000x32000: want sides from 1 to 16384"},
		{16000, 16000, "jpeg of 16000x16000 (256000000 pixels): beyond the 16777216 pixels vggedge decodes"},
		{4000, 3000, "jpeg of 4000x3000 needs at least 46875 bytes of coded data, the file has"},
	} {
		data := lyingJPEG(t, tt.w, tt.h)
		var err error
		n := allocated(func() { _, err = DecodeImage(bytes.NewReader(data), int64(len(data))) })
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%d-byte JPEG claiming %dx%d: %v, want a one-line error containing %q", len(data), tt.w, tt.h, err, tt.want)
		}
		if n > 1<<20 {
			t.Errorf("%d-byte JPEG claiming %dx%d: %d bytes allocated before refusing", len(data), tt.w, tt.h, n)
		}
		t.Logf("%d-byte JPEG claiming %dx%d: %d bytes allocated: %v", len(data), tt.w, tt.h, n, err)
	}
	// A PNG header claiming more than the limit.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	p := buf.Bytes()
	p[16], p[17], p[18], p[19] = 0, 0, 0x3e, 0x80 // width 16000
	p[20], p[21], p[22], p[23] = 0, 0, 0x3e, 0x80 // height 16000
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	if _, err := DecodeImage(bytes.NewReader(p), int64(len(p))); err == nil || !strings.Contains(err.Error(), "png of 16000x16000") {
		t.Errorf("PNG claiming 16000x16000: %v", err)
	}
}

// Real images still decode, JPEG and PNG, from the start of the reader.
func TestDecodeImageReal(t *testing.T) {
	for _, ext := range []string{".jpg", ".png"} {
		path := filepath.Join(t.TempDir(), "x"+ext)
		writeImage(t, path, 300, 200, color.NRGBA{200, 10, 10, 255})
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		img, err := DecodeImage(f, fi.Size())
		f.Close()
		if err != nil || img.Bounds().Dx() != 300 || img.Bounds().Dy() != 200 {
			t.Errorf("%s: %v, %v", ext, err, img)
		}
	}
}

// Through file:// and an ImageFolder dataset: the hostile file is named in
// a one-line error (skipped by the source, an error for the dataset).
func TestHostileJPEGThroughSources(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a", "good.jpg"), 16, 16, color.NRGBA{0, 200, 0, 255})
	bomb := filepath.Join(dir, "a", "zbomb.jpg")
	os.WriteFile(bomb, lyingJPEG(t, 32000, 32000), 0o644)

	var log syncLog
	s, err := Open("file://"+filepath.Join(dir, "a", "*.jpg"), Options{Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	var n int
	for s.Read(&f) == nil {
		n++
	}
	s.Close()
	if n != 1 || !strings.Contains(log.String(), "zbomb.jpg: jpeg of 32000x32000") {
		t.Errorf("%d frames, log %q: want the good one and the bomb named", n, log.String())
	}

	ds, err := OpenDataset(dir, "", infer.Shape{C: 3, H: 8, W: 8}, infer.ImageNetSpec())
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 3*8*8)
	var errs []string
	for i := range ds.Len() {
		if _, err := ds.Sample(i, dst); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "zbomb.jpg: jpeg of 32000x32000") {
		t.Errorf("dataset errors %q, want one naming the bomb", errs)
	}
}

func FuzzDecodeImage(f *testing.F) {
	f.Add(lyingJPEG(f, 32000, 32000))
	f.Add(lyingJPEG(f, 8, 8))
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 2)))
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() < 1 || b.Dy() < 1 || b.Dx()*b.Dy() > MaxImagePixels {
			t.Errorf("decoded %v beyond the limits", b)
		}
	})
}
