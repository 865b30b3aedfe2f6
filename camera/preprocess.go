package camera

import (
	"fmt"
	"math"

	"github.com/vggedge/vggedge/infer"
)

// Preprocessor turns frames of any pixel format and size into a model's
// input: u8 pixels, CHW, in the channel order, size and crop of its
// InputSpec (the infer.Session takes them with SetPixels). It keeps its
// JPEG decoder, resampling plan and row buffers from frame to frame, so
// frames of one size cost no allocations.
//
// Resizing is separable: each source row that the output needs is
// converted to RGB (or grey) over just the columns the output needs,
// resampled horizontally into a 16-bit row, and the rows are then
// resampled vertically. Along an axis shrunk by 2× or more each output
// pixel is the area-weighted mean of the source pixels it covers (OpenCV's
// INTER_AREA); otherwise it is bilinear between the two nearest pixel
// centres. Plain bilinear sampling of a large shrink reads 2 of every n
// pixels and aliases (moiré, flicker on fine texture), which is why PIL and
// torchvision's antialias widen the filter when they downscale; the box
// filter is the cheap form of that. InputSpec.ResizeFilter
// "bilinear-antialias" selects PIL's own filter instead (a triangle
// widened by the shrink factor: more taps, the pixels a model trained
// with torchvision's default PIL preprocessing saw, to within a level).
//
// A Preprocessor is not safe for concurrent use.
type Preprocessor struct {
	// YUV is the matrix for raw YUV frames (YUYV, I420, NV12): nil or
	// BT601Limited unless the source is known to send full range. MJPEG
	// frames always use JFIF's BT601Full.
	YUV *YCbCrMatrix

	in   infer.Shape
	spec infer.InputSpec
	jpeg JPEGDecoder
	rows frameRows

	srcW, srcH int // the source size hz and vt were planned for
	hz, vt     axisPlan
	rowUsed    []bool   // per source row in vt.lo..vt.hi: does a tap read it
	conv       []byte   // one row converted to packed RGB or grey
	inter      []uint16 // horizontally resampled rows, values ·64
	acc        []int32  // one output row's vertical sums
}

// axisPlan maps one axis of the source onto the output: output i is
// Σ_k w[i·taps+k] · src[start[i]+k], weights in 2^14 units summing to 2^14.
type axisPlan struct {
	taps   int
	start  []int
	w      []int32
	lo, hi int  // the source indices the windows span: lo..hi−1
	area   bool // box filter (shrink ≥ 2×) rather than bilinear
}

const weightBits = 14

// NewPreprocessor prepares the conversion of frames into input in, as
// spec says: ChannelOrder "RGB", "BGR" or "GRAY" (in.C 3, 3, 1), Resize
// "stretch" or "resize-crop" with ResizeShorter. Mean and Std are not used:
// the int8 model folds them into its first layer.
func NewPreprocessor(in infer.Shape, spec infer.InputSpec) (*Preprocessor, error) {
	if in.H <= 0 || in.W <= 0 || in.H > MaxFrameSide || in.W > MaxFrameSide {
		return nil, fmt.Errorf("preprocess: input %v: want 1..%d pixels per side", in, MaxFrameSide)
	}
	switch spec.ChannelOrder {
	case "RGB", "BGR":
		if in.C != 3 {
			return nil, fmt.Errorf("preprocess: channel order %s needs 3 input channels, the model has %d", spec.ChannelOrder, in.C)
		}
	case "GRAY":
		if in.C != 1 {
			return nil, fmt.Errorf("preprocess: channel order GRAY needs 1 input channel, the model has %d", in.C)
		}
	default:
		return nil, fmt.Errorf("preprocess: channel order %q: want RGB, BGR or GRAY", spec.ChannelOrder)
	}
	switch spec.Resize {
	case "stretch":
	case "resize-crop":
		if spec.ResizeShorter < min(in.H, in.W) || spec.ResizeShorter > infer.MaxDim {
			return nil, fmt.Errorf("preprocess: resize_shorter %d: want %d..%d (at least the input's shorter side)", spec.ResizeShorter, min(in.H, in.W), infer.MaxDim)
		}
	default:
		return nil, fmt.Errorf("preprocess: resize %q: want resize-crop or stretch", spec.Resize)
	}
	if spec.ResizeFilter != "" && spec.ResizeFilter != infer.ResizeBilinearAntialias {
		return nil, fmt.Errorf("preprocess: resize filter %q: want %s or none (area/bilinear)", spec.ResizeFilter, infer.ResizeBilinearAntialias)
	}
	p := &Preprocessor{in: in, spec: spec}
	p.jpeg.lumaOnly = in.C == 1
	return p, nil
}

// Into writes frame f as the model's input into dst (len in.C·in.H·in.W).
// Frames whose Data does not match their Format, Width and Height are
// refused with an error.
func (p *Preprocessor) Into(dst []byte, f *Frame) error {
	if int64(len(dst)) != p.in.Elems() {
		return fmt.Errorf("preprocess: destination has %d bytes, want %d (%v)", len(dst), p.in.Elems(), p.in)
	}
	fr := &p.rows
	if err := fr.setup(f, &p.jpeg, p.YUV); err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	if fr.w != p.srcW || fr.h != p.srcH {
		p.plan(fr.w, fr.h)
	}
	W, H := p.in.W, p.in.H
	nc := 3
	if p.in.C == 1 || fr.channels == 1 {
		nc = 1
	}
	// perm[output channel] = channel of the resampled rows.
	perm := [3]int{0, 1, 2}
	switch {
	case nc == 1:
		perm = [3]int{}
	case (p.spec.ChannelOrder == "BGR") != fr.bgr:
		perm = [3]int{2, 1, 0}
	}
	stride := nc * W
	if n := (p.vt.hi - p.vt.lo) * stride; len(p.inter) < n {
		p.inter = make([]uint16, n)
	}
	if n := 3 * (p.hz.hi - p.hz.lo); len(p.conv) < n {
		p.conv = make([]byte, n)
	}
	if len(p.acc) < W {
		p.acc = make([]int32, W)
	}
	for y := p.vt.lo; y < p.vt.hi; y++ {
		if !p.rowUsed[y-p.vt.lo] {
			continue
		}
		var px []byte
		if nc == 1 {
			px = fr.gray(p.conv, y, p.hz.lo, p.hz.hi)
		} else {
			px = fr.rgb(p.conv, y, p.hz.lo, p.hz.hi)
		}
		out := p.inter[(y-p.vt.lo)*stride : (y-p.vt.lo+1)*stride]
		if nc == 1 {
			resampleRow1(out, px, &p.hz)
		} else {
			resampleRow3(out, px, &p.hz, W)
		}
	}
	plane := H * W
	acc := p.acc[:W]
	vt := &p.vt
	for y := range H {
		s := vt.start[y] - vt.lo
		ws := vt.w[y*vt.taps : (y+1)*vt.taps]
		for oc := range p.in.C {
			c := perm[oc]
			clear(acc)
			for k, w := range ws {
				if w == 0 {
					continue
				}
				row := p.inter[(s+k)*stride+c*W : (s+k)*stride+c*W+W]
				for x, v := range row {
					acc[x] += int32(v) * w
				}
			}
			out := dst[oc*plane+y*W : oc*plane+y*W+W]
			for x, a := range acc {
				out[x] = clampU8((a + 1<<(2*weightBits-8-1)) >> (2*weightBits - 8))
			}
		}
	}
	return nil
}

// resampleRow1 resamples one grey row; outputs keep 6 fractional bits.
func resampleRow1(dst []uint16, px []byte, a *axisPlan) {
	taps := a.taps
	for x := range dst {
		s := a.start[x] - a.lo
		src := px[s : s+taps]
		ws := a.w[x*taps : x*taps+taps]
		var acc int32
		for k, w := range ws {
			acc += int32(src[k]) * w
		}
		dst[x] = uint16((acc + 1<<(weightBits-6-1)) >> (weightBits - 6))
	}
}

// resampleRow3 resamples one packed 3-channel row into three planar runs of
// W values.
func resampleRow3(dst []uint16, px []byte, a *axisPlan, W int) {
	taps := a.taps
	d0, d1, d2 := dst[:W], dst[W:2*W], dst[2*W:3*W]
	for x := range W {
		s := a.start[x] - a.lo
		src := px[3*s : 3*(s+taps)]
		ws := a.w[x*taps : x*taps+taps]
		var a0, a1, a2 int32
		for k, w := range ws {
			p := src[3*k : 3*k+3]
			a0 += int32(p[0]) * w
			a1 += int32(p[1]) * w
			a2 += int32(p[2]) * w
		}
		const rnd, sh = 1 << (weightBits - 6 - 1), weightBits - 6
		d0[x], d1[x], d2[x] = uint16((a0+rnd)>>sh), uint16((a1+rnd)>>sh), uint16((a2+rnd)>>sh)
	}
}

// plan computes the resampling of a sw×sh source. The geometry is
// torchvision's: Resize(ResizeShorter) gives the shorter side
// ResizeShorter and the longer int(ResizeShorter·long/short); CenterCrop
// then starts at round((resized−crop)/2), Python's round (half to even).
// The two are fused: output pixel i of an axis covers the source interval
// [(off+i)·s, (off+i+1)·s) with s = source/resized and off the crop
// offset. Where the crop reaches past the resized picture (a non-square
// input wider than the resized side), edge pixels repeat instead of
// torchvision's zero padding.
func (p *Preprocessor) plan(sw, sh int) {
	rw, rh, offX, offY := p.in.W, p.in.H, 0, 0
	if p.spec.Resize == "resize-crop" {
		short, long := min(sw, sh), max(sw, sh)
		ns := p.spec.ResizeShorter
		nl := int(int64(ns) * int64(long) / int64(short))
		if sw <= sh {
			rw, rh = ns, nl
		} else {
			rw, rh = nl, ns
		}
		offX = int(math.RoundToEven(float64(rw-p.in.W) / 2))
		offY = int(math.RoundToEven(float64(rh-p.in.H) / 2))
	}
	aa := p.spec.ResizeFilter == infer.ResizeBilinearAntialias
	planAxis(&p.hz, sw, rw, offX, p.in.W, aa)
	planAxis(&p.vt, sh, rh, offY, p.in.H, aa)
	n := p.vt.hi - p.vt.lo
	if cap(p.rowUsed) < n {
		p.rowUsed = make([]bool, n)
	}
	p.rowUsed = p.rowUsed[:n]
	clear(p.rowUsed)
	for y := range p.in.H {
		for k := range p.vt.taps {
			if p.vt.w[y*p.vt.taps+k] != 0 {
				p.rowUsed[p.vt.start[y]+k-p.vt.lo] = true
			}
		}
	}
	p.srcW, p.srcH = sw, sh
}

// planAxis maps src source pixels, resized to resized and cropped from off,
// onto out output pixels: with antialias, PIL's bilinear (see
// antialiasTaps), else area averaging for a shrink of 2× or more and
// bilinear otherwise.
func planAxis(a *axisPlan, src, resized, off, out int, antialias bool) {
	scale := float64(src) / float64(resized)
	a.area = scale >= 2 && !antialias
	type tap struct {
		i int
		w float64
	}
	contrib := make([][]tap, out)
	taps := 1
	for i := range out {
		var t []tap
		if antialias {
			lo, ws := antialiasTaps(src, scale, off+i)
			for k, w := range ws {
				t = append(t, tap{lo + k, w})
			}
		} else if a.area {
			lo := min(max(float64(off+i)*scale, 0), float64(src))
			hi := min(max(float64(off+i+1)*scale, 0), float64(src))
			if hi-lo < 1e-9 { // entirely outside the picture: the nearest edge pixel
				t = append(t, tap{min(int(lo), src-1), 1})
			}
			for j := int(lo); float64(j) < hi && j < src; j++ {
				if w := min(hi, float64(j+1)) - max(lo, float64(j)); w > 1e-9 {
					t = append(t, tap{j, w / (hi - lo)})
				}
			}
		} else {
			c := min(max((float64(off+i)+0.5)*scale-0.5, 0), float64(src-1))
			j := int(c)
			f := c - float64(j)
			t = append(t, tap{j, 1 - f})
			if f > 0 && j+1 < src {
				t = append(t, tap{j + 1, f})
			}
		}
		if len(t) == 0 { // outside the picture (a crop past the resized edge): the nearest edge pixel
			t = append(t, tap{min(max(int(float64(off+i)*scale), 0), src-1), 1})
		}
		contrib[i] = t
		taps = max(taps, t[len(t)-1].i-t[0].i+1)
	}
	taps = min(taps, src)
	a.taps = taps
	a.start = make([]int, out)
	a.w = make([]int32, out*taps)
	a.lo, a.hi = src, 0
	for i, t := range contrib {
		start := min(t[0].i, src-taps)
		a.start[i] = start
		ws := a.w[i*taps : (i+1)*taps]
		// Round each weight to 2^-14 and give the rounding error to the
		// largest, so every output's weights sum to exactly 1: a flat
		// picture stays flat.
		sum, big := int32(0), 0
		for _, c := range t {
			ws[c.i-start] += int32(math.Round(c.w * (1 << weightBits)))
		}
		for k, w := range ws {
			sum += w
			if w > ws[big] {
				big = k
			}
		}
		ws[big] += 1<<weightBits - sum
		a.lo, a.hi = min(a.lo, start), max(a.hi, start+taps)
	}
}

// antialiasTaps returns the weights of resized pixel i under PIL's
// bilinear resize (Image.resize with BILINEAR, which torchvision's Resize
// uses on PIL images), for source pixels lo, lo+1, …: a triangle filter
// centred on the pixel's centre in the source, (i+0.5)·scale, whose
// support is widened from 1 to scale pixels when shrinking, so every
// source pixel contributes; weights normalised to sum to 1. An index
// entirely outside the picture gets none.
func antialiasTaps(src int, scale float64, i int) (lo int, ws []float64) {
	support := max(scale, 1)
	centre := (float64(i) + 0.5) * scale
	lo = max(int(centre-support+0.5), 0)
	hi := min(int(centre+support+0.5), src)
	var sum float64
	for j := lo; j < hi; j++ {
		w := max(1-math.Abs((float64(j)-centre+0.5)/support), 0)
		if w == 0 && len(ws) == 0 {
			lo = j + 1 // no zero taps in front
			continue
		}
		ws = append(ws, w)
		sum += w
	}
	for len(ws) > 0 && ws[len(ws)-1] == 0 {
		ws = ws[:len(ws)-1]
	}
	for k := range ws {
		ws[k] /= sum
	}
	return lo, ws
}
