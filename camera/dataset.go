package camera

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // ImageFolder datasets hold JPEG and PNG files
	_ "image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vggedge/vggedge/infer"
)

// Dataset is a labelled set of images, each delivered as the model's u8 CHW
// input (converted, resized and cropped per the model's input spec).
type Dataset interface {
	Len() int
	// Sample writes image i into dst (len = C·H·W of the model input) and
	// returns its label index.
	Sample(i int, dst []byte) (label int, err error)
	// Classes names the labels, when the dataset knows them.
	Classes() []string
}

// OpenDataset opens DATA as the command line names it: "idx:PATH" (MNIST
// idx files; PATH is the folder holding them or an images file), the path
// of a folder in torchvision's ImageFolder layout (one sub-folder per
// class, JPEG/PNG files), or, unlabelled (for calibration), a flat folder
// of images, a glob or one file (see ListImages); a file:// prefix is
// allowed. set picks the idx set in a folder: "train" or "t10k".
func OpenDataset(data, set string, in infer.Shape, spec infer.InputSpec) (Dataset, error) {
	if path, ok := strings.CutPrefix(data, "idx:"); ok {
		return openIDX(path, set, in)
	}
	data = strings.TrimPrefix(data, "file://") // as run --source takes it
	if !isImageFolder(data) {
		return openFileList(data, in, spec) // a flat folder, a glob, a file: unlabelled (see IsLabelled)
	}
	return openImageFolder(data, in, spec)
}

type idxDataset struct {
	imgs   *IDXImages
	labels []byte
	in     infer.Shape
}

func openIDX(path, set string, in infer.Shape) (Dataset, error) {
	var imgs *IDXImages
	var labels []byte
	var err error
	if st, serr := os.Stat(path); serr == nil && !st.IsDir() {
		imgs, labels, err = loadIDXFile(path)
	} else {
		imgs, labels, err = LoadIDX(path, set)
	}
	if err != nil {
		return nil, err
	}
	if in.C != 1 || in.H != imgs.H || in.W != imgs.W {
		return nil, fmt.Errorf("dataset idx:%s has %dx%d grey images, the model takes %v", path, imgs.H, imgs.W, in)
	}
	return &idxDataset{imgs: imgs, labels: labels, in: in}, nil
}

// loadIDXFile opens an images file and the labels file beside it
// (…-images-idx3-ubyte → …-labels-idx1-ubyte).
func loadIDXFile(path string) (*IDXImages, []byte, error) {
	lpath := strings.Replace(path, "images-idx3", "labels-idx1", 1)
	if lpath == path {
		return nil, nil, fmt.Errorf("idx:%s: cannot find its labels file (want a name with images-idx3)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	imgs, err := DecodeIDXImages(f, path)
	if err != nil {
		return nil, nil, err
	}
	lf, err := os.Open(lpath)
	if err != nil {
		return nil, nil, err
	}
	defer lf.Close()
	labels, err := DecodeIDXLabels(lf, lpath)
	if err != nil {
		return nil, nil, err
	}
	if len(labels) != imgs.N {
		return nil, nil, fmt.Errorf("idx:%s: %d images but %d labels in %s", path, imgs.N, len(labels), lpath)
	}
	return imgs, labels, nil
}

func (d *idxDataset) Len() int { return d.imgs.N }

func (d *idxDataset) Classes() []string { return nil }

func (d *idxDataset) Sample(i int, dst []byte) (int, error) {
	n := d.imgs.H * d.imgs.W
	if i < 0 || i >= d.imgs.N {
		return 0, fmt.Errorf("sample %d of %d", i, d.imgs.N)
	}
	if len(dst) != n {
		return 0, fmt.Errorf("destination has %d bytes, want %d", len(dst), n)
	}
	copy(dst, d.imgs.Pixels[i*n:(i+1)*n])
	return int(d.labels[i]), nil
}

type folderDataset struct {
	files   []string
	labels  []int
	classes []string
	in      infer.Shape
	spec    infer.InputSpec
}

func openImageFolder(dir string, in infer.Shape, spec infer.InputSpec) (Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	d := &folderDataset{in: in, spec: spec}
	for _, e := range entries {
		// Hidden folders (.ipynb_checkpoints, .thumbnails) are no classes:
		// skipped, as the file source and classify skip hidden entries.
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			d.classes = append(d.classes, e.Name())
		}
	}
	slices.Sort(d.classes) // torchvision's ImageFolder sorts class folders
	for ci, c := range d.classes {
		files, err := os.ReadDir(filepath.Join(dir, c))
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", dir, err)
		}
		for _, f := range files {
			ext := strings.ToLower(filepath.Ext(f.Name()))
			if !f.IsDir() && !strings.HasPrefix(f.Name(), ".") && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
				d.files = append(d.files, filepath.Join(dir, c, f.Name()))
				d.labels = append(d.labels, ci)
			}
		}
	}
	if len(d.files) == 0 {
		return nil, fmt.Errorf("dataset %s: no JPEG or PNG files in class sub-folders (ImageFolder layout: DIR/CLASS/IMAGE.jpg)", dir)
	}
	return d, nil
}

func (d *folderDataset) Len() int          { return len(d.files) }
func (d *folderDataset) Classes() []string { return d.classes }

func (d *folderDataset) Sample(i int, dst []byte) (int, error) {
	if i < 0 || i >= len(d.files) {
		return 0, fmt.Errorf("sample %d of %d", i, len(d.files))
	}
	f, err := os.Open(d.files[i])
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	img, err := DecodeImage(f, size)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", d.files[i], err)
	}
	if err := ImageToCHW(img, d.in, d.spec, dst); err != nil {
		return 0, fmt.Errorf("%s: %w", d.files[i], err)
	}
	return d.labels[i], nil
}

// ImageToCHW resizes and crops img per spec and writes it as u8 CHW in the
// spec's channel order: exactly what a Preprocessor makes of the same
// picture as an RGB24 frame (the pixels an eval on a folder sees are the
// pixels the camera loop feeds). It is the simple, allocating path for
// datasets; the live loop keeps one Preprocessor.
func ImageToCHW(img image.Image, in infer.Shape, spec infer.InputSpec, dst []byte) error {
	f, err := imageFrame(img)
	if err != nil {
		return err
	}
	p, err := NewPreprocessor(in, spec)
	if err != nil {
		return err
	}
	return p.Into(dst, f)
}

// imageFrame copies img into an RGB24 frame (alpha dropped, as the file
// source and torchvision drop it: copyRGB).
func imageFrame(img image.Image) (*Frame, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, errors.New("empty image")
	}
	if w > MaxFrameSide || h > MaxFrameSide {
		return nil, fmt.Errorf("image of %dx%d: beyond the %d pixels per side vggedge accepts", w, h, MaxFrameSide)
	}
	px := make([]byte, 3*w*h)
	copyRGB(px, img)
	return &Frame{Format: RGB24, Width: w, Height: h, Data: px, Label: -1}, nil
}
