//go:build gc && !purego

package kernels

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The AVX2 convolution: a band's patch and the layer's weights are packed
// into int16 tap pairs, so that one VPMADDWD multiplies two taps of eight
// pixels by the same two taps of one output channel and sums the pair in
// int32. The micro-kernel (gemm4x16AVX2) holds a tile of 4 output channels
// × 16 pixels in eight YMM accumulators over a chunk of taps; per tap pair
// it loads two YMM of patch, broadcasts four weight pairs and issues eight
// VPMADDWD. Tails are padded rather than special-cased: taps up to a
// multiple of 16 with zero weights and zero patch values (adding 0·0),
// pixels up to a multiple of 16 (their sums are computed and dropped; a
// last block of at most 8 real pixels runs the half kernel gemm4x8AVX2),
// channels up to a multiple of 4 (zero weights, rows never written out).
// The weights are packed once at load (PrepareConv; int16, so twice the
// int8 weights' bytes: 29 MB for VGG16), or on every convolution call
// without that (about 1 ms of a VGG16 inference here, ~20 G weights/s);
// the patch is packed once per band.
//
// Only int32 sums come from the GEMM assembly, and those are exact. The
// int8 requantization is requantAVX2, an exact vector transcription of
// requantRow for the usual case (right shift, multiplier ≠ MinInt32);
// logits and every other case use the generic epilogue (gemm.out).
//
// Packed layouts (int16):
//
//	weights: [O/4 blocks][T/16 blocks][4 channels][16 taps]
//	patch:   [n/16 pixel blocks][T/16 blocks][8 tap pairs][16 pixels][2]
const (
	tileO     = 4                // output channels per micro-kernel tile
	tileN     = 16               // output pixels per tile
	tapBlock  = 16               // taps per unrolled kernel iteration
	wBlockLen = tileO * tapBlock // int16 per weight block
	pBlockLen = tapBlock * tileN // int16 per patch block
	pairLen   = 2 * tileN        // int16 per tap pair of a patch block
	// kChunk is the tap blocks one kernel call covers: 16 blocks (256
	// taps) of a pixel block's patch are 8 KiB, at home in L1, and all
	// 512 channels' weights for them 256 KiB, in L2.
	kChunk = 16
)

// The assembly hard-codes these sizes (128- and 512-byte blocks): a
// change here must not compile without changing it.
var (
	_ [wBlockLen - 64]struct{}
	_ [64 - wBlockLen]struct{}
	_ [pBlockLen - 256]struct{}
	_ [256 - pBlockLen]struct{}
)

var avx2Kernel = simdKernel{name: "avx2", reserve: reserveAVX2, packLen: packLenAVX2, pack: packWeights, band: bandAVX2,
	winograd43: true, requant: requantRowAVX2}

func init() {
	// GODEBUG=cpu.avx2=off clears HasAVX2, which keeps the generic kernels;
	// GODEBUG=cpu.avx512vnni=off (or avx512f, bw, vl) keeps the AVX2 one.
	if cpu.X86.HasAVX2 {
		simdGemm = &avx2Kernel
		simdDot4 = dot4Fast
		if hasVNNI() {
			simdGemm = &vnniKernel
		}
	}
}

func reserveAVX2(s *simdScratch, O, T, n int) {
	kb, nb := ceilDiv(T, tapBlock), ceilDiv(n, tileN)
	s.ppack = grow(s.ppack, nb*kb*pBlockLen)
	s.acc = grow(s.acc, ceilDiv(O, tileO)*tileO*nb*tileN)
}

func packLenAVX2(O, T int) int { return ceilDiv(O, tileO) * ceilDiv(T, tapBlock) * wBlockLen }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// packWeights lays out the [O][T] weights w as weight blocks in wpack.
func packWeights(wpack []int16, w []int8, O, T int) {
	kb := ceilDiv(T, tapBlock)
	nob := ceilDiv(O, tileO)
	full := T / tapBlock
	for o := range nob * tileO {
		// Channel o's taps go to block column o%4 of channel block o/4.
		base := o/tileO*kb*wBlockLen + o%tileO*tapBlock
		dst := wpack[base : base+(kb-1)*wBlockLen+tapBlock]
		if o >= O { // padding channel: zero weights
			for b := range kb {
				clear(dst[b*wBlockLen : b*wBlockLen+tapBlock])
			}
			continue
		}
		row := w[o*T : (o+1)*T]
		if full > 0 {
			packWeightsAVX2(&dst[0], &row[0], full)
		}
		if full < kb { // the last, partial block, zero-padded
			d := dst[full*wBlockLen : full*wBlockLen+tapBlock]
			for i := range d {
				d[i] = 0
				if t := full*tapBlock + i; t < T {
					d[i] = int16(row[t])
				}
			}
		}
	}
}

// bandAVX2 is gemm.run of s.g on the AVX2 micro-kernel, with the weights
// packed in s.wp by packWeights.
//
// Loop order: taps in chunks of kChunk blocks, then pixel blocks, then
// channel blocks. A pixel block's chunk of patch (kChunk·512 bytes) stays
// in L1 while every channel block's weights for the chunk stream past it
// from L2; the accumulators of the whole band (O × n int32) live in
// memory between chunks, loaded and stored once per kernel call.
func bandAVX2(s *simdScratch, src []int8, ld, n, col0 int) {
	g := &s.g
	T, O := g.taps, len(g.bias)
	kb, nb, nob := ceilDiv(T, tapBlock), ceilDiv(n, tileN), ceilDiv(O, tileO)
	s.ppack = grow(s.ppack, nb*kb*pBlockLen)
	ldacc := nb * tileN
	s.acc = grow(s.acc, nob*tileO*ldacc)
	pp := s.ppack[:nb*kb*pBlockLen]
	for jb := range nb {
		packPatch(pp[jb*kb*pBlockLen:(jb+1)*kb*pBlockLen], src, ld, jb*tileN, min(tileN, n-jb*tileN), T)
	}
	acc := s.acc[:nob*tileO*ldacc]
	// Padding channels' rows start from whatever is there: they are
	// computed and never read.
	for o := range O {
		fill32(acc[o*ldacc:(o+1)*ldacc], g.bias[o])
	}
	wp := s.wp[:nob*kb*wBlockLen]
	// A last pixel block with at most 8 real pixels runs the half kernel.
	half := n%tileN != 0 && n%tileN <= tileN/2
	for k0 := 0; k0 < kb; k0 += kChunk {
		kn := min(kChunk, kb-k0)
		for jb := range nb {
			p := &pp[(jb*kb+k0)*pBlockLen]
			kernel := gemm4x16AVX2
			if half && jb == nb-1 {
				kernel = gemm4x8AVX2
			}
			for ob := range nob {
				kernel(&wp[(ob*kb+k0)*wBlockLen], p, kn, &acc[ob*tileO*ldacc+jb*tileN], ldacc)
			}
		}
	}
	for o := range O {
		outAVX2(g, o, acc[o*ldacc:o*ldacc+n], col0)
	}
}

// outAVX2 is g.out with int8 requantization in assembly where it applies
// (a right shift and a multiplier other than MinInt32, which is all of a
// usual model); logits and the rest go to the generic code.
func outAVX2(g *gemm, o int, acc []int32, col0 int) {
	n8 := len(acc) &^ 7
	mult, shift := g.mult, g.shift
	if g.yf != nil || n8 == 0 || shift[o] > 0 || mult[o] == math.MinInt32 {
		g.out(o, acc, col0)
		return
	}
	e := -shift[o]
	dst := g.y8[o*g.plane+col0:][:len(acc)]
	requantAVX2(&dst[0], &acc[0], n8, mult[o], e, int32(1)<<e-1, g.zero, reluFloor(g.zero, g.relu))
	requantRow(dst[n8:], acc[n8:], mult[o], shift[o], g.zero, g.relu)
}

// requantRowAVX2 is the simdKernel.requant of the AVX2 kernels:
// RequantizeOut(acc[j]+bias, …) with the usual case (no bias, a right
// shift, a multiplier other than MinInt32) in assembly.
func requantRowAVX2(dst []int8, acc []int32, bias, mult, shift, zero int32, relu bool) {
	n8 := len(acc) &^ 7
	if bias != 0 || n8 == 0 || shift > 0 || mult == math.MinInt32 {
		for j, a := range acc {
			dst[j] = RequantizeOut(a+bias, mult, shift, zero, relu)
		}
		return
	}
	e := -shift
	dst = dst[:len(acc)]
	requantAVX2(&dst[0], &acc[0], n8, mult, e, int32(1)<<e-1, zero, reluFloor(zero, relu))
	requantRow(dst[n8:], acc[n8:], mult, shift, zero, relu)
}

// packPatch packs the w ≤ 16 pixels j0… of the tap rows src[t·ld+j] into
// one pixel block dst (kb tap blocks), zero beyond T taps and w pixels.
func packPatch(dst []int16, src []int8, ld, j0, w, T int) {
	pairs := 0
	if w == tileN && T >= 2 {
		pairs = T / 2
		// The assembly reads rows 0…2·pairs−1, 16 bytes each.
		_ = src[(2*pairs-1)*ld+j0+tileN-1]
		_ = dst[pairs*pairLen-1]
		packPatchAVX2(&dst[0], &src[j0], ld, pairs)
	}
	// The rest in Go: the odd last tap, the padding to a whole block, or
	// every tap of a short pixel block.
	for kp := pairs; kp < len(dst)/pairLen; kp++ {
		d := dst[kp*pairLen : (kp+1)*pairLen]
		clear(d)
		for t := 2 * kp; t < min(2*kp+2, T); t++ {
			row := src[t*ld+j0 : t*ld+j0+w]
			for j, v := range row {
				d[2*j+t-2*kp] = int16(v)
			}
		}
	}
}

// dot4Fast is dot4 with the multiples of 16 in assembly.
func dot4Fast(x, w0, w1, w2, w3 []int8) (s0, s1, s2, s3 int32) {
	n := len(x) &^ 15
	if n > 0 {
		// The assembly reads n values of each.
		_, _, _, _, _ = x[n-1], w0[n-1], w1[n-1], w2[n-1], w3[n-1]
		s0, s1, s2, s3 = dot4AVX2(&x[0], &w0[0], &w1[0], &w2[0], &w3[0], n)
	}
	t0, t1, t2, t3 := dot4(x[n:], w0[n:], w1[n:], w2[n:], w3[n:])
	return s0 + t0, s1 + t1, s2 + t2, s3 + t3
}

//go:noescape
func gemm4x16AVX2(w, p *int16, kb int, acc *int32, ldacc int)

//go:noescape
func gemm4x8AVX2(w, p *int16, kb int, acc *int32, ldacc int)

//go:noescape
func packPatchAVX2(dst *int16, src *int8, ld, npairs int)

//go:noescape
func packWeightsAVX2(dst *int16, w *int8, nblocks int)

//go:noescape
func requantAVX2(dst *int8, acc *int32, n int, mult, e, mask, zero, lo int32)

//go:noescape
func dot4AVX2(x, w0, w1, w2, w3 *int8, n int) (s0, s1, s2, s3 int32)
