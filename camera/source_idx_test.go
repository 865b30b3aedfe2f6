package camera

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAll reads a finite source to io.EOF, with a bound so a source that
// never ends fails instead of hanging.
func readAll(t *testing.T, s Source, bound int) []Frame {
	t.Helper()
	var out []Frame
	for len(out) <= bound {
		var f Frame
		err := s.Read(&f)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read %d: %v", len(out), err)
		}
		out = append(out, f)
	}
	t.Fatalf("no io.EOF after %d frames", bound)
	return nil
}

func TestIDXSourceRealMNIST(t *testing.T) {
	dir := mnistDir(t)
	imgs, labels, err := LoadIDX(dir, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uri string }{
		{"idx:" + dir},
		{"idx:" + dir + "?set=t10k"},
		{"idx:" + filepath.Join(dir, "t10k-images-idx3-ubyte.gz")},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			s, err := Open(tc.uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if IsLive(s) {
				t.Error("idx source says it is live")
			}
			var f Frame
			for i := range 5 {
				if err := s.Read(&f); err != nil {
					t.Fatal(err)
				}
				// MNIST's test set starts 7, 2, 1, 0, 4 (see TestLoadIDXRealMNIST).
				if f.Seq != uint64(i) || f.Label != int(labels[i]) || f.Format != GRAY8 || f.Width != 28 || f.Height != 28 {
					t.Fatalf("frame %d: seq %d label %d %s %dx%d", i, f.Seq, f.Label, f.Format, f.Width, f.Height)
				}
				if !bytes.Equal(f.Data, imgs.Image(i)) {
					t.Fatalf("frame %d: pixels differ from the idx file", i)
				}
				if f.Time.IsZero() {
					t.Fatal("no capture time")
				}
			}
		})
	}
}

func TestIDXSourceEOFAndLoop(t *testing.T) {
	images, labels := tinySet()
	dir := t.TempDir()
	writeSet(t, dir, "t10k", images, labels, false)
	writeSet(t, dir, "train", images, idxBytes(idxLabelsMagic, []uint32{3}, []byte{9, 8, 7}), true)

	s, err := Open("idx:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	frames := readAll(t, s, 10)
	if len(frames) != 3 || frames[2].Label != 1 || !bytes.Equal(frames[1].Data, []byte{10, 11, 12, 13, 14, 15}) {
		t.Fatalf("got %d frames, want the 3 of the set", len(frames))
	}
	if frames[0].Width != 3 || frames[0].Height != 2 {
		t.Errorf("size %dx%d, want 3x2", frames[0].Width, frames[0].Height)
	}
	s.Close()
	if err := s.Read(&Frame{}); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}

	s, err = Open("idx:"+dir+"?set=train&loop=1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	var got []int
	for range 7 {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Label)
	}
	if want := []int{9, 8, 7, 9, 8, 7, 9}; !slicesEqual(got, want) || f.Seq != 6 {
		t.Errorf("looped labels %v seq %d, want %v seq 6", got, f.Seq, want)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIDXSourceBadURIs(t *testing.T) {
	images, labels := tinySet()
	dir := t.TempDir()
	writeSet(t, dir, "t10k", images, labels, false)
	file := filepath.Join(dir, "t10k-images-idx3-ubyte")
	empty := t.TempDir()
	writeSet(t, empty, "t10k", idxBytes(idxImagesMagic, []uint32{0, 28, 28}, nil), idxBytes(idxLabelsMagic, []uint32{0}, nil), false)
	for _, tc := range []struct{ uri, want string }{
		{"idx:", "no path"},
		{"idx:" + dir + "?sett=train", `unknown query key "sett"`},
		{"idx:" + dir + "?set=test", `set="test": want one of t10k, train`},
		{"idx:" + dir + "?loop=maybe", `loop="maybe"`},
		{"idx:" + dir + "?set=train", "none of train-images-idx3-ubyte"},
		{"idx:" + filepath.Join(dir, "missing"), "no such file"},
		{"idx:" + file + "?set=train", "only for a folder"},
		{"idx:" + empty, "holds no images"},
	} {
		_, err := Open(tc.uri, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "source idx:") {
			t.Errorf("Open(%s): error %v, want %q", tc.uri, err, tc.want)
		}
	}
}

func TestIDXSourceReadAllocatesNothing(t *testing.T) {
	s, err := Open("idx:"+mnistDir(t)+"?loop=1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	s.Read(&f)
	if n := testing.AllocsPerRun(200, func() {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per Read, want 0", n)
	}
}

func TestIDXSourceMissingLabelsFile(t *testing.T) {
	images, _ := tinySet()
	dir := t.TempDir()
	p := filepath.Join(dir, "x-images-idx3-ubyte")
	if err := os.WriteFile(p, images, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open("idx:"+p, Options{})
	if err == nil || !strings.Contains(err.Error(), "x-labels-idx1-ubyte") {
		t.Errorf("error %v, want it to name the missing labels file", err)
	}
}
