package camera

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// The idx source: "idx:PATH" streams an MNIST-style idx set as GRAY8
// frames with their labels. PATH is a folder holding the set's images and
// labels files (set=t10k by default, ?set=train for the training set) or
// an images file itself (…-images-idx3-ubyte[.gz], its labels file beside
// it). It is finite: io.EOF after the last image, unless ?loop=1.

func init() { register("idx", openIDXSource) }

// idxSource streams images out of a decoded idx set held in memory.
type idxSource struct {
	imgs   *IDXImages
	labels []byte
	loop   bool
	next   int
	seq    uint64
	closed atomic.Bool
}

func openIDXSource(rest string, o Options) (Source, error) {
	path, q, err := splitSourceQuery("idx", rest, "set", "loop")
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("no path: want idx:FOLDER or idx:FILE (an …-images-idx3-ubyte file)")
	}
	set, err := q.str("set", "t10k", "t10k", "train")
	if err != nil {
		return nil, err
	}
	loop, err := q.bool("loop", false)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var imgs *IDXImages
	var labels []byte
	if st.IsDir() {
		imgs, labels, err = LoadIDX(path, set)
	} else {
		if q.has("set") {
			return nil, fmt.Errorf("query set=%s: only for a folder, %s is a file", set, path)
		}
		imgs, labels, err = loadIDXFile(path)
	}
	if err != nil {
		return nil, err
	}
	if imgs.N == 0 {
		return nil, fmt.Errorf("%s: the set holds no images", path)
	}
	return &idxSource{imgs: imgs, labels: labels, loop: loop}, nil
}

func (s *idxSource) Read(f *Frame) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.next == s.imgs.N {
		if !s.loop {
			return io.EOF
		}
		s.next = 0
	}
	f.Data = resizeData(f.Data, s.imgs.H*s.imgs.W)
	copy(f.Data, s.imgs.Image(s.next))
	f.Seq, f.Time = s.seq, time.Now()
	f.Format, f.Width, f.Height = GRAY8, s.imgs.W, s.imgs.H
	f.Label = int(s.labels[s.next])
	s.next++
	s.seq++
	return nil
}

// Len is the number of images in one pass.
func (s *idxSource) Len() int { return s.imgs.N }

func (s *idxSource) Close() error {
	s.closed.Store(true)
	return nil
}
