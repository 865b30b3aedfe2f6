package camera

import (
	"fmt"
	"time"
)

// The synthetic source: "synthetic" (or "synthetic:?w=640&h=480&fmt=YUYV&fps=30")
// is a live test pattern that needs no hardware: eight colour bars, a box
// that moves 4 pixels to the right per frame, and the frame counter as 32
// black/white cells across the top (most significant bit first). Defaults:
// Options.Width×Height or 320×240, Options.Format or RGB24, Options.FPS or
// 30 frames per second; fps=0 delivers as fast as the reader takes them.
// Formats: YUYV, I420, NV12 (BT.601 limited range), RGB24, BGR24, GRAY.

func init() { register("synthetic", openSyntheticSource) }

// Colours of the pattern, as R, G, B. The bars are 100% bars in the usual
// order (white, yellow, cyan, green, magenta, red, blue, black).
var (
	syntheticBars = [8][3]uint8{
		{255, 255, 255}, {255, 255, 0}, {0, 255, 255}, {0, 255, 0},
		{255, 0, 255}, {255, 0, 0}, {0, 0, 255}, {0, 0, 0},
	}
	syntheticBox = [3]uint8{255, 128, 0}
)

// syntheticCounterBits is how many cells the frame counter strip has.
const syntheticCounterBits = 32

type syntheticSource struct {
	format PixelFormat
	w, h   int
	base   []byte // the bars, rendered once
	pacer  *framePacer
	seq    uint64
}

func openSyntheticSource(rest string, o Options) (Source, error) {
	path, q, err := splitSourceQuery("synthetic", rest, "w", "h", "fmt", "fps")
	if err != nil {
		return nil, err
	}
	if path != "" {
		return nil, fmt.Errorf("synthetic takes no path, got %q (options go after '?': synthetic:?w=640&h=480)", path)
	}
	w, h := 320, 240
	if o.Width > 0 && o.Height > 0 {
		w, h = o.Width, o.Height
	}
	if w, err = q.int("w", w, syntheticMinW, maxFrameSide); err != nil {
		return nil, err
	}
	if h, err = q.int("h", h, syntheticMinH, maxFrameSide); err != nil {
		return nil, err
	}
	format := RGB24
	if o.Format != "" && o.Format != MJPEG {
		format = o.Format
	}
	if q.has("fmt") {
		if format, err = parsePixelFormat(q.vals.Get("fmt")); err != nil {
			return nil, fmt.Errorf("query fmt: %w", err)
		}
	}
	if format == MJPEG {
		return nil, fmt.Errorf("query fmt=%s: synthetic frames are raw (want one of %s)", format, rawFormatNames)
	}
	if w < syntheticMinW || h < syntheticMinH {
		return nil, fmt.Errorf("size %dx%d: the test pattern needs at least %dx%d", w, h, syntheticMinW, syntheticMinH)
	}
	n, err := rawFrameLen(format, w, h)
	if err != nil {
		return nil, err
	}
	fps := 30.0
	if o.FPS > 0 {
		fps = o.FPS
	}
	if fps, err = q.float("fps", fps, 0, maxSourceFPS); err != nil {
		return nil, err
	}
	s := &syntheticSource{format: format, w: w, h: h, base: make([]byte, n), pacer: newFramePacer(fps)}
	for k, c := range syntheticBars {
		x0, x1 := k*w/len(syntheticBars)&^1, (k+1)*w/len(syntheticBars)&^1
		if k == len(syntheticBars)-1 {
			x1 = w
		}
		s.fill(s.base, x0, 0, x1, h, c)
	}
	return s, nil
}

// The pattern needs room for 32 counter cells of 2 pixels and a box.
const (
	syntheticMinW = 2 * syntheticCounterBits
	syntheticMinH = 16
)

func (s *syntheticSource) Read(f *Frame) error {
	if !s.pacer.wait() {
		return ErrClosed
	}
	f.Data = resizeData(f.Data, len(s.base))
	copy(f.Data, s.base)
	box := min(s.w, s.h) / 4 &^ 1
	bx := int(s.seq*4%uint64(s.w-box)) &^ 1
	by := (s.h/2 - box/2) &^ 1
	s.fill(f.Data, bx, by, bx+box, by+box, syntheticBox)
	cellH := max(2, s.h/16&^1)
	for k := range syntheticCounterBits {
		c := [3]uint8{}
		if s.seq>>(syntheticCounterBits-1-k)&1 == 1 {
			c = [3]uint8{255, 255, 255}
		}
		s.fill(f.Data, k*s.w/syntheticCounterBits&^1, 0, (k+1)*s.w/syntheticCounterBits&^1, cellH, c)
	}
	f.Seq, f.Time = s.seq, time.Now()
	f.Format, f.Width, f.Height, f.Label = s.format, s.w, s.h, -1
	s.seq++
	return nil
}

// fill paints the rectangle [x0,x1)×[y0,y1) of a frame in s's format with
// colour c. For the subsampled formats the corners must be even, which
// every caller ensures, so chroma samples never straddle two colours.
func (s *syntheticSource) fill(data []byte, x0, y0, x1, y1 int, c [3]uint8) {
	w, h := s.w, s.h
	r, g, b := int(c[0]), int(c[1]), int(c[2])
	// BT.601 limited range, 8-bit integer form (ITU-R BT.601; the same
	// coefficients as Microsoft's "Converting 8-bit YUV to RGB888" note).
	y := uint8((66*r+129*g+25*b+128)>>8 + 16)
	u := uint8((-38*r-74*g+112*b+128)>>8 + 128)
	v := uint8((112*r-94*g-18*b+128)>>8 + 128)
	for row := y0; row < y1; row++ {
		switch s.format {
		case RGB24, BGR24:
			p0, p2 := c[0], c[2]
			if s.format == BGR24 {
				p0, p2 = p2, p0
			}
			line := data[(row*w+x0)*3 : (row*w+x1)*3]
			for i := 0; i < len(line); i += 3 {
				line[i], line[i+1], line[i+2] = p0, c[1], p2
			}
		case GRAY8:
			// Full-range luma: GRAY frames are plain intensities.
			grey := uint8((299*r + 587*g + 114*b + 500) / 1000)
			line := data[row*w+x0 : row*w+x1]
			for i := range line {
				line[i] = grey
			}
		case YUYV:
			line := data[(row*w+x0)*2 : (row*w+x1)*2]
			for i := 0; i < len(line); i += 4 {
				line[i], line[i+1], line[i+2], line[i+3] = y, u, y, v
			}
		case I420, NV12:
			line := data[row*w+x0 : row*w+x1]
			for i := range line {
				line[i] = y
			}
			if row%2 != 0 {
				continue
			}
			cw, crow := w/2, row/2
			if s.format == I420 {
				us := data[w*h+crow*cw+x0/2 : w*h+crow*cw+x1/2]
				vs := data[w*h+cw*(h/2)+crow*cw+x0/2 : w*h+cw*(h/2)+crow*cw+x1/2]
				for i := range us {
					us[i], vs[i] = u, v
				}
			} else {
				uv := data[w*h+crow*w+x0 : w*h+crow*w+x1]
				for i := 0; i < len(uv); i += 2 {
					uv[i], uv[i+1] = u, v
				}
			}
		}
	}
}

// Live reports true: frames come paced like a camera's.
func (s *syntheticSource) Live() bool { return true }

// Close interrupts a Read waiting for its frame time.
func (s *syntheticSource) Close() error {
	s.pacer.close()
	return nil
}
