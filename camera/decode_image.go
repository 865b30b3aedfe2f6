package camera

import (
	"errors"
	"fmt"
	"image"
	"io"
)

// MaxImagePixels bounds the pixels of a still image (file://, ImageFolder
// datasets, calibration sets) that vggedge decodes: 4096x4096, beyond any
// camera still it classifies (a 12 MP photo is 4032x3024). Decoding one
// at the limit costs ~72 MB (image/jpeg's YCbCr planes and the RGB24
// frame), within a 512 MB board's budget.
const MaxImagePixels = 4096 * 4096

// DecodeImage decodes a JPEG or PNG from r, which must be positioned at
// the image's start and seekable back to it. The header is read first
// (image.DecodeConfig) and a size beyond MaxImagePixels or MaxFrameSide —
// or, for a JPEG, more pixels than fileBytes of coded data can hold — is
// refused before anything is allocated: a 376-byte file claiming
// 32000x32000 gives a one-line error, not a gigabyte allocation.
// fileBytes ≤ 0 means unknown (only the pixel limit applies).
func DecodeImage(r io.ReadSeeker, fileBytes int64) (image.Image, error) {
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			err = errors.New("not a JPEG or PNG image")
		}
		return nil, err
	}
	if err := checkImageSize(cfg.Width, cfg.Height, format, fileBytes); err != nil {
		return nil, err
	}
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("%s decoded as %dx%d after a header of %dx%d", format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, nil
}

func checkImageSize(w, h int, format string, fileBytes int64) error {
	if w <= 0 || h <= 0 || w > MaxFrameSide || h > MaxFrameSide {
		return fmt.Errorf("%s of %dx%d: want sides from 1 to %d", format, w, h, MaxFrameSide)
	}
	if px := int64(w) * int64(h); px > MaxImagePixels {
		return fmt.Errorf("%s of %dx%d (%d pixels): beyond the %d pixels vggedge decodes (scale it down first)", format, w, h, px, MaxImagePixels)
	}
	// Every 8x8 luma block of a JPEG costs at least 2 bits of coded data
	// (a DC code and an end-of-block), so n bytes hold at most 256n pixels.
	if format == "jpeg" && fileBytes > 0 && int64(w)*int64(h) > 256*fileBytes {
		return fmt.Errorf("jpeg of %dx%d needs at least %d bytes of coded data, the file has %d", w, h, int64(w)*int64(h)/256, fileBytes)
	}
	return nil
}
