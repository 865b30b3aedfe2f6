package kernels

// Run-time dispatch to SIMD kernels. An architecture's init (for example
// gemm_amd64.go) sets the variables below when the running CPU has the
// instructions its assembly needs; left nil, every kernel runs the generic
// Go code. The generic code stays the reference: a SIMD kernel must give
// the same bits, which the tests check by clearing these variables and
// comparing.

// simdKernel is a SIMD replacement for gemm.run on whole bands, with the
// weights packed into its own layout: once at load (PrepareConv), or on
// every convolution call without that.
type simdKernel struct {
	name string
	// reserve grows s for a layer of O outputs, T taps and bands of at
	// most n output pixels, so the steady state allocates nothing; all
	// but the packed weights (simdScratch.reserve).
	reserve func(s *simdScratch, O, T, n int)
	// packLen is the int16 length of the packed [O][T] weights.
	packLen func(O, T int) int
	// pack lays out the [O][T] weights w in dst (packLen long) for band.
	// It depends only on w, and dst's address (alignment).
	pack func(dst []int16, w []int8, O, T int)
	// band is gemm.run of s.g, with s.g's weights packed in s.wp.
	band func(s *simdScratch, src []int8, ld, n, col0 int)
	// winograd sends 3×3 stride-1 convolutions that fit to the Winograd
	// path (winograd_generic.go) instead of band.
	winograd bool
	// winograd43 sends 3×3 stride-1 convolutions that fit to the
	// F(4,3) path (winograd43.go).
	winograd43 bool
	// requant, when set, is the int8 epilogue of the paths that go
	// through gemm.out (Winograd): dst[j] = RequantizeOut(acc[j]+bias,
	// mult, shift, zero, relu), bit for bit.
	requant func(dst []int8, acc []int32, bias, mult, shift, zero int32, relu bool)
	// conv, when set, may run a whole convolution itself (after pack):
	// it reports whether it did. reserveConv grows s for the
	// convolutions conv takes.
	conv        func(p *Conv2dParams, x []int8, s *simdScratch) bool
	reserveConv func(s *simdScratch, p *Conv2dParams)
}

// simdGemm is the convolution kernel in use, nil for the generic one.
var simdGemm *simdKernel

// simdDot4 replaces dot4 in Linear when set; same contract (any summation
// order gives the same wrapped int32 bits).
var simdDot4 func(x, w0, w1, w2, w3 []int8) (s0, s1, s2, s3 int32)

// simdScratch is the SIMD kernels' share of a Scratch: packed weights of
// the current convolution, the packed band and its accumulators.
type simdScratch struct {
	// g is a copy of the current convolution's gemm: the kernel is called
	// through a function variable, so a pointer to the caller's local
	// would move it to the heap (an allocation per call). It keeps the
	// last layer's slices reachable until the next convolution.
	g gemm
	// wp is the current convolution's packed weights: p.Prepared's, or
	// wpack's when the call packs them. Read-only: Prepared is shared.
	wp []int16
	// wpack holds the weights packed by the call (only without
	// Prepared: then it grows to the layer's packed size), and the
	// SMULL kernel's per-call row copies (wbuf, gemm_arm64.go).
	wpack []int16
	ppack []int16
	acc   []int32
	// strip and offs serve conv: padded input rows and tap offsets.
	strip []int8
	offs  []int
}

// kernelName names the convolution kernel in use ("generic" without SIMD).
func kernelName() string {
	if simdGemm == nil {
		return "generic"
	}
	return simdGemm.name
}

// reserve grows the SIMD buffers for p when a SIMD kernel is in use.
func (s *simdScratch) reserve(p *Conv2dParams) {
	if simdGemm == nil {
		return
	}
	rows, cols := bandOf(p)
	simdGemm.reserve(s, p.O, p.Taps(), rows*cols)
	if preparedPack(p) == nil {
		s.wpack = grow(s.wpack, simdGemm.packLen(p.O, p.Taps()))
	}
	if simdGemm.reserveConv != nil {
		simdGemm.reserveConv(s, p)
	}
}

// prepare sets up p's packed weights for the SIMD kernel, p.Prepared's
// or packed now (weights may change between calls), and returns the
// scratch that g.run must hand to it, or nil for the generic path.
func (s *simdScratch) prepare(p *Conv2dParams, g *gemm) *simdScratch {
	if simdGemm == nil {
		return nil
	}
	s.g = *g
	if s.wp = preparedPack(p); s.wp != nil {
		return s
	}
	O, T := len(g.bias), g.taps
	n := simdGemm.packLen(O, T)
	s.wpack = grow(s.wpack, n)
	s.wp = s.wpack[:n]
	simdGemm.pack(s.wp, g.w, O, T)
	return s
}

// fillStrip, for the SIMD kernels' strip paths (convStripNEON,
// convStripVNNI), writes input rows oy0−Pad… (h of them) of every channel to
// strip[c·sh·wp + py·wp …], PadValue outside the image.
func fillStrip(p *Conv2dParams, x []int8, oy0, h, sh, wp int, strip []int8) {
	hw := p.H * p.W
	for c := range p.C {
		pv := p.PadValue[c]
		xc := x[c*hw : (c+1)*hw]
		for py := range h {
			dst := strip[c*sh*wp+py*wp:][:wp]
			iy := oy0 - p.Pad + py
			if iy < 0 || iy >= p.H {
				fill(dst, pv)
				continue
			}
			fill(dst[:p.Pad], pv)
			copy(dst[p.Pad:p.Pad+p.W], xc[iy*p.W:(iy+1)*p.W])
			fill(dst[p.Pad+p.W:], pv)
		}
	}
}

// grow returns s with length at least n, reallocating only when needed.
func grow[T any](s []T, n int) []T {
	if len(s) < n {
		return make([]T, n)
	}
	return s
}

// stripFits reports whether the strip paths (convStripNEON,
// convStripVNNI) take p: stride 1, not a direct 1×1, bands of whole
// output rows.
func stripFits(p *Conv2dParams) bool {
	_, cols := bandOf(p)
	return p.Stride == 1 && !direct(p) && cols == p.OW
}
