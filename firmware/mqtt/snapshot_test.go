package mqtt

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
)

// flatFrame is a frame of one grey level in format (2 bytes a pixel for
// YUYV, 3 for RGB/BGR, a real JPEG for MJPEG).
func flatFrame(t *testing.T, seq uint64, format camera.PixelFormat, w, h int, level byte) camera.Frame {
	t.Helper()
	f := camera.Frame{Seq: seq, Time: t0.Add(time.Duration(seq) * frameStep), Format: format, Width: w, Height: h, Label: -1}
	switch format {
	case camera.GRAY8:
		f.Data = bytes.Repeat([]byte{level}, w*h)
	case camera.RGB24, camera.BGR24:
		f.Data = bytes.Repeat([]byte{level}, 3*w*h)
	case camera.YUYV:
		f.Data = bytes.Repeat([]byte{level, 128}, w*h) // Y, then U or V = 128: grey
	case camera.MJPEG:
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = level
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, nil); err != nil {
			t.Fatal(err)
		}
		f.Data = b.Bytes()
	default:
		t.Fatalf("no test frame for %s", format)
	}
	return f
}

func newTestSnapshotter(t *testing.T, c snapshotConfig) *snapshotter {
	t.Helper()
	if c.dir == "" {
		c.dir = t.TempDir()
	}
	s, err := newSnapshotter(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeJPEGFile decodes a snapshot and returns its size and mean level.
func decodeJPEGFile(t *testing.T, path string) (w, h int, mean float64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := img.Bounds()
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	return r.Dx(), r.Dy(), sum / float64(r.Dx()*r.Dy())
}

// Each pixel format becomes a JPEG of the frame's size showing the frame
// (a flat grey stays that grey); MJPEG frames are written untouched.
func TestSnapshotFormats(t *testing.T) {
	for _, format := range []camera.PixelFormat{camera.GRAY8, camera.RGB24, camera.BGR24, camera.YUYV, camera.MJPEG} {
		t.Run(string(format), func(t *testing.T) {
			s := newTestSnapshotter(t, snapshotConfig{})
			f := flatFrame(t, 5, format, 64, 48, 160)
			s.ObservePicture(&f)
			name, err := s.save(5, "jack-o'-lantern")
			if err != nil {
				t.Fatal(err)
			}
			if want := "vggedge-20250102T030405.165Z-f000000005-jack-o_-lantern.jpg"; name != want {
				t.Errorf("name %q, want %q", name, want)
			}
			path := filepath.Join(s.cfg.dir, name)
			w, h, mean := decodeJPEGFile(t, path)
			if w != 64 || h != 48 {
				t.Errorf("%dx%d, want 64x48", w, h)
			}
			// YUYV is limited range: Y 160 is a little brighter in RGB.
			if mean < 150 || mean > 185 {
				t.Errorf("mean level %.1f, want about 160", mean)
			}
			if format == camera.MJPEG {
				raw, _ := os.ReadFile(path)
				if !bytes.Equal(raw, f.Data) {
					t.Error("MJPEG frame was re-encoded; want the camera's JPEG as is")
				}
			}
			ents, _ := os.ReadDir(s.cfg.dir)
			if len(ents) != 1 {
				t.Errorf("%d files in the folder, want only the snapshot (no temp file left)", len(ents))
			}
		})
	}
}

// The snapshot shows the event's frame while the ring still holds it,
// else the newest frame (and its name says which).
func TestSnapshotPicksEventFrame(t *testing.T) {
	s := newTestSnapshotter(t, snapshotConfig{})
	for seq := range uint64(4) {
		f := flatFrame(t, seq, camera.GRAY8, 16, 16, byte(40+40*seq))
		s.ObservePicture(&f)
	}
	name, err := s.save(1, "7")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, mean := decodeJPEGFile(t, filepath.Join(s.cfg.dir, name)); mean < 75 || mean > 85 || !strings.Contains(name, "-f000000001-") {
		t.Errorf("%s: mean %.1f, want frame 1 (level 80)", name, mean)
	}
	for seq := uint64(4); seq <= 10; seq++ {
		f := flatFrame(t, seq, camera.GRAY8, 16, 16, byte(seq*20))
		s.ObservePicture(&f)
	}
	name, err = s.save(2, "7") // long gone from the ring
	if err != nil {
		t.Fatal(err)
	}
	if _, _, mean := decodeJPEGFile(t, filepath.Join(s.cfg.dir, name)); mean < 195 || mean > 205 || !strings.Contains(name, "-f000000010-") {
		t.Errorf("%s: mean %.1f, want the newest frame 10 (level 200)", name, mean)
	}
}

// Rotation deletes the oldest snapshots — including those of an earlier
// run — beyond --snapshot-max-files and --snapshot-max-bytes, and never
// touches other files.
func TestSnapshotRotation(t *testing.T) {
	for _, tt := range []struct {
		name     string
		maxFiles int
		maxBytes func(size int64) int64
		keep     int
	}{
		{"max files", 3, func(int64) int64 { return 0 }, 3},
		{"max bytes", 0, func(size int64) int64 { return size*2 + size/2 }, 2},
		{"max bytes below one file keeps the newest", 0, func(int64) int64 { return 1 }, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			old := "vggedge-20000101T000000.000Z-f000000000-7.jpg"
			os.WriteFile(filepath.Join(dir, old), []byte("an old snapshot"), 0o644)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not ours"), 0o644)
			// Every snapshot of this flat frame has the same size.
			probe := newTestSnapshotter(t, snapshotConfig{})
			f := flatFrame(t, 0, camera.GRAY8, 32, 32, 99)
			probe.ObservePicture(&f)
			pn, _ := probe.save(0, "7")
			st, _ := os.Stat(filepath.Join(probe.cfg.dir, pn))

			s := newTestSnapshotter(t, snapshotConfig{dir: dir, maxFiles: tt.maxFiles, maxBytes: tt.maxBytes(st.Size())})
			var names []string
			for seq := uint64(1); seq <= 5; seq++ {
				f := flatFrame(t, seq, camera.GRAY8, 32, 32, 99)
				s.ObservePicture(&f)
				n, err := s.save(seq, "7")
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, n)
			}
			var have []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				have = append(have, e.Name())
			}
			want := append(slices.Clone(names[len(names)-tt.keep:]), "notes.txt")
			slices.Sort(want)
			if !slices.Equal(have, want) {
				t.Errorf("folder holds %q, want %q", have, want)
			}
		})
	}
}

func TestSnapshotErrors(t *testing.T) {
	s := newTestSnapshotter(t, snapshotConfig{})
	if _, err := s.save(0, "7"); err == nil || err.Error() != "snapshot: no frame observed yet" {
		t.Errorf("save before any frame: %v", err)
	}
	f := camera.Frame{Seq: 3, Format: camera.GRAY8, Width: 64, Height: 48, Data: make([]byte, 100)}
	s.ObservePicture(&f)
	if _, err := s.save(3, "7"); err == nil || !strings.Contains(err.Error(), "snapshot of frame 3: GRAY frame of 64x48 needs 3072 bytes, has 100") {
		t.Errorf("short frame: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := newSnapshotter(snapshotConfig{dir: filepath.Join(file, "sub")}); err == nil || !strings.HasPrefix(err.Error(), "--snapshot-dir: ") {
		t.Errorf("dir under a file: %v", err)
	}
}

// ObservePicture runs on the inference goroutine: a copy, no allocation.
func TestSnapshotObserveNoAllocs(t *testing.T) {
	s := newTestSnapshotter(t, snapshotConfig{})
	f := grayFrame(640, 480, 0)
	for range snapshotRing {
		s.ObservePicture(f)
	}
	if n := testing.AllocsPerRun(200, func() { f.Seq++; s.ObservePicture(f) }); n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
}
