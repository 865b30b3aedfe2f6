package camera

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeImage encodes a w×h image of one colour as PNG or JPEG (by the
// extension) with the standard library's encoders.
func writeImage(t *testing.T, path string, w, h int, c color.NRGBA) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileSourceImageFolder(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "dog", "b.png"), 4, 3, color.NRGBA{200, 10, 10, 255})
	writeImage(t, filepath.Join(dir, "dog", "a.jpg"), 16, 8, color.NRGBA{10, 200, 10, 255})
	writeImage(t, filepath.Join(dir, "cat", "z.png"), 2, 2, color.NRGBA{10, 10, 200, 255})
	os.WriteFile(filepath.Join(dir, "cat", "notes.txt"), []byte("not an image"), 0o644)

	s, err := Open("file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.(interface{ Classes() []string }).Classes(); strings.Join(c, ",") != "cat,dog" {
		t.Errorf("classes %v, want [cat dog] (sorted, like torchvision's ImageFolder)", c)
	}
	frames := readAll(t, s, 10)
	want := []struct {
		label, w, h int
		rgb         [3]int
	}{{0, 2, 2, [3]int{10, 10, 200}}, {1, 16, 8, [3]int{10, 200, 10}}, {1, 4, 3, [3]int{200, 10, 10}}}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i, w := range want {
		f := frames[i]
		if f.Label != w.label || f.Width != w.w || f.Height != w.h || f.Format != RGB24 || f.Seq != uint64(i) {
			t.Errorf("frame %d: label %d %dx%d %s seq %d; want label %d %dx%d", i, f.Label, f.Width, f.Height, f.Format, f.Seq, w.label, w.w, w.h)
		}
		// JPEG is lossy: a flat colour comes back within a few levels.
		if got := syntheticPixel(&f, w.w/2, w.h/2); !near(got, w.rgb, 4) {
			t.Errorf("frame %d centre %v, want %v", i, got, w.rgb)
		}
	}
}

func TestFileSourceGlobLoopAndSkips(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"2.png", "1.png", "3.png"} {
		writeImage(t, filepath.Join(dir, n), 3, 3, color.NRGBA{uint8(n[0]), 0, 0, 255})
	}
	os.WriteFile(filepath.Join(dir, "4.png"), []byte("\x89PNG broken"), 0o644)
	var log syncLog
	s, err := Open("file://"+filepath.Join(dir, "*.png")+"?loop=1", Options{Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	var reds []byte
	for i := range 4 {
		if i == 2 { // a file disappears mid-run
			os.Remove(filepath.Join(dir, "3.png"))
		}
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Label != -1 {
			t.Errorf("label %d for a file outside class folders", f.Label)
		}
		reds = append(reds, f.Data[0])
	}
	if string(reds) != "1212" {
		t.Errorf("files in order %q, want 1, 2, then (3 removed, 4 broken) 1, 2 again", reds)
	}
	l := log.String()
	if !strings.Contains(l, "3.png: no such file") || !strings.Contains(l, "4.png: not a JPEG or PNG image") {
		t.Errorf("log should name the removed and the broken file:\n%s", l)
	}
	if n := s.(*fileSource).Skipped(); n != 2 {
		t.Errorf("skipped %d, want 2", n)
	}
}

func TestFileSourceAllFilesGone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "only.png")
	writeImage(t, p, 2, 2, color.NRGBA{1, 2, 3, 255})
	s, err := Open("file://"+dir+"?loop=1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := s.Read(&Frame{}); err == nil || !strings.Contains(err.Error(), "none of the 1 files") {
		t.Errorf("error %v, want none of the files", err)
	}
	once, _ := Open("file://"+dir, Options{})
	if once != nil {
		t.Error("empty folder opened")
	}
}

func TestFileSourceBadURIs(t *testing.T) {
	dir := t.TempDir()
	empty := t.TempDir()
	os.Mkdir(filepath.Join(dir, "cls"), 0o755)
	for _, tc := range []struct{ uri, want string }{
		{"file:relative", "want file://GLOB or file://DIR"},
		{"file://", "want file://GLOB"},
		{"file://" + filepath.Join(empty, "*.jpg"), "no files match"},
		{"file://" + filepath.Join(empty, "missing.png"), "missing.png: no such file"},
		{"file://" + empty, "no .jpg, .jpeg or .png files"},
		{"file://" + dir, "class folders cls hold no"},
		{"file://" + dir + "?loop=yes", `loop="yes"`},
		{"file://" + dir + "?shuffle=1", `unknown query key "shuffle"`},
		{"file://" + filepath.Join(empty, "["), "syntax error in pattern"},
	} {
		_, err := Open(tc.uri, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): error %v, want %q", tc.uri, err, tc.want)
		}
	}
}

// A semi-transparent PNG keeps its colours, as torchvision's PIL
// .convert("RGB") keeps them: the file source (run, classify) and the
// dataset path (eval, calibration) read the same pixels, not ones
// composited over black (issue 13).
func TestAlphaDroppedNotComposited(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	want := []byte{}
	for i := range 6 {
		c := color.NRGBA{R: uint8(200 - 10*i), G: uint8(100 + 20*i), B: 50, A: uint8(40 * i)} // alpha 0 … 200
		img.SetNRGBA(i%3, i/3, c)
		want = append(want, c.R, c.G, c.B)
	}
	path := filepath.Join(t.TempDir(), "a.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := decodeFileRGB(path, &f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Data, want) {
		t.Errorf("file source: %v, want %v", f.Data, want)
	}
	decoded, err := DecodeImage(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	df, err := imageFrame(decoded)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(df.Data, want) {
		t.Errorf("dataset path: %v, want %v", df.Data, want)
	}
}
