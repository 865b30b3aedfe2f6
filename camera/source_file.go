package camera

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // the file source reads JPEG and PNG files
	_ "image/png"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// The file source: "file://GLOB" (e.g. file://shots/*.jpg) or "file://DIR"
// streams image files in sorted order as RGB24 frames (ListImages says
// which files: a DIR's images recursively). A DIR in torchvision's
// ImageFolder layout (one sub-folder per class) labels each frame with its
// class index among the sorted sub-folder names, which Classes returns
// (the run command maps them to the model's labels by name); other files
// get Label -1. Every frame carries its file's path in Frame.File. It is finite (io.EOF after the last
// file) unless ?loop=1. A file that cannot be read or decoded — removed
// mid-run, say — is logged and skipped, not fatal. Each file is decoded
// with DecodeImage (header first, bounded), which allocates: acceptable at file rates, unlike the
// camera sources' zero-allocation reads.

func init() { register("file", openFileSource) }

type fileSource struct {
	files   []string
	labels  []int // per file; -1 when unlabelled
	classes []string
	loop    bool
	o       Options
	next    int
	seq     uint64
	okPass  bool // some file of the current pass decoded
	skipped int
	closed  bool
}

func openFileSource(rest string, o Options) (Source, error) {
	p, q, err := splitSourceQuery("file", rest, "loop")
	if err != nil {
		return nil, err
	}
	p, ok := strings.CutPrefix(p, "//")
	if !ok || p == "" {
		return nil, fmt.Errorf("want file://GLOB or file://DIR (file:///abs/path for absolute paths)")
	}
	loop, err := q.bool("loop", false)
	if err != nil {
		return nil, err
	}
	l, err := ListImages(p)
	if err != nil {
		return nil, err
	}
	return &fileSource{files: l.Paths, labels: l.Labels, classes: l.Classes, loop: loop, o: o}, nil
}

func (s *fileSource) Read(f *Frame) error {
	if s.closed {
		return ErrClosed
	}
	for {
		if s.next == len(s.files) {
			if !s.loop {
				return io.EOF
			}
			if !s.okPass {
				return fmt.Errorf("none of the %d files could be read", len(s.files))
			}
			s.next, s.okPass = 0, false
		}
		i := s.next
		s.next++
		if err := decodeFileRGB(s.files[i], f); err != nil {
			s.skipped++
			logf(s.o, "file: skipping %v", err)
			continue
		}
		s.okPass = true
		f.Seq, f.Time, f.Label, f.File = s.seq, time.Now(), s.labels[i], s.files[i]
		s.seq++
		return nil
	}
}

// decodeFileRGB decodes an image file into f as RGB24.
func decodeFileRGB(path string, f *Frame) error {
	file, err := os.Open(path)
	if err != nil {
		return err // names the path already
	}
	defer file.Close()
	var size int64
	if fi, err := file.Stat(); err == nil {
		size = fi.Size()
	}
	img, err := DecodeImage(file, size)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > maxFrameSide || h > maxFrameSide {
		return fmt.Errorf("%s: image of %dx%d: want sides from 1 to %d", path, w, h, maxFrameSide)
	}
	f.Data = resizeData(f.Data, w*h*3)
	f.Format, f.Width, f.Height = RGB24, w, h
	copyRGB(f.Data, img)
	return nil
}

// Classes names the labels of an ImageFolder directory (nil otherwise).
func (s *fileSource) Classes() []string { return slices.Clone(s.classes) }

// Len is the number of files in one pass.
func (s *fileSource) Len() int { return len(s.files) }

// Skipped counts files that could not be read or decoded.
func (s *fileSource) Skipped() int { return s.skipped }

func (s *fileSource) Close() error {
	s.closed = true
	return nil
}

// copyRGB writes img's pixels into d (3·w·h bytes) as RGB24. Alpha is
// dropped, as torchvision's PIL .convert("RGB") drops it: a
// semi-transparent pixel keeps its colour, it is not composited over
// black.
func copyRGB(d []byte, img image.Image) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o := (y*w + x) * 3
				d[o], d[o+1], d[o+2] = r, g, bl
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[(y)*m.Stride : y*m.Stride+w]
			for x, v := range row {
				o := (y*w + x) * 3
				d[o], d[o+1], d[o+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				o := (y*w + x) * 3
				d[o], d[o+1], d[o+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o := (y*w + x) * 3
				d[o], d[o+1], d[o+2] = c.R, c.G, c.B
			}
		}
	}
}
