package camera

import (
	"errors"
	"fmt"
	"sync"
)

// YCbCrMatrix turns Y'CbCr samples into R'G'B' in 16-bit fixed point.
//
// Which matrix a frame needs depends on where it came from, not on its
// pixel format, so it is a value the Preprocessor carries:
// BT601Limited is what V4L2 YUYV webcams, rpicam-vid's yuv420 and
// nvvidconv's NV12 deliver by default ("TV range": Y 16..235, Cb/Cr
// 16..240, ITU-R BT.601), and what ffmpeg's swscale writes for yuv
// formats; BT601Full is JFIF's (JPEG, MJPEG: all of 0..255), and the
// JPEG decoder always uses it.
type YCbCrMatrix struct {
	Name string
	yOff int32 // subtracted from Y before scaling
	yMul int32 // Y scale, ·2^16
	crR  int32 // Cr's weight in R, ·2^16
	cbG  int32 // −Cb's weight in G
	crG  int32 // −Cr's weight in G
	cbB  int32 // Cb's weight in B
	luma [256]uint8
}

// The coefficients are ITU-R BT.601's (Kr 0.299, Kb 0.114):
// R = Y' + 1.402·Cr, G = Y' − 0.344136·Cb − 0.714136·Cr, B = Y' + 1.772·Cb,
// with Cb, Cr centred on 128. Limited range first stretches Y' by 255/219
// and Cb, Cr by 255/224. Values are round(x·65536).
var (
	BT601Limited = newYCbCrMatrix("BT.601 limited range", 16, 76309, 104597, 25675, 53279, 132201)
	BT601Full    = newYCbCrMatrix("BT.601 full range (JFIF)", 0, 65536, 91881, 22554, 46802, 116130)
)

func newYCbCrMatrix(name string, yOff, yMul, crR, cbG, crG, cbB int32) *YCbCrMatrix {
	m := &YCbCrMatrix{Name: name, yOff: yOff, yMul: yMul, crR: crR, cbG: cbG, crG: crG, cbB: cbB}
	for y := range m.luma {
		m.luma[y] = clampU8(((int32(y)-yOff)*yMul + 1<<15) >> 16)
	}
	return m
}

// RGB converts one Y'CbCr sample.
func (m *YCbCrMatrix) RGB(y, cb, cr uint8) (r, g, b uint8) {
	rv, guv, bu := m.chroma(cb, cr)
	yy := m.y(y)
	return clampU8((yy + rv) >> 16), clampU8((yy - guv) >> 16), clampU8((yy + bu) >> 16)
}

// y is Y's share of R, G and B, ·2^16, with the rounding half added.
func (m *YCbCrMatrix) y(y uint8) int32 { return (int32(y)-m.yOff)*m.yMul + 1<<15 }

// chroma is Cb and Cr's shares of R, G (negated) and B, ·2^16; 4:2:x
// pixels that share a chroma sample compute it once.
func (m *YCbCrMatrix) chroma(cb, cr uint8) (rv, guv, bu int32) {
	u, v := int32(cb)-128, int32(cr)-128
	return m.crR * v, m.cbG*u + m.crG*v, m.cbB * u
}

// putRGB stores one pixel from its Y share and chroma shares.
func putRGB(o []byte, yy, rv, guv, bu int32) {
	_ = o[2]
	o[0], o[1], o[2] = clampU8((yy+rv)>>16), clampU8((yy-guv)>>16), clampU8((yy+bu)>>16)
}

// Luma is the full-range grey level of Y: Y itself for full range,
// (Y−16)·255/219 for limited range, so that grey input is the BT.601 luma
// of the picture's RGB whatever format it came in.
func (m *YCbCrMatrix) Luma(y uint8) uint8 { return m.luma[y] }

// rgbLuma is ITU-R BT.601 luma of an 8-bit R'G'B' pixel, with
// image/color.GrayModel's weights (0.299, 0.587, 0.114 in 2^16 units).
func rgbLuma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
}

// frameBytes is the size of a frame's Data in a raw format; it checks the
// size first so nothing overflows. I420 and NV12 round odd sizes up for
// their chroma planes, as ffmpeg and V4L2 do.
func frameBytes(format PixelFormat, w, h int) (int, error) {
	if w <= 0 || h <= 0 || w > MaxFrameSide || h > MaxFrameSide {
		return 0, fmt.Errorf("%s frame of %dx%d: want 1..%d pixels per side", format, w, h, MaxFrameSide)
	}
	switch format {
	case YUYV:
		if w%2 != 0 {
			return 0, fmt.Errorf("YUYV frame of width %d: want an even width (pixels come in pairs)", w)
		}
		return w * h * 2, nil
	case I420, NV12:
		return w*h + 2*((w+1)/2)*((h+1)/2), nil
	case RGB24, BGR24:
		return w * h * 3, nil
	case GRAY8:
		return w * h, nil
	case MJPEG:
		return 0, nil
	}
	return 0, fmt.Errorf("pixel format %q: want one of YUYV, I420, NV12, MJPEG, RGB24, BGR24, GRAY", format)
}

// frameRows reads the rows of one frame as packed 8-bit RGB or grey
// pixels, converting only the columns asked for.
type frameRows struct {
	format PixelFormat
	w, h   int
	data   []byte
	m      *YCbCrMatrix
	// planar sources (I420, NV12, decoded JPEG): planes, strides, the
	// chroma's step between samples and its subsampling shifts.
	y, cb, cr        []byte
	yStride, cStride int
	cStep            int
	hs, vs           uint
	channels         int  // what a row holds natively: 1 (grey) or 3
	bgr              bool // a 3-channel row is B,G,R (BGR24 read as is)
}

// errDecoderNeeded is returned by setup for MJPEG frames without a decoder.
var errDecoderNeeded = errors.New("MJPEG frame needs a JPEG decoder")

// setup checks f's size against its format and prepares to read it. MJPEG
// frames are decoded with dec. yuv is the matrix for raw YUV formats.
func (fr *frameRows) setup(f *Frame, dec *JPEGDecoder, yuv *YCbCrMatrix) error {
	if f.Format == MJPEG {
		// Width and Height may be 0 (not known before decoding).
		if f.Width != 0 || f.Height != 0 {
			if _, err := frameBytes(f.Format, f.Width, f.Height); err != nil {
				return err
			}
		}
	} else {
		n, err := frameBytes(f.Format, f.Width, f.Height)
		if err != nil {
			return err
		}
		if len(f.Data) != n {
			return fmt.Errorf("%s frame of %dx%d has %d bytes, want %d", f.Format, f.Width, f.Height, len(f.Data), n)
		}
	}
	if yuv == nil {
		yuv = BT601Limited
	}
	*fr = frameRows{format: f.Format, w: f.Width, h: f.Height, data: f.Data, m: yuv, channels: 3}
	w, h := f.Width, f.Height
	cw, ch := (w+1)/2, (h+1)/2
	switch f.Format {
	case GRAY8:
		fr.channels = 1
	case BGR24:
		fr.bgr = true
	case I420:
		fr.y, fr.cb, fr.cr = f.Data[:w*h], f.Data[w*h:w*h+cw*ch], f.Data[w*h+cw*ch:]
		fr.yStride, fr.cStride, fr.cStep, fr.hs, fr.vs = w, cw, 1, 1, 1
	case NV12:
		fr.y, fr.cb, fr.cr = f.Data[:w*h], f.Data[w*h:], f.Data[w*h+1:]
		fr.yStride, fr.cStride, fr.cStep, fr.hs, fr.vs = w, 2*cw, 2, 1, 1
	case MJPEG:
		if dec == nil {
			return errDecoderNeeded
		}
		if err := dec.Decode(f.Data); err != nil {
			return fmt.Errorf("MJPEG frame: %w", err)
		}
		jw, jh := dec.Size()
		if (f.Width != 0 || f.Height != 0) && (jw != f.Width || jh != f.Height) {
			return fmt.Errorf("MJPEG frame says %dx%d but its JPEG is %dx%d", f.Width, f.Height, jw, jh)
		}
		fr.w, fr.h, fr.m = jw, jh, BT601Full
		c := &dec.comp
		fr.y, fr.yStride = c[0].plane, c[0].stride
		if dec.ncomp == 1 {
			fr.channels = 1
			break
		}
		fr.cb, fr.cr, fr.cStride, fr.cStep = c[1].plane, c[2].plane, c[1].stride, 1
		fr.hs, fr.vs = c[1].hs, c[1].vs
		if c[2].hs != c[1].hs || c[2].vs != c[1].vs {
			return fmt.Errorf("MJPEG frame: Cb and Cr sampled differently (%dx%d, %dx%d) not supported", c[1].h, c[1].v, c[2].h, c[2].v)
		}
		if dec.adobeRGB {
			if fr.hs != 0 || fr.vs != 0 {
				return errors.New("MJPEG frame: subsampled RGB (Adobe transform 0) not supported")
			}
			fr.m = nil // the planes are R, G, B
		}
	}
	return nil
}

// rgb returns row y, columns x0..x1, as packed 3-byte pixels: a slice of
// the frame itself for RGB24/BGR24 (in fr.bgr order), else converted into
// buf (which must hold 3·(x1−x0) bytes). Not for 1-channel sources.
func (fr *frameRows) rgb(buf []byte, y, x0, x1 int) []byte {
	switch fr.format {
	case RGB24, BGR24:
		return fr.data[(y*fr.w+x0)*3 : (y*fr.w+x1)*3]
	case YUYV:
		row := fr.data[y*fr.w*2 : (y+1)*fr.w*2]
		out := buf[:3*(x1-x0)]
		m := fr.m
		x := x0
		if x&1 == 1 { // start on the second pixel of a pair
			p := row[2*x-2 : 2*x+2]
			rv, guv, bu := m.chroma(p[1], p[3])
			putRGB(out, m.y(p[2]), rv, guv, bu)
			x++
		}
		for ; x+1 < x1; x += 2 {
			p := row[2*x : 2*x+4]
			rv, guv, bu := m.chroma(p[1], p[3])
			o := out[3*(x-x0) : 3*(x-x0)+6]
			putRGB(o, m.y(p[0]), rv, guv, bu)
			putRGB(o[3:], m.y(p[2]), rv, guv, bu)
		}
		if x < x1 { // end on the first pixel of a pair
			p := row[2*x : 2*x+4]
			rv, guv, bu := m.chroma(p[1], p[3])
			putRGB(out[3*(x-x0):], m.y(p[0]), rv, guv, bu)
		}
		return out
	}
	// planar: I420, NV12, JPEG
	yrow := fr.y[y*fr.yStride : y*fr.yStride+fr.w]
	cy := (y >> fr.vs) * fr.cStride
	cb, cr := fr.cb[cy:], fr.cr[cy:]
	out := buf[:3*(x1-x0)]
	if fr.m == nil { // Adobe RGB JPEG: the planes are R, G, B unsampled
		for x := x0; x < x1; x++ {
			o := out[3*(x-x0) : 3*(x-x0)+3]
			o[0], o[1], o[2] = yrow[x], cb[x], cr[x]
		}
		return out
	}
	m, step, hs := fr.m, fr.cStep, fr.hs
	if hs == 0 {
		for x := x0; x < x1; x++ {
			rv, guv, bu := m.chroma(cb[x*step], cr[x*step])
			putRGB(out[3*(x-x0):], m.y(yrow[x]), rv, guv, bu)
		}
		return out
	}
	// Subsampled chroma: one sample for each run of 1<<hs pixels.
	for x := x0; x < x1; {
		ci := (x >> hs) * step
		rv, guv, bu := m.chroma(cb[ci], cr[ci])
		end := min((x>>hs+1)<<hs, x1)
		for ; x < end; x++ {
			putRGB(out[3*(x-x0):], m.y(yrow[x]), rv, guv, bu)
		}
	}
	return out
}

// gray returns row y, columns x0..x1, as BT.601 luma: a slice of the frame
// for GRAY8 (and a grey JPEG's plane), else converted into buf.
func (fr *frameRows) gray(buf []byte, y, x0, x1 int) []byte {
	out := buf[:x1-x0]
	switch fr.format {
	case GRAY8:
		return fr.data[y*fr.w+x0 : y*fr.w+x1]
	case RGB24, BGR24:
		row := fr.data[(y*fr.w+x0)*3 : (y*fr.w+x1)*3]
		ri, bi := 0, 2
		if fr.bgr {
			ri, bi = 2, 0
		}
		for i := range out {
			p := row[3*i : 3*i+3]
			out[i] = rgbLuma(p[ri], p[1], p[bi])
		}
		return out
	case YUYV:
		row := fr.data[y*fr.w*2 : (y+1)*fr.w*2]
		lut := &fr.m.luma
		for i := range out {
			out[i] = lut[row[2*(x0+i)]]
		}
		return out
	}
	yrow := fr.y[y*fr.yStride+x0 : y*fr.yStride+x1]
	if fr.m == nil { // Adobe RGB JPEG
		cy := y * fr.cStride
		for i := range out {
			out[i] = rgbLuma(yrow[i], fr.cb[cy+x0+i], fr.cr[cy+x0+i])
		}
		return out
	}
	if fr.m.yOff == 0 && fr.m.yMul == 1<<16 {
		return yrow // full range: Y is the luma
	}
	lut := &fr.m.luma
	for i := range out {
		out[i] = lut[yrow[i]]
	}
	return out
}

// ToRGB writes frame f at full size as packed R,G,B bytes into dst's
// storage (grown when too small) and returns it: 3·W·H bytes. Raw YUV is
// read as BT.601 limited range, MJPEG as JFIF. It allocates only when dst
// is too small (and, for MJPEG, when a pooled decoder meets a larger frame
// than before).
func ToRGB(dst []byte, f *Frame) ([]byte, error) {
	var fr frameRows
	var dec *JPEGDecoder
	if f.Format == MJPEG {
		dec = jpegPool.Get().(*JPEGDecoder)
		defer jpegPool.Put(dec)
	}
	if err := fr.setup(f, dec, BT601Limited); err != nil {
		return dst, err
	}
	n := 3 * fr.w * fr.h
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	row := 3 * fr.w
	for y := range fr.h {
		out := dst[y*row : (y+1)*row]
		switch {
		case fr.channels == 1:
			g := fr.gray(out[2*fr.w:], y, 0, fr.w) // the row's last third as scratch
			for x := range fr.w {
				v := g[x]
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		case fr.bgr:
			in := fr.rgb(nil, y, 0, fr.w)
			for x := range fr.w {
				out[3*x], out[3*x+1], out[3*x+2] = in[3*x+2], in[3*x+1], in[3*x]
			}
		default:
			if in := fr.rgb(out, y, 0, fr.w); &in[0] != &out[0] {
				copy(out, in)
			}
		}
	}
	return dst, nil
}

// jpegPool lends decoders to ToRGB so that repeated calls reuse planes.
var jpegPool = sync.Pool{New: func() any { return new(JPEGDecoder) }}
