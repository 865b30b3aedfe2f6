package camera

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestYCbCrMatrix converts the BT.601 codes of the primaries and of black
// and white back to RGB. The codes follow from BT.601's luma weights (Kr
// 0.299, Kb 0.114): limited range Y = 16 + 219·E'y, Cb/Cr = 128 + 224·E'
// (ITU-R BT.601-7 §2.5.3; e.g. red = 81, 90, 240), full range (JFIF 1.02,
// §"Conversion to and from RGB") Y = 255·E'y, Cb/Cr = 128 + 255·E' (red =
// 76, 85, 255). Both sides were rounded, so ±2 is allowed.
func TestYCbCrMatrix(t *testing.T) {
	tests := []struct {
		m          *YCbCrMatrix
		y, cb, cr  uint8
		r, g, b    uint8
		name, what string
	}{
		{BT601Limited, 16, 128, 128, 0, 0, 0, "limited", "black"},
		{BT601Limited, 235, 128, 128, 255, 255, 255, "limited", "white"},
		{BT601Limited, 81, 90, 240, 255, 0, 0, "limited", "red"},
		{BT601Limited, 145, 54, 34, 0, 255, 0, "limited", "green"},
		{BT601Limited, 41, 240, 110, 0, 0, 255, "limited", "blue"},
		{BT601Full, 0, 128, 128, 0, 0, 0, "full", "black"},
		{BT601Full, 255, 128, 128, 255, 255, 255, "full", "white"},
		{BT601Full, 76, 85, 255, 255, 0, 0, "full", "red"},
		{BT601Full, 150, 44, 21, 0, 255, 0, "full", "green"},
		{BT601Full, 29, 255, 107, 0, 0, 255, "full", "blue"},
	}
	for _, tc := range tests {
		r, g, b := tc.m.RGB(tc.y, tc.cb, tc.cr)
		if absDiff(r, tc.r) > 2 || absDiff(g, tc.g) > 2 || absDiff(b, tc.b) > 2 {
			t.Errorf("%s %s: YCbCr %d,%d,%d → RGB %d,%d,%d, want %d,%d,%d ±2", tc.name, tc.what, tc.y, tc.cb, tc.cr, r, g, b, tc.r, tc.g, tc.b)
		}
	}
	// Grey from Y: limited range stretches 16..235 to 0..255.
	for _, tc := range []struct {
		m    *YCbCrMatrix
		y, l uint8
	}{{BT601Limited, 16, 0}, {BT601Limited, 235, 255}, {BT601Limited, 126, 128}, {BT601Limited, 0, 0}, {BT601Limited, 255, 255}, {BT601Full, 77, 77}} {
		if got := tc.m.Luma(tc.y); got != tc.l {
			t.Errorf("%s: Luma(%d) = %d, want %d", tc.m.Name, tc.y, got, tc.l)
		}
	}
}

// formatFixtures are the testsrc2 64x48 picture in every format, each
// with the tolerance (max and mean absolute difference per channel) it
// keeps against the rgb24 fixture after ToRGB. The YUV formats lose
// chroma resolution (4:2:2, 4:2:0), so single pixels at sharp colour
// edges differ a lot while the mean stays small; JPEG adds quantization.
// Tolerances are the measured values rounded up.
var formatFixtures = []struct {
	file    string
	format  PixelFormat
	maxDiff int
	mean    float64
}{
	{"testsrc2_64x48.rgb24", RGB24, 0, 0},
	{"testsrc2_64x48.bgr24", BGR24, 0, 0},
	{"testsrc2_64x48.yuyv", YUYV, 48, 1.0},           // measured 43, 0.73
	{"testsrc2_64x48.i420", I420, 45, 2.5},           // 38, 2.16
	{"testsrc2_64x48.nv12", NV12, 45, 2.5},           // 38, 2.16
	{"testsrc2_64x48_420.jpg", MJPEG, 52, 3.5},       // 47, 3.06
	{"testsrc2_64x48_422.jpg", MJPEG, 48, 2.0},       // 43, 1.67
	{"testsrc2_64x48_444.jpg", MJPEG, 24, 1.6},       // 19, 1.32
	{"testsrc2_64x48_420_dri.jpg", MJPEG, 52, 3.5},   // 47, 3.06
	{"testsrc2_64x48_422_nodht.jpg", MJPEG, 48, 2.0}, // 43, 1.67
}

func diffStats(a, b []byte) (worst int, mean float64) {
	sum := 0
	for i := range a {
		d := absDiff(a[i], b[i])
		worst = max(worst, d)
		sum += d
	}
	return worst, float64(sum) / float64(len(a))
}

// TestToRGBFormatsAgree decodes every format of one picture and compares
// it with the picture's RGB24 bytes.
func TestToRGBFormatsAgree(t *testing.T) {
	want := readFixture(t, "testsrc2_64x48.rgb24")
	var got []byte
	for _, tc := range formatFixtures {
		t.Run(tc.file, func(t *testing.T) {
			f := &Frame{Format: tc.format, Width: 64, Height: 48, Data: readFixture(t, tc.file)}
			var err error
			if got, err = ToRGB(got, f); err != nil {
				t.Fatal(err)
			}
			worst, mean := diffStats(got, want)
			t.Logf("%-7s max abs error %3d, mean %.2f", tc.format, worst, mean)
			if worst > tc.maxDiff || mean > tc.mean {
				t.Errorf("max %d mean %.2f, want ≤ %d and ≤ %.2f", worst, mean, tc.maxDiff, tc.mean)
			}
		})
	}
	// ffmpeg's gray is the BT.601 luma of the RGB picture.
	gray := readFixture(t, "testsrc2_64x48.gray")
	luma := make([]byte, len(gray))
	for i := range luma {
		luma[i] = rgbLuma(want[3*i], want[3*i+1], want[3*i+2])
	}
	worst, mean := diffStats(gray, luma)
	t.Logf("GRAY    max abs error %3d, mean %.2f (ffmpeg gray vs BT.601 luma of rgb24)", worst, mean)
	if worst > 2 { // measured 1
		t.Errorf("gray fixture vs luma of rgb24: max %d, want ≤ 2", worst)
	}
}

func TestToRGBReusesDst(t *testing.T) {
	for _, tc := range formatFixtures[:5] {
		f := &Frame{Format: tc.format, Width: 64, Height: 48, Data: readFixture(t, tc.file)}
		dst, err := ToRGB(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() { dst, _ = ToRGB(dst, f) }); n != 0 {
			t.Errorf("%s: %.1f allocations per ToRGB with a big enough dst", tc.format, n)
		}
	}
}

// badFrames are frames whose Data does not fit their Format, Width and
// Height, with the error each must give (from ToRGB and Preprocessor.Into).
var badFrames = []struct {
	name string
	f    Frame
	want string
}{
	{"zero width", Frame{Format: RGB24, Width: 0, Height: 4, Data: nil}, "RGB24 frame of 0x4: want 1..16384"},
	{"negative height", Frame{Format: GRAY8, Width: 4, Height: -1}, "want 1..16384"},
	{"huge", Frame{Format: GRAY8, Width: 1 << 20, Height: 1 << 20}, "want 1..16384"},
	{"short RGB24", Frame{Format: RGB24, Width: 4, Height: 4, Data: make([]byte, 47)}, "RGB24 frame of 4x4 has 47 bytes, want 48"},
	{"long BGR24", Frame{Format: BGR24, Width: 4, Height: 4, Data: make([]byte, 49)}, "has 49 bytes, want 48"},
	{"odd YUYV", Frame{Format: YUYV, Width: 5, Height: 2, Data: make([]byte, 20)}, "even width"},
	{"short YUYV", Frame{Format: YUYV, Width: 4, Height: 2, Data: make([]byte, 15)}, "has 15 bytes, want 16"},
	{"short I420", Frame{Format: I420, Width: 4, Height: 4, Data: make([]byte, 16)}, "I420 frame of 4x4 has 16 bytes, want 24"},
	{"odd I420 wants rounded-up chroma", Frame{Format: I420, Width: 3, Height: 3, Data: make([]byte, 9+2)}, "want 17"},
	{"short NV12", Frame{Format: NV12, Width: 4, Height: 4, Data: make([]byte, 23)}, "want 24"},
	{"unknown format", Frame{Format: "H264", Width: 4, Height: 4, Data: make([]byte, 48)}, `pixel format "H264"`},
	{"empty MJPEG", Frame{Format: MJPEG, Width: 4, Height: 4}, "no SOI"},
	{"MJPEG size mismatch", Frame{Format: MJPEG, Width: 32, Height: 24}, "says 32x24 but its JPEG is 64x48"},
}

func TestToRGBBadFrames(t *testing.T) {
	jpg := readFixture(t, "testsrc2_64x48_420.jpg")
	for _, tc := range badFrames {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if strings.Contains(tc.name, "mismatch") {
				f.Data = jpg
			}
			_, err := ToRGB(nil, &f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestFixturesMatchMakeScript regenerates the fixtures with make.sh into a
// temporary folder and compares: raw files byte for byte, JPEGs after
// decoding (within ±2, so another ffmpeg version's encoder may differ
// slightly). It needs ffmpeg (Debian package ffmpeg) and go in PATH;
// without them the test skips, except under CI=true.
func TestFixturesMatchMakeScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	for _, tool := range []string{"ffmpeg", "go"} { // make.sh runs stripdht.go with go run
		requireTool(t, tool)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", filepath.Join("testdata", "fixtures", "make.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make.sh: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".sh") || strings.HasSuffix(name, ".go") {
			continue
		}
		committed := readFixture(t, name)
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("make.sh did not write %s: %v", name, err)
			continue
		}
		checked++
		if !strings.HasSuffix(name, ".jpg") {
			if !bytes.Equal(committed, fresh) {
				t.Errorf("%s: make.sh writes different bytes", name)
			}
			continue
		}
		a, err1 := ToRGB(nil, &Frame{Format: MJPEG, Data: committed})
		b, err2 := ToRGB(nil, &Frame{Format: MJPEG, Data: fresh})
		if err1 != nil || err2 != nil || len(a) != len(b) {
			t.Errorf("%s: %v, %v, %d vs %d bytes", name, err1, err2, len(a), len(b))
			continue
		}
		if worst, _ := diffStats(a, b); worst > 2 {
			t.Errorf("%s: make.sh's JPEG decodes up to %d away from the committed one", name, worst)
		}
	}
	if checked < 20 {
		t.Errorf("only %d fixtures checked", checked)
	}
}

// TestRowSegments reads every column range of every row (odd starts and
// ends included, which split YUYV pairs and shared chroma samples) and
// compares with the full row.
func TestRowSegments(t *testing.T) {
	for name, f := range allocFrames(t) {
		var fr frameRows
		var dec JPEGDecoder
		if err := fr.setup(f, &dec, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		full := make([]byte, 3*fr.w)
		seg := make([]byte, 3*fr.w)
		for y := 0; y < fr.h; y += 7 {
			for x0 := range 5 {
				for _, x1 := range []int{x0 + 1, x0 + 2, x0 + 3, fr.w - 1, fr.w} {
					if fr.channels == 3 {
						want := bytes.Clone(fr.rgb(full, y, 0, fr.w))[3*x0 : 3*x1]
						if got := fr.rgb(seg, y, x0, x1); !bytes.Equal(got, want) {
							t.Fatalf("%s row %d rgb columns %d..%d differ from the full row", name, y, x0, x1)
						}
					}
					want := bytes.Clone(fr.gray(full, y, 0, fr.w))[x0:x1]
					if got := fr.gray(seg, y, x0, x1); !bytes.Equal(got, want) {
						t.Fatalf("%s row %d grey columns %d..%d differ from the full row", name, y, x0, x1)
					}
				}
			}
		}
	}
}
