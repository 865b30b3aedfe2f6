package livepage

import (
	"bytes"
	_ "embed"
	"fmt"
	"image"
	"image/jpeg"
	"sync"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/firmware/live"
)

// encodedPicture is one JPEG of the picture served, with its frame number
// and result. Its bytes are never written again once published, so slow
// clients can hold on to them.
type encodedPicture struct {
	version uint64 // the Server.shownV it was made from
	seq     uint64 // the frame's sequence number
	jpeg    []byte
	result  []byte // X-Result, the frame's own result; nil before it has one
}

// pictureEncoder turns the picture served into a JPEG at most once per
// picture, however many clients ask.
type pictureEncoder struct {
	mu   sync.Mutex
	last encodedPicture
	raw  camera.Frame // the picture copied out of the sink
	res  live.Result  // its result copied out of the sink
	rgb  []byte
	rgba *image.RGBA
	gray *image.Gray
	out  bytes.Buffer
}

func (e *pictureEncoder) latest(s *Server) (encodedPicture, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	if s.shown < 0 {
		s.mu.Unlock()
		return encodedPicture{}, errNoPicture
	}
	v := s.shownV
	if v == e.last.version {
		s.mu.Unlock()
		return e.last, nil
	}
	sl := &s.slots[s.shown]
	paired := sl.paired
	if paired {
		copyResult(&e.res, &sl.res)
	}
	var camJPEG []byte
	if sl.pic.Format == camera.MJPEG {
		// Camera JPEGs go out untouched: the browser decodes them, DHT or not.
		camJPEG = bytes.Clone(sl.pic.Data)
	}
	data := e.raw.Data[:0]
	if camJPEG == nil {
		data = append(data, sl.pic.Data...)
	}
	e.raw = sl.pic
	e.raw.Data = data
	s.mu.Unlock()

	var result []byte
	if paired {
		var err error
		if result, err = resultHeader(&e.res); err != nil {
			return encodedPicture{}, fmt.Errorf("picture %d: result: %w", e.raw.Seq, err)
		}
	}
	if camJPEG != nil {
		e.last = encodedPicture{version: v, seq: e.raw.Seq, jpeg: camJPEG, result: result}
		return e.last, nil
	}
	img, err := e.image(&e.raw)
	if err != nil {
		return encodedPicture{}, fmt.Errorf("picture %d: %w", e.raw.Seq, err)
	}
	e.out.Reset()
	quality := jpegQuality
	if img.Bounds().Dx() < 160 {
		// Tiny pictures (MNIST's 28x28) are shown blown up, where quality
		// 80's block noise is plain to see; at this size 95 costs nothing.
		quality = 95
	}
	if err := jpeg.Encode(&e.out, img, &jpeg.Options{Quality: quality}); err != nil {
		return encodedPicture{}, fmt.Errorf("picture %d: jpeg: %w", e.raw.Seq, err)
	}
	e.last = encodedPicture{version: v, seq: e.raw.Seq, jpeg: bytes.Clone(e.out.Bytes()), result: result}
	return e.last, nil
}

// image converts f into an image no wider than maxPictureWidth, shrinking
// by an integer factor with a box filter (averaging, so fine detail does
// not alias into noise).
func (e *pictureEncoder) image(f *camera.Frame) (image.Image, error) {
	if f.Width <= 0 || f.Height <= 0 || f.Width > 1<<14 || f.Height > 1<<14 {
		return nil, fmt.Errorf("%s frame of %dx%d: size out of range", f.Format, f.Width, f.Height)
	}
	kx := (f.Width + maxPictureWidth - 1) / maxPictureWidth
	ky := min(kx, f.Height) // a strip lower than the factor becomes one row
	w, h := f.Width/kx, f.Height/ky
	if f.Format == camera.GRAY8 {
		if len(f.Data) < f.Width*f.Height {
			return nil, fmt.Errorf("GRAY frame of %dx%d needs %d bytes, has %d", f.Width, f.Height, f.Width*f.Height, len(f.Data))
		}
		if e.gray == nil || e.gray.Rect.Dx() != w || e.gray.Rect.Dy() != h {
			e.gray = image.NewGray(image.Rect(0, 0, w, h))
		}
		shrink(e.gray.Pix, w, h, f.Data, f.Width, kx, ky, 1)
		return e.gray, nil
	}
	rgb, err := camera.ToRGB(e.rgb, f)
	if err != nil {
		return nil, err
	}
	e.rgb = rgb
	if e.rgba == nil || e.rgba.Rect.Dx() != w || e.rgba.Rect.Dy() != h {
		e.rgba = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	shrink(e.rgba.Pix, w, h, rgb, f.Width, kx, ky, 3)
	return e.rgba, nil
}

// shrink box-averages kx×ky blocks of src (ch interleaved channels, srcW
// pixels a row) into dst (w×h; 4 bytes a pixel for ch 3 with alpha 255,
// 1 byte for ch 1).
func shrink(dst []byte, w, h int, src []byte, srcW, kx, ky, ch int) {
	dch := ch
	if ch == 3 {
		dch = 4
	}
	area := uint32(kx * ky)
	var sum [3]uint32
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sum = [3]uint32{}
			for dy := 0; dy < ky; dy++ {
				row := src[((y*ky+dy)*srcW+x*kx)*ch:]
				for dx := 0; dx < kx*ch; dx += ch {
					for c := 0; c < ch; c++ {
						sum[c] += uint32(row[dx+c])
					}
				}
			}
			o := (y*w + x) * dch
			for c := 0; c < ch; c++ {
				dst[o+c] = byte((sum[c] + area/2) / area)
			}
			if dch == 4 {
				dst[o+3] = 255
			}
		}
	}
}
