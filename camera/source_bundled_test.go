package camera

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// The embedded digits are MNIST's first test images: the same pixels and
// labels as the t10k files GoMNIST ships.
func TestBundledDigitsAreMNISTTestImages(t *testing.T) {
	imgs, labels, err := BundledDigits()
	if err != nil {
		t.Fatal(err)
	}
	ref, refLabels, err := LoadIDX(mnistDir(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	if imgs.N != 1000 || imgs.H != 28 || imgs.W != 28 {
		t.Fatalf("%d images of %dx%d, want 1000 of 28x28", imgs.N, imgs.H, imgs.W)
	}
	if !bytes.Equal(imgs.Pixels, ref.Pixels[:len(imgs.Pixels)]) || !bytes.Equal(labels, refLabels[:imgs.N]) {
		t.Fatal("embedded digits differ from the head of t10k: rerun go run camera/bundled/gen.go")
	}
	var counts [10]int
	for _, l := range labels {
		counts[l]++
	}
	for d, c := range counts {
		if c < 50 { // every digit is well represented in 1000 test images
			t.Errorf("digit %d appears %d times", d, c)
		}
	}
}

func TestBundledSourceStreams(t *testing.T) {
	_, labels, err := BundledDigits()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open("bundled:digits?fps=0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if IsLive(s) {
		t.Error("fps=0 should not be live")
	}
	if c := s.(interface{ Classes() []string }).Classes(); len(c) != 10 || c[7] != "7" {
		t.Errorf("classes %v", c)
	}
	var f Frame
	for i := range 1003 { // past the end: it loops
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i) || f.Label != int(labels[i%1000]) || f.Format != GRAY8 || len(f.Data) != 784 {
			t.Fatalf("frame %d: seq %d label %d format %s, %d bytes", i, f.Seq, f.Label, f.Format, len(f.Data))
		}
	}

	once, err := Open("bundled:digits?fps=0&loop=0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, once, 2000)); n != 1000 {
		t.Errorf("loop=0 gave %d frames, want 1000", n)
	}
}

// Pacing: at 200 fps, 20 frames take at least 19 periods. Only a lower
// bound is checked; a loaded machine may be slower.
func TestBundledSourcePacedAndLive(t *testing.T) {
	s, err := Open("bundled:digits?fps=200", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !IsLive(s) {
		t.Error("paced bundled source should be live")
	}
	var f Frame
	start := time.Now()
	for range 20 {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 19*5*time.Millisecond {
		t.Errorf("20 frames at 200 fps in %v, want at least 95ms", el)
	}
}

func TestBundledSourceCloseInterruptsWait(t *testing.T) {
	s, err := Open("bundled:digits?fps=0.01", Options{}) // one frame per 100 s
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := s.Read(&f); err != nil { // the first frame is due at once
		t.Fatal(err)
	}
	res := make(chan error)
	go func() { res <- s.Read(&f) }()
	s.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("read: %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not interrupt Read")
	}
}

func TestBundledSourceBadURIs(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"bundled:cats", `no bundled set "cats" (have digits)`},
		{"bundled:digits?fps=-1", "fps"},
		{"bundled:digits?fps=fast", "fps"},
		{"bundled:digits?speed=1", `unknown query key "speed"`},
	} {
		_, err := Open(tc.uri, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): error %v, want %q", tc.uri, err, tc.want)
		}
	}
}

func TestBundledSourceReadAllocatesNothing(t *testing.T) {
	s, err := Open("bundled:digits?fps=0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	s.Read(&f)
	if n := testing.AllocsPerRun(500, func() {
		if err := s.Read(&f); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per Read, want 0", n)
	}
}
