package camera

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The idx format (yann.lecun.com/exdb/mnist): a big-endian u32 magic
// 0x0000TTDD (TT the element type, 0x08 for unsigned bytes; DD the number of
// dimensions), DD big-endian u32 sizes, then the elements in row-major order.
const (
	idxImagesMagic = 0x00000803 // u8, 3 dims: N×H×W
	idxLabelsMagic = 0x00000801 // u8, 1 dim: N
)

// MaxIDXBytes bounds the elements of one idx file. MNIST's training images
// are 47 MB and EMNIST's largest set about 550 MB; a header that declares
// more is hostile or corrupt.
const MaxIDXBytes = 1 << 30

// readChunk is the first allocation and the smallest growth step while
// reading elements, so a lying header costs at most this much memory
// beyond the data that actually arrives.
const readChunk = 1 << 20

// IDXImages is an idx3 image file: N grayscale images of H×W u8 pixels,
// row-major, image after image.
type IDXImages struct {
	N, H, W int
	Pixels  []byte
}

// Image returns image i's H×W pixels (a sub-slice of Pixels, not a copy).
func (m *IDXImages) Image(i int) []byte {
	n := m.H * m.W
	return m.Pixels[i*n : (i+1)*n]
}

// DecodeIDXImages reads an idx3-ubyte image file, gzipped or not; name
// identifies it in errors. The whole stream must be exactly the header and
// the N·H·W pixels it declares.
func DecodeIDXImages(r io.Reader, name string) (*IDXImages, error) {
	r, closeGz, err := maybeGunzip(r, name)
	if err != nil {
		return nil, err
	}
	defer closeGz()
	dims, err := readIDXHeader(r, name, idxImagesMagic, "image file (N×H×W unsigned bytes)")
	if err != nil {
		return nil, err
	}
	n, h, w := dims[0], dims[1], dims[2]
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("%s: images of %dx%d pixels: both sides must be positive", name, h, w)
	}
	// Each factor is below 2^32, and the partial product is checked
	// before the next multiplication, so nothing overflows uint64.
	total := n * h
	if total <= MaxIDXBytes {
		total *= w
	}
	if total > MaxIDXBytes || h > MaxIDXBytes || w > MaxIDXBytes {
		return nil, fmt.Errorf("%s: header declares %d images of %dx%d pixels: more than the %d bytes vggedge accepts from an idx file", name, n, h, w, MaxIDXBytes)
	}
	what := fmt.Sprintf("pixel bytes its header declares (%d images of %dx%d)", n, h, w)
	px, err := readElems(r, name, int(total), what)
	if err != nil {
		return nil, err
	}
	return &IDXImages{N: int(n), H: int(h), W: int(w), Pixels: px}, nil
}

// DecodeIDXLabels reads an idx1-ubyte label file, gzipped or not; name
// identifies it in errors. The stream must be exactly the header and the N
// labels it declares.
func DecodeIDXLabels(r io.Reader, name string) ([]byte, error) {
	r, closeGz, err := maybeGunzip(r, name)
	if err != nil {
		return nil, err
	}
	defer closeGz()
	dims, err := readIDXHeader(r, name, idxLabelsMagic, "label file (N unsigned bytes)")
	if err != nil {
		return nil, err
	}
	if dims[0] > MaxIDXBytes {
		return nil, fmt.Errorf("%s: header declares %d labels: more than the %d vggedge accepts from an idx file", name, dims[0], MaxIDXBytes)
	}
	return readElems(r, name, int(dims[0]), fmt.Sprintf("labels its header declares (%d)", dims[0]))
}

// LoadIDX loads an MNIST-style set from dir: set is "train" or "t10k", and
// dir holds SET-images-idx3-ubyte and SET-labels-idx1-ubyte, each possibly
// gzipped (.gz) or spelled SET-images.idx3-ubyte as some mirrors do. The
// image and label counts must match.
func LoadIDX(dir, set string) (*IDXImages, []byte, error) {
	if set != "train" && set != "t10k" {
		return nil, nil, fmt.Errorf("idx set %q: want train or t10k", set)
	}
	var imgs *IDXImages
	err := withIDXFile(dir, set, "images", "idx3-ubyte", func(r io.Reader, name string) (err error) {
		imgs, err = DecodeIDXImages(r, name)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var labels []byte
	var labelsName string
	err = withIDXFile(dir, set, "labels", "idx1-ubyte", func(r io.Reader, name string) (err error) {
		labelsName = name
		labels, err = DecodeIDXLabels(r, name)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(labels) != imgs.N {
		return nil, nil, fmt.Errorf("idx set %s in %s: %d images but %s has %d labels: want one label per image", set, dir, imgs.N, labelsName, len(labels))
	}
	return imgs, labels, nil
}

// withIDXFile opens the first file of dir that is set's kind ("images" or
// "labels") under one of its usual names and passes it to decode.
func withIDXFile(dir, set, kind, ext string, decode func(io.Reader, string) error) error {
	names := []string{
		set + "-" + kind + "-" + ext, set + "-" + kind + "-" + ext + ".gz",
		set + "-" + kind + "." + ext, set + "-" + kind + "." + ext + ".gz",
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("idx %s %s: %w", set, kind, err)
		}
		defer f.Close()
		return decode(f, p)
	}
	return fmt.Errorf("idx %s %s: none of %s or %s(.gz) in %s", set, kind, names[0], names[2], dir)
}

// maybeGunzip returns r itself, or a gzip reader when r starts with the
// gzip magic 0x1f 0x8b. The returned func releases the gzip reader.
func maybeGunzip(r io.Reader, name string) (io.Reader, func(), error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2) // a short stream fails later, at the header
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, func() {}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: gzip: %w", name, err)
	}
	return zr, func() { zr.Close() }, nil
}

// readIDXHeader reads the magic, checks it is want, and returns the
// dimensions.
func readIDXHeader(r io.Reader, name string, want uint32, what string) ([]uint64, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, headerErr(name, err, fmt.Sprintf("the 4-byte magic 0x%08x of an idx %s", want, what))
	}
	magic := binary.BigEndian.Uint32(b[:])
	if magic != want {
		kind := ""
		switch magic {
		case idxImagesMagic:
			kind = " (an idx image file)"
		case idxLabelsMagic:
			kind = " (an idx label file)"
		}
		return nil, fmt.Errorf("%s: magic 0x%08x%s: want 0x%08x, an idx %s", name, magic, kind, want, what)
	}
	dims := make([]uint64, want&0xff)
	for i := range dims {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, headerErr(name, err, fmt.Sprintf("the %d dimension sizes of an idx %s", len(dims), what))
		}
		dims[i] = uint64(binary.BigEndian.Uint32(b[:]))
	}
	return dims, nil
}

func headerErr(name string, err error, want string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: file ends inside the header: want %s", name, want)
	}
	return fmt.Errorf("%s: reading the header: %w", name, err)
}

// readElems reads exactly n bytes and checks that nothing follows them
// (which, for gzip, also verifies the checksum). The buffer grows as data
// arrives instead of being sized from the header, so a header that lies
// about a short stream cannot make it allocate the declared size.
func readElems(r io.Reader, name string, n int, what string) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunk))
	stalled := 0
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// Double (at least readChunk), never beyond n.
			grow := min(n-len(buf), max(len(buf), readChunk))
			buf = append(buf, make([]byte, grow)...)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading %s: %w", name, what, err)
		}
		// A reader that keeps returning nothing would spin forever.
		if stalled = stalled + 1; m > 0 {
			stalled = 0
		} else if stalled >= 100 {
			return nil, fmt.Errorf("%s: reading %s: %w", name, what, io.ErrNoProgress)
		}
	}
	if len(buf) < n {
		return nil, fmt.Errorf("%s: truncated: %d of the %d %s", name, len(buf), n, what)
	}
	var extra [1]byte
	m, err := io.ReadFull(r, extra[:])
	if m > 0 {
		return nil, fmt.Errorf("%s: data after the %d %s: not an idx file of that size", name, n, what)
	}
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: after the %d %s: %w", name, n, what, err)
	}
	return buf, nil
}
