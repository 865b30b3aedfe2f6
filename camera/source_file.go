package camera

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // the file source reads JPEG and PNG files
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The file source: "file://GLOB" (e.g. file://shots/*.jpg) or "file://DIR"
// streams image files in sorted order as RGB24 frames. A DIR in
// torchvision's ImageFolder layout (one sub-folder per class) labels each
// frame with its class index, the sorted sub-folder names, which Classes
// returns; other files get Label -1. It is finite (io.EOF after the last
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
	s := &fileSource{loop: loop, o: o}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		err = s.listDir(p)
		if err != nil {
			return nil, err
		}
	} else {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("pattern %s: %w", p, err)
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				s.files = append(s.files, m)
				s.labels = append(s.labels, -1)
			}
		}
		if len(s.files) == 0 {
			return nil, fmt.Errorf("%s: no such file, and no files match it as a pattern", p)
		}
	}
	return s, nil
}

// isImageName reports the file names the folder layouts take.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// listDir lists dir's images: those in its class sub-folders when it has
// any (ImageFolder layout), else those directly in it.
func (s *fileSource) listDir(dir string) error {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			s.classes = append(s.classes, e.Name())
		}
	}
	if len(s.classes) == 0 {
		for _, e := range entries {
			if !e.IsDir() && isImageName(e.Name()) {
				s.files = append(s.files, filepath.Join(dir, e.Name()))
				s.labels = append(s.labels, -1)
			}
		}
		if len(s.files) == 0 {
			return fmt.Errorf("%s: no .jpg, .jpeg or .png files and no class sub-folders", dir)
		}
		return nil
	}
	for ci, c := range s.classes {
		files, err := os.ReadDir(filepath.Join(dir, c))
		if err != nil {
			return err
		}
		for _, f := range files {
			if !f.IsDir() && isImageName(f.Name()) {
				s.files = append(s.files, filepath.Join(dir, c, f.Name()))
				s.labels = append(s.labels, ci)
			}
		}
	}
	if len(s.files) == 0 {
		return fmt.Errorf("%s: class folders %s hold no .jpg, .jpeg or .png files", dir, strings.Join(s.classes, ", "))
	}
	return nil
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
		f.Seq, f.Time, f.Label = s.seq, time.Now(), s.labels[i]
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
	d := f.Data
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
		// Alpha is dropped: frames have no transparency.
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
