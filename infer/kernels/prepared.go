package kernels

// PreparedConv is a convolution's weights in the layout of the kernel that
// runs it, made once (PrepareConv) instead of on every call: the Winograd
// path's U, or a SIMD kernel's packed weights (AVX2's int16 tap pairs,
// VNNI's byte groups and corrections, NEON SDOT's 16-tap chunks, NEON
// SMULL's "has −128" flag). It is read-only once made, so the threads of
// a Session share one.
type PreparedConv struct {
	w          []int8      // the weights it was made from, to recognise them
	c, o, taps int         // and the shape they were packed for
	kernel     *simdKernel // the SIMD kernel wpack is laid out for
	u          []int16     // Winograd U, or nil
	u43        []int16     // Winograd F(4,3) U, or nil
	w43c       []int8      // or its weights permuted (winograd43.go)
	w43nch     int         // and the input-channel chunks they were made for
	wpack      []int16     // kernel's packed weights (kernel.pack), or nil
}

// PrepareConv returns p's weights prepared for the kernel this CPU runs p
// on, or nil when that kernel uses the weights as they are (the generic
// one). Storing it in p.Prepared saves the packing on every call; a
// Prepared made from another Weight slice, shape or kernel is ignored (the
// call packs as without it), so it must be prepared again whenever
// p.Weight changes. p must pass Check.
func PrepareConv(p *Conv2dParams) *PreparedConv {
	switch {
	case useWino43(p):
		return prepareWino43(p)
	case useWinograd(p):
		return prepareWinograd(p)
	case simdGemm != nil:
		return prepareSIMD(p, simdGemm)
	}
	return nil
}

// prepareSIMD packs p's weights for k whatever the CPU (packing is Go and
// the same assembly as per call; only k's band needs k's instructions).
func prepareSIMD(p *Conv2dParams, k *simdKernel) *PreparedConv {
	pc := newPrepared(p)
	pc.kernel = k
	pc.wpack = make([]int16, k.packLen(p.O, p.Taps()))
	k.pack(pc.wpack, p.Weight, p.O, p.Taps())
	return pc
}

func newPrepared(p *Conv2dParams) *PreparedConv {
	return &PreparedConv{w: p.Weight, c: p.C, o: p.O, taps: p.Taps()}
}

// madeFrom reports whether pc was made from p's Weight slice (the same
// memory, not equal values: comparing values would cost as much as
// packing) and shape.
func (pc *PreparedConv) madeFrom(p *Conv2dParams) bool {
	return pc != nil && pc.c == p.C && pc.o == p.O && pc.taps == p.Taps() &&
		len(pc.w) == len(p.Weight) && len(pc.w) > 0 && &pc.w[0] == &p.Weight[0]
}

// preparedPack returns p's packed weights for the kernel in use when
// p.Prepared holds them, else nil.
func preparedPack(p *Conv2dParams) []int16 {
	pc := p.Prepared
	if simdGemm == nil || pc == nil || pc.kernel != simdGemm || pc.wpack == nil || !pc.madeFrom(p) {
		return nil
	}
	return pc.wpack
}

// Bytes is the memory pc holds beyond the weights it was made from.
func (pc *PreparedConv) Bytes() int64 {
	if pc == nil {
		return 0
	}
	return 2*int64(len(pc.u)+len(pc.u43)+len(pc.wpack)) + int64(len(pc.w43c))
}
