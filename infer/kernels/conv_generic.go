package kernels

// The generic convolution: for each band of output pixels (a few whole
// rows, or a segment of one row), the input patch is laid out once as rows
// of taps (im2row: patch[t][j], t = (c·KH+ky)·KW+kx over the band's output
// pixels j, padding already substituted), then a
// GEMM multiplies the OIHW weights (which are [O][taps] as they stand) by
// it, four output channels at a time, and the epilogue requantizes each
// channel's row. The inner loop is a branch-free multiply-add over
// contiguous memory; a 1×1, stride-1, unpadded convolution skips the patch
// and reads the input planes directly.

const (
	// bandCols is the number of output pixels a band aims for: long enough
	// to amortise the per-tap loop overhead, short enough that four int32
	// accumulator rows stay in L1.
	bandCols = 256
	// patchBytes bounds the patch so it stays in L2 while every block of
	// output channels streams over it.
	patchBytes = 192 << 10
	// oBlock is the number of output channels computed together: each
	// patch value loaded feeds oBlock multiply-adds.
	oBlock = 4
	// minCols keeps the inner loop long enough to be worth its overhead
	// even when a single tap row is all patchBytes allows.
	minCols = 16
)

// Scratch is a convolution's working memory. One Scratch serves one
// goroutine; Reserve it for every layer once, then no kernel allocates.
type Scratch struct {
	patch []int8
	acc   []int32
	simd  simdScratch // the SIMD kernel's buffers (dispatch.go)
	wino  winoScratch // the Winograd path's (winograd_generic.go)
	w43   w43Scratch  // the F(4,3) path's (winograd43.go)
}

// Reserve grows s to what p needs.
func (s *Scratch) Reserve(p *Conv2dParams) {
	if useWino43(p) {
		s.w43.reserve(p)
		return
	}
	if useWinograd(p) {
		s.wino.reserve(p)
		return
	}
	rows, cols := bandOf(p)
	patch := 0
	if !direct(p) {
		patch = p.Taps() * rows * cols
	}
	if len(s.patch) < patch {
		s.patch = make([]int8, patch)
	}
	if len(s.acc) < oBlock*rows*cols {
		s.acc = make([]int32, oBlock*rows*cols)
	}
	s.simd.reserve(p)
}

// direct reports whether the input planes themselves are the patch rows.
func direct(p *Conv2dParams) bool {
	return p.KH == 1 && p.KW == 1 && p.Stride == 1 && p.Pad == 0
}

// bandOf returns a band's size in output rows and columns: several whole
// rows, or a segment of one row when a row's patch alone would overflow
// patchBytes. For the direct case it is a chunk of the output plane seen
// as one row.
func bandOf(p *Conv2dParams) (rows, cols int) {
	if direct(p) {
		return 1, min(bandCols, p.OH*p.OW)
	}
	// In int64: a hostile shape must not wrap on 32-bit ARM.
	rowBytes := int64(p.Taps()) * int64(p.OW)
	if rowBytes > patchBytes {
		return 1, min(max(patchBytes/p.Taps(), minCols), p.OW)
	}
	rows = min(max(bandCols/p.OW, 1), int(patchBytes/rowBytes), p.OH)
	return rows, p.OW
}

// Conv2dInt8 runs the convolution p on the CHW input x and writes the
// requantized int8 output (O×OH×OW) to y. p must pass Check(false).
func Conv2dInt8(p *Conv2dParams, x, y []int8, s *Scratch) {
	conv2d(p, x, y[:p.O*p.OH*p.OW], nil, s)
}

// Conv2dLogits is Conv2dInt8 with float32 logits output. p must pass
// Check(true).
func Conv2dLogits(p *Conv2dParams, x []int8, y []float32, s *Scratch) {
	conv2d(p, x, nil, y[:p.O*p.OH*p.OW], s)
}

func conv2d(p *Conv2dParams, x, y8 []int8, yf []float32, s *Scratch) {
	s.Reserve(p)
	hw := p.H * p.W
	x = x[:p.C*hw]
	g := newGemm(p, y8, yf)
	if useWino43(p) {
		convWino43(p, x, &g, &s.w43)
		return
	}
	if useWinograd(p) {
		convWinograd(p, x, &g, &s.wino)
		return
	}
	g.simd = s.simd.prepare(p, &g)
	if g.simd != nil && simdGemm.conv != nil && simdGemm.conv(p, x, g.simd) {
		return
	}
	rows, cols := bandOf(p)
	yBegin, yEnd := 0, p.OH
	if p.RowsEnd > 0 {
		yBegin, yEnd = p.RowsBegin, p.RowsEnd
	}
	if direct(p) {
		for j0 := yBegin * p.OW; j0 < yEnd*p.OW; j0 += cols {
			g.run(x[j0:], hw, min(cols, yEnd*p.OW-j0), j0, s.acc)
		}
		return
	}
	for oy0 := yBegin; oy0 < yEnd; oy0 += rows {
		r := min(rows, yEnd-oy0)
		for ox0 := 0; ox0 < p.OW; ox0 += cols {
			// Either whole rows (cols = OW) or part of one row: the
			// band's outputs are contiguous in the output plane.
			c := min(cols, p.OW-ox0)
			patch := s.patch[:g.taps*r*c]
			im2row(p, x, oy0, r, ox0, c, patch)
			g.run(patch, r*c, r*c, oy0*p.OW+ox0, s.acc)
		}
	}
}

// newGemm is p's gemm writing to y8 or yf.
func newGemm(p *Conv2dParams, y8 []int8, yf []float32) gemm {
	return gemm{w: p.Weight, bias: p.Bias, taps: p.Taps(), plane: p.OH * p.OW,
		mult: p.Mult, shift: p.Shift, zero: p.OutZero, relu: p.ReLU,
		inScale: p.InScale, wScale: p.WScale, y8: y8, yf: yf}
}

// im2row writes patch[t·n + rr·cols + k] = x at tap t of output pixel
// (oy0+rr, ox0+k), with n = r·cols and PadValue outside the image.
func im2row(p *Conv2dParams, x []int8, oy0, r, ox0, cols int, patch []int8) {
	n := r * cols
	t := 0
	for c := 0; c < p.C; c++ {
		pv := p.PadValue[c]
		xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
		for ky := 0; ky < p.KH; ky++ {
			for kx := 0; kx < p.KW; kx++ {
				// The band's columns whose tap lands inside the image,
				// relative to ox0.
				lo, hi := validCols(p, kx)
				lo = min(max(lo-ox0, 0), cols)
				hi = min(max(hi-ox0, lo), cols)
				off := ox0*p.Stride + kx - p.Pad // input column of band column 0
				for rr := 0; rr < r; rr++ {
					dst := patch[t*n+rr*cols : t*n+(rr+1)*cols]
					iy := (oy0+rr)*p.Stride - p.Pad + ky
					if iy < 0 || iy >= p.H {
						fill(dst, pv)
						continue
					}
					xr := xc[iy*p.W : (iy+1)*p.W]
					fill(dst[:lo], pv)
					fill(dst[hi:], pv)
					if p.Stride == 1 {
						copy(dst[lo:hi], xr[lo+off:hi+off])
						continue
					}
					for k := lo; k < hi; k++ {
						dst[k] = xr[k*p.Stride+off]
					}
				}
				t++
			}
		}
	}
}

// validCols returns the output columns [lo, hi) whose tap kx lands inside
// the image: 0 ≤ ox·Stride − Pad + kx < W.
func validCols(p *Conv2dParams, kx int) (lo, hi int) {
	if d := p.Pad - kx; d > 0 {
		lo = (d + p.Stride - 1) / p.Stride
	}
	if last := p.W - 1 + p.Pad - kx; last >= 0 {
		hi = last/p.Stride + 1
	}
	hi = min(hi, p.OW)
	lo = min(lo, hi)
	return lo, hi
}

func fill(d []int8, v int8) {
	for i := range d {
		d[i] = v
	}
}

// gemm is one layer's weights and output form, applied band by band.
type gemm struct {
	w     []int8 // [O][taps]
	bias  []int32
	taps  int
	plane int // output pixels per channel

	mult, shift []int32
	zero        int32
	relu        bool

	inScale float32
	wScale  []float32

	y8 []int8    // int8 output, or
	yf []float32 // float32 logits

	simd *simdScratch // non-nil: run bands on simdGemm (dispatch.go)
}

// run computes the n outputs col0… of every channel from the tap rows
// src[t·ld : t·ld+n].
func (g *gemm) run(src []int8, ld, n, col0 int, acc []int32) {
	if g.simd != nil {
		simdGemm.band(g.simd, src, ld, n, col0)
		return
	}
	O := len(g.bias)
	T := g.taps
	o := 0
	for ; o+oBlock <= O; o += oBlock {
		a0 := acc[0*n : 1*n]
		a1 := acc[1*n : 2*n]
		a2 := acc[2*n : 3*n]
		a3 := acc[3*n : 4*n]
		fill32(a0, g.bias[o])
		fill32(a1, g.bias[o+1])
		fill32(a2, g.bias[o+2])
		fill32(a3, g.bias[o+3])
		w0 := g.w[(o+0)*T : (o+1)*T]
		w1 := g.w[(o+1)*T : (o+2)*T]
		w2 := g.w[(o+2)*T : (o+3)*T]
		w3 := g.w[(o+3)*T : (o+4)*T]
		for t := range w0 {
			mac4(a0, a1, a2, a3, src[t*ld:t*ld+n], int32(w0[t]), int32(w1[t]), int32(w2[t]), int32(w3[t]))
		}
		g.out(o, a0, col0)
		g.out(o+1, a1, col0)
		g.out(o+2, a2, col0)
		g.out(o+3, a3, col0)
	}
	for ; o < O; o++ {
		a := acc[:n]
		fill32(a, g.bias[o])
		for t, w := range g.w[o*T : (o+1)*T] {
			mac1(a, src[t*ld:t*ld+n], int32(w))
		}
		g.out(o, a, col0)
	}
}

// mac4 adds k_i·x[j] to a_i[j] for four output channels.
func mac4(a0, a1, a2, a3 []int32, x []int8, k0, k1, k2, k3 int32) {
	a0 = a0[:len(x)]
	a1 = a1[:len(x)]
	a2 = a2[:len(x)]
	a3 = a3[:len(x)]
	for j, v := range x {
		xv := int32(v)
		a0[j] += k0 * xv
		a1[j] += k1 * xv
		a2[j] += k2 * xv
		a3[j] += k3 * xv
	}
}

func mac1(a []int32, x []int8, k int32) {
	a = a[:len(x)]
	for j, v := range x {
		a[j] += k * int32(v)
	}
}

func fill32(d []int32, v int32) {
	for i := range d {
		d[i] = v
	}
}

// out writes output channel o's accumulators for pixels col0… .
func (g *gemm) out(o int, acc []int32, col0 int) {
	base := o*g.plane + col0
	if g.yf != nil {
		logitsRow(g.yf[base:base+len(acc)], acc, LogitScale(g.inScale, g.wScale[o]))
		return
	}
	if simdGemm != nil && simdGemm.requant != nil {
		simdGemm.requant(g.y8[base:base+len(acc)], acc, 0, g.mult[o], g.shift[o], g.zero, g.relu)
		return
	}
	requantRow(g.y8[base:base+len(acc)], acc, g.mult[o], g.shift[o], g.zero, g.relu)
}

// requantRow is RequantizeOut over a row, with the per-channel constants
// hoisted; the arithmetic is Requantize's, step for step.
func requantRow(dst []int8, acc []int32, mult, shift, zero int32, relu bool) {
	lo := reluFloor(zero, relu)
	dst = dst[:len(acc)]
	if shift > 0 {
		for j, a := range acc {
			x := int64(a) << shift
			x = min(max(x, -1<<31), 1<<31-1)
			dst[j] = clampOut(zero+SRDHM(int32(x), mult), lo)
		}
		return
	}
	for j, a := range acc {
		dst[j] = clampOut(zero+RoundingDivideByPOT(SRDHM(a, mult), -shift), lo)
	}
}

// logitsRow writes float32(acc)·scale.
func logitsRow(dst []float32, acc []int32, scale float32) {
	dst = dst[:len(acc)]
	for j, a := range acc {
		dst[j] = float32(a) * scale
	}
}
