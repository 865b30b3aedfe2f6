package camera

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goJPEG encodes img with image/jpeg (4:2:0 for colour, one component for
// image.Gray): JPEGs from a second, independent encoder, at sizes ffmpeg
// will not write (odd ones).
func goJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rgbImage wraps packed RGB24 bytes as an image.RGBA.
func rgbImage(px []byte, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = px[3*i], px[3*i+1], px[3*i+2], 255
	}
	return img
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// jpegCases are the JPEGs the decoder must agree with image/jpeg on.
func jpegCases(t *testing.T) []struct {
	name string
	data []byte
} {
	src := readFixture(t, "testsrc2_64x48.rgb24")
	odd := image.NewRGBA(image.Rect(0, 0, 63, 47))
	gray := image.NewGray(image.Rect(0, 0, 37, 29))
	full := rgbImage(src, 64, 48)
	for y := range 47 {
		for x := range 63 {
			odd.Set(x, y, full.At(x, y))
		}
	}
	for y := range 29 {
		for x := range 37 {
			gray.Set(x, y, color.GrayModel.Convert(full.At(x+5, y+3)))
		}
	}
	cases := []struct {
		name string
		data []byte
	}{}
	for _, n := range []string{
		"testsrc2_64x48_420.jpg", "testsrc2_64x48_422.jpg", "testsrc2_64x48_444.jpg",
		"testsrc2_64x48_420_dri.jpg", "testsrc2_62x46_420.jpg", "testsrc2_160x120_422.jpg",
		"red_64x48_420.jpg",
	} {
		cases = append(cases, struct {
			name string
			data []byte
		}{n, readFixture(t, n)})
	}
	cases = append(cases,
		struct {
			name string
			data []byte
		}{"image/jpeg 63x47 4:2:0 q90", goJPEG(t, odd, 90)},
		struct {
			name string
			data []byte
		}{"image/jpeg 63x47 4:2:0 q100", goJPEG(t, odd, 100)},
		struct {
			name string
			data []byte
		}{"image/jpeg 37x29 grey q75", goJPEG(t, gray, 75)},
	)
	return cases
}

// TestJPEGMatchesImageJPEG decodes each JPEG with our decoder and with
// image/jpeg and compares the Y, Cb, Cr planes (the IDCT's output: within
// ±2, both being integer approximations of the exact IDCT) and the RGB
// pixels (within ±3: image/jpeg's YCbCr→RGB rounds differently, by up to
// one more).
func TestJPEGMatchesImageJPEG(t *testing.T) {
	for _, tc := range jpegCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var d JPEGDecoder
			if err := d.Decode(tc.data); err != nil {
				t.Fatal(err)
			}
			ref, err := jpeg.Decode(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			w, h := d.Size()
			if ref.Bounds().Dx() != w || ref.Bounds().Dy() != h {
				t.Fatalf("size %dx%d, image/jpeg %v", w, h, ref.Bounds())
			}
			planeMax, planeSum, n := 0, 0, 0
			cmp := func(c int, plane []byte, stride int, refPlane []byte, refStride, pw, ph int) {
				for y := range ph {
					for x := range pw {
						dd := absDiff(plane[y*stride+x], refPlane[y*refStride+x])
						planeMax, planeSum, n = max(planeMax, dd), planeSum+dd, n+1
						if dd > 2 {
							t.Fatalf("component %d at (%d,%d): %d, image/jpeg %d", c, x, y, plane[y*stride+x], refPlane[y*refStride+x])
						}
					}
				}
			}
			switch r := ref.(type) {
			case *image.Gray:
				if d.Components() != 1 {
					t.Fatalf("%d components, image/jpeg decoded grey", d.Components())
				}
				cmp(0, d.comp[0].plane, d.comp[0].stride, r.Pix, r.Stride, w, h)
			case *image.YCbCr:
				// image/jpeg's chroma rectangle: the luma size divided by
				// the subsampling, rounded up.
				cw := (w + 1<<d.comp[1].hs - 1) >> d.comp[1].hs
				ch := (h + 1<<d.comp[1].vs - 1) >> d.comp[1].vs
				cmp(0, d.comp[0].plane, d.comp[0].stride, r.Y, r.YStride, w, h)
				cmp(1, d.comp[1].plane, d.comp[1].stride, r.Cb, r.CStride, cw, ch)
				cmp(2, d.comp[2].plane, d.comp[2].stride, r.Cr, r.CStride, cw, ch)
			default:
				t.Fatalf("image/jpeg gave %T", ref)
			}
			rgb, err := ToRGB(nil, &Frame{Format: MJPEG, Data: tc.data})
			if err != nil {
				t.Fatal(err)
			}
			rgbMax, rgbSum := 0, 0
			for y := range h {
				for x := range w {
					r, g, b, _ := ref.At(x, y).RGBA()
					for c, v := range [3]uint32{r >> 8, g >> 8, b >> 8} {
						dd := absDiff(rgb[(y*w+x)*3+c], uint8(v))
						rgbMax, rgbSum = max(rgbMax, dd), rgbSum+dd
					}
				}
			}
			t.Logf("%dx%d: planes max %d mean %.3f; RGB max %d mean %.3f", w, h, planeMax, float64(planeSum)/float64(n), rgbMax, float64(rgbSum)/float64(3*w*h))
			if rgbMax > 3 {
				t.Errorf("RGB differs from image/jpeg by up to %d, want ≤ 3", rgbMax)
			}
		})
	}
}

// stdDHT is a DHT segment holding the four tables of T.81 Annex K.3.
func stdDHT() []byte {
	var body []byte
	for class := range 2 {
		for id := range 2 {
			s := stdHuffman[class][id]
			body = append(body, byte(class<<4|id))
			body = append(body, s.counts[:]...)
			body = append(body, s.vals...)
		}
	}
	return append([]byte{0xFF, 0xC4, byte((len(body) + 2) >> 8), byte(len(body) + 2)}, body...)
}

// TestJPEGWithoutDHT decodes the DHT-less MJPEG fixtures (UVC style):
// image/jpeg refuses them; with the standard tables inserted before SOS
// (what the camera means) it decodes them, and ours must agree.
func TestJPEGWithoutDHT(t *testing.T) {
	for _, name := range []string{"testsrc2_64x48_422_nodht.jpg", "red_64x48_422_nodht.jpg"} {
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			if bytes.Contains(data[:bytes.Index(data, []byte{0xFF, 0xDA})], []byte{0xFF, 0xC4}) {
				t.Fatal("fixture has a DHT segment; make.sh should have stripped it")
			}
			if _, err := jpeg.Decode(bytes.NewReader(data)); err == nil {
				t.Fatal("image/jpeg decoded a JPEG without DHT; the fixture does not test what it should")
			}
			sos := bytes.Index(data, []byte{0xFF, 0xDA})
			fixed := append(append(append([]byte{}, data[:sos]...), stdDHT()...), data[sos:]...)
			ref, err := jpeg.Decode(bytes.NewReader(fixed))
			if err != nil {
				t.Fatalf("image/jpeg with the standard DHT inserted: %v", err)
			}
			rgb, err := ToRGB(nil, &Frame{Format: MJPEG, Width: 64, Height: 48, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			worst := 0
			for y := range 48 {
				for x := range 64 {
					r, g, b, _ := ref.At(x, y).RGBA()
					for c, v := range [3]uint32{r >> 8, g >> 8, b >> 8} {
						worst = max(worst, absDiff(rgb[(y*64+x)*3+c], uint8(v)))
					}
				}
			}
			if worst > 3 {
				t.Errorf("differs from image/jpeg (standard tables inserted) by up to %d, want ≤ 3", worst)
			}
		})
	}
}

func TestJPEGRestartFixture(t *testing.T) {
	data := readFixture(t, "testsrc2_64x48_420_dri.jpg")
	if !bytes.Contains(data, []byte{0xFF, 0xDD, 0, 4}) || !bytes.Contains(data, []byte{0xFF, 0xD0}) {
		t.Fatal("fixture has no DRI segment or RST0 marker")
	}
	var d JPEGDecoder
	if err := d.Decode(data); err != nil {
		t.Fatal(err)
	}
	if d.restart == 0 {
		t.Fatal("restart interval not read")
	}
	// A wrong restart marker number is an error, not a silent misdecode.
	bad := bytes.Clone(data)
	i := bytes.Index(bad, []byte{0xFF, 0xD0})
	bad[i+1] = 0xD3
	if err := d.Decode(bad); err == nil || !strings.Contains(err.Error(), "restart marker RST0") {
		t.Fatalf("RST3 in place of RST0: err = %v", err)
	}
}

// patch returns a copy of data with the bytes at the first occurrence of
// marker (plus off) replaced by with.
func patch(t *testing.T, data, marker []byte, off int, with ...byte) []byte {
	t.Helper()
	i := bytes.Index(data, marker)
	if i < 0 {
		t.Fatalf("marker % X not in data", marker)
	}
	out := bytes.Clone(data)
	copy(out[i+off:], with)
	return out
}

func TestJPEGErrors(t *testing.T) {
	good := readFixture(t, "testsrc2_64x48_420.jpg")
	sof := []byte{0xFF, 0xC0}
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no SOI"},
		{"png", []byte("\x89PNG\r\n\x1a\n"), "no SOI"},
		{"progressive", patch(t, good, sof, 1, 0xC2), "progressive JPEG not supported in frames"},
		{"lossless", patch(t, good, sof, 1, 0xC3), "SOF3"},
		{"arithmetic", patch(t, good, sof, 1, 0xC9), "SOF9"},
		{"12-bit", patch(t, good, sof, 4, 12), "precision 12 bits, want 8"},
		{"zero height", patch(t, good, sof, 5, 0, 0), "want both sides positive"},
		{"huge", patch(t, good, sof, 5, 0x40, 0x00, 0x40, 0x00), "needs at least"},
		{"too big", patch(t, good, sof, 5, 0xFF, 0xFF, 0xFF, 0xFF), "beyond the 16384"},
		{"sampling 3", patch(t, good, sof, 11, 0x33), "ratios must be 1, 2 or 4"},
		{"no quant table", patch(t, good, sof, 12, 3), "quantization table 3, which no DQT defined"},
		{"huffman table 2", patch(t, good, []byte{0xFF, 0xDA}, 6, 0x22), "Huffman table 2, which no DHT defined"},
		{"truncated header", good[:sos-3], "segment length"},
		{"truncated scan", good[:sos+40], "scan data ends"},
		{"garbage after SOI", []byte{0xFF, 0xD8, 0x12, 0x34}, "expected a marker at byte 2"},
		{"no scan", []byte{0xFF, 0xD8, 0xFF, 0xD9}, "EOI before any scan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d JPEGDecoder
			err := d.Decode(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
		})
	}
}

// TestJPEGEveryPrefix feeds every truncation of a real JPEG: each either
// decodes or fails with an error, never panics.
func TestJPEGEveryPrefix(t *testing.T) {
	data := readFixture(t, "testsrc2_64x48_420_dri.jpg")
	var d JPEGDecoder
	errs := 0
	for n := range len(data) {
		if d.Decode(data[:n]) != nil {
			errs++
		}
	}
	// Only the EOI marker is optional: every shorter prefix must fail.
	if errs < len(data)-2 {
		t.Errorf("only %d of %d truncations failed", errs, len(data))
	}
}

func TestJPEGDecodeAllocs(t *testing.T) {
	for _, name := range []string{"testsrc2_160x120_422.jpg", "testsrc2_64x48_420_dri.jpg", "testsrc2_64x48_422_nodht.jpg"} {
		data := readFixture(t, name)
		var d JPEGDecoder
		if err := d.Decode(data); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = d.Decode(data) }); n != 0 {
			t.Errorf("%s: %.1f allocations per decode, want 0", name, n)
		}
	}
}

func FuzzJPEG(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".jpg") {
			f.Add(readFixture(f, e.Name()))
		}
	}
	var d JPEGDecoder
	var rgb []byte
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := d.Decode(data); err != nil {
			return
		}
		w, h := d.Size()
		if w <= 0 || h <= 0 || w > MaxFrameSide || h > MaxFrameSide {
			t.Fatalf("decoded size %dx%d", w, h)
		}
		var err error
		rgb, err = ToRGB(rgb, &Frame{Format: MJPEG, Data: data})
		if err != nil {
			// Adobe RGB with subsampling and Cb/Cr sampled apart are the
			// only layouts ToRGB refuses after a good decode.
			if !strings.Contains(err.Error(), "not supported") {
				t.Fatalf("decoded, but ToRGB: %v", err)
			}
			return
		}
		if len(rgb) != 3*w*h {
			t.Fatalf("ToRGB gave %d bytes for %dx%d", len(rgb), w, h)
		}
	})
}

// TestIDCTMatchesFloat compares the integer IDCT with T.81's definition
// (A.3.3: f(x,y) = ¼ ΣuΣv C(u)C(v) F(u,v) cos((2x+1)uπ/16) cos((2y+1)vπ/16),
// level-shifted by 128) on random blocks: within ±1, as IEEE 1180 asks of
// an 8×8 IDCT (peak error ≤ 1).
func TestIDCTMatchesFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var blk [64]int32
	out := make([]byte, 64)
	for trial := range 2000 {
		// Dense blocks with large low frequencies, sparse ones, DC-only.
		for i := range blk {
			blk[i] = 0
			switch {
			case trial%3 == 0 && i < 10:
				blk[i] = int32(rng.IntN(1024) - 512)
			case trial%3 == 1 && rng.IntN(8) == 0:
				blk[i] = int32(rng.IntN(256) - 128)
			case trial%3 == 2 && i == 0:
				blk[i] = int32(rng.IntN(2048) - 1024)
			}
		}
		in := blk
		idct(&blk, out, 8)
		for y := range 8 {
			for x := range 8 {
				var sum float64
				for v := range 8 {
					for u := range 8 {
						cu, cv := 1.0, 1.0
						if u == 0 {
							cu = 1 / math.Sqrt2
						}
						if v == 0 {
							cv = 1 / math.Sqrt2
						}
						sum += cu * cv * float64(in[v*8+u]) * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
					}
				}
				want := uint8(math.Min(255, math.Max(0, math.Round(sum/4+128))))
				if d := absDiff(out[y*8+x], want); d > 1 {
					t.Fatalf("trial %d pixel (%d,%d): %d, exact IDCT %d", trial, x, y, out[y*8+x], want)
				}
			}
		}
	}
}

// TestJPEGAdobeRGB marks a 4:4:4 JPEG as RGB with an Adobe APP14 segment
// (transform 0): both decoders must then read the planes as R, G, B.
func TestJPEGAdobeRGB(t *testing.T) {
	data := readFixture(t, "testsrc2_64x48_444.jpg")
	app14 := []byte{0xFF, 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0} // version 100, flags, transform 0
	rgbJPEG := append(append(append([]byte{}, data[:2]...), app14...), data[2:]...)
	ref, err := jpeg.Decode(bytes.NewReader(rgbJPEG))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ref.(*image.YCbCr); ok {
		t.Fatal("image/jpeg ignored the Adobe transform; the test does not test RGB")
	}
	got, err := ToRGB(nil, &Frame{Format: MJPEG, Data: rgbJPEG})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0
	for y := range 48 {
		for x := range 64 {
			r, g, b, _ := ref.At(x, y).RGBA()
			for c, v := range [3]uint32{r >> 8, g >> 8, b >> 8} {
				worst = max(worst, absDiff(got[(y*64+x)*3+c], uint8(v)))
			}
		}
	}
	if worst > 2 {
		t.Errorf("Adobe RGB JPEG differs from image/jpeg by up to %d", worst)
	}
}
