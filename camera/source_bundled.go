package camera

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"sync"
	"time"
)

// The bundled source: "bundled:digits" streams real handwritten digits
// that ship inside the binary — the first 1000 images of MNIST's test set
// with their labels (camera/bundled/gen.go writes them from the GoMNIST
// module's t10k files). It stands in for a camera on a board that has
// none: paced like one (?fps=N, default 30, or Options.FPS; fps=0 is as
// fast as possible) and looping forever unless ?loop=0.

//go:embed bundled/digits-images-idx3-ubyte.gz
var bundledDigitsImages []byte

//go:embed bundled/digits-labels-idx1-ubyte.gz
var bundledDigitsLabels []byte

func init() { register("bundled", openBundledSource) }

// bundledDigitsSet decodes the embedded digits once per process; every
// bundled source shares the (read-only) pixels.
var bundledDigitsSet = sync.OnceValues(func() (labelledIDX, error) {
	imgs, err := DecodeIDXImages(bytes.NewReader(bundledDigitsImages), "bundled digits images")
	if err != nil {
		return labelledIDX{}, err
	}
	labels, err := DecodeIDXLabels(bytes.NewReader(bundledDigitsLabels), "bundled digits labels")
	if err != nil {
		return labelledIDX{}, err
	}
	if len(labels) != imgs.N || imgs.N == 0 {
		return labelledIDX{}, fmt.Errorf("bundled digits: %d images, %d labels", imgs.N, len(labels))
	}
	return labelledIDX{imgs, labels}, nil
})

type labelledIDX struct {
	imgs   *IDXImages
	labels []byte
}

// BundledDigits returns the embedded MNIST test digits (28×28 grey) and
// their labels, for tests and demos that want real images without files.
// The pixels are shared: do not modify them.
func BundledDigits() (*IDXImages, []byte, error) {
	set, err := bundledDigitsSet()
	return set.imgs, set.labels, err
}

type bundledSource struct {
	idx   idxSource
	pacer *framePacer
	live  bool
}

func openBundledSource(rest string, o Options) (Source, error) {
	name, q, err := splitSourceQuery("bundled", rest, "fps", "loop")
	if err != nil {
		return nil, err
	}
	if name != "digits" {
		return nil, fmt.Errorf("no bundled set %q (have digits)", name)
	}
	fps := 30.0
	if o.FPS > 0 {
		fps = o.FPS
	}
	if fps, err = q.float("fps", fps, 0, maxSourceFPS); err != nil {
		return nil, err
	}
	loop, err := q.bool("loop", true)
	if err != nil {
		return nil, err
	}
	set, err := bundledDigitsSet()
	if err != nil {
		return nil, err
	}
	return &bundledSource{
		idx:   idxSource{imgs: set.imgs, labels: set.labels, loop: loop},
		pacer: newFramePacer(fps),
		live:  fps > 0,
	}, nil
}

func (s *bundledSource) Read(f *Frame) error {
	if s.idx.next == s.idx.imgs.N && !s.idx.loop {
		return io.EOF
	}
	if !s.pacer.wait() {
		return ErrClosed
	}
	if err := s.idx.Read(f); err != nil {
		return err
	}
	f.Time = time.Now()
	return nil
}

// Live reports whether frames are paced like a camera's (fps > 0).
func (s *bundledSource) Live() bool { return s.live }

// Classes names the labels: the digits 0 to 9.
func (s *bundledSource) Classes() []string {
	return []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
}

// Close interrupts a Read waiting for its frame time.
func (s *bundledSource) Close() error {
	s.pacer.close()
	return nil
}
