//go:build gc && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The AVX-512 VNNI convolution. VPDPBUSD multiplies four unsigned bytes by
// four signed bytes and adds the four products to an int32 lane, wrapping
// (no saturation, unlike VPDPBUSDS and VPMADDUBSW). Our activations are
// signed, so the patch is packed as the unsigned x+128 (x XOR 0x80) and the
// accumulators start from Bias[o] − 128·Σ_t w[o][t] (computed once per
// pack, exact in int32): Σ w·(x+128) − 128·Σ w = Σ w·x, and all of it is
// arithmetic modulo 2^32 like the generic kernel, so the int32 sums equal
// the generic ones bit for bit.
//
// Taps are taken in groups of four (one int32 lane's worth). The
// micro-kernel (gemm8x32VNNI) holds a tile of 8 output channels × 32 pixels
// in sixteen ZMM accumulators; per tap group it loads two ZMM of patch (16
// pixels × 4 taps each), broadcasts each channel's four weights
// (VPBROADCASTD) and issues sixteen VPDPBUSD. A band's last, odd pixel
// block runs gemm8x16VNNI. Tails are padded: taps up to a multiple of 4
// with zero weights (the patch there holds x = 0, any value would do),
// pixels up to a multiple of 16 (computed and dropped), channels up to a
// multiple of 8 (zero weights, rows never written out).
//
// Packed layouts (bytes; both 64-byte aligned in their buffers, which are
// the AVX2 kernel's []int16 seen as bytes: wpack is Prepared's or the
// scratch's):
//
//	wpack: [O/8 × 8] int32 corrections 128·Σw, then
//	       [O/8 blocks][T/4 groups][8 channels][4 taps] int8
//	ppack: [n/16 pixel blocks][T/4 groups][16 pixels][4 taps] uint8 (x+128)
//
// The epilogue is the AVX2 kernel's (outAVX2): AVX-512 implies AVX2.
//
// Go's assembler encodes VPDPBUSD as EVEX (AVX512_VNNI, ZMM here), never
// as the VEX AVX-VNNI form, so the kernel needs AVX512VNNI (and F, BW, VL),
// not AVX-VNNI.
const (
	vnniTileO  = 8                     // output channels per tile
	vnniBlockN = 16                    // pixels per pixel block (one ZMM of int32)
	vnniGroup  = 4                     // taps per group (one int32 lane)
	vnniWGroup = vnniTileO * vnniGroup // weight bytes per group of a channel block
	vnniPGroup = vnniBlockN * vnniGroup
	// vnniChunk is the tap groups one kernel call covers: 64 groups (256
	// taps) of two pixel blocks' patch are 8 KiB, in L1; 512 channels'
	// weights for them 128 KiB, in L2.
	vnniChunk = 64
)

// The assembly hard-codes 32-byte weight groups and 64-byte patch groups.
var (
	_ [vnniWGroup - 32]struct{}
	_ [32 - vnniWGroup]struct{}
	_ [vnniPGroup - 64]struct{}
	_ [64 - vnniPGroup]struct{}
)

var vnniKernel = simdKernel{name: "avx512vnni", reserve: reserveVNNI, packLen: packLenVNNI, pack: packWeightsVNNI, band: bandVNNI,
	conv: convStripVNNI, reserveConv: reserveStripVNNI}

// vnniSizes returns the byte sizes of the correction header and the packed
// weights, and of the packed patch for n pixels.
func vnniSizes(O, T, n int) (corr, wbytes, pbytes int) {
	kg, nob := ceilDiv(T, vnniGroup), ceilDiv(O, vnniTileO)
	return nob * vnniTileO * 4, nob * kg * vnniWGroup, ceilDiv(n, vnniBlockN) * kg * vnniPGroup
}

func reserveVNNI(s *simdScratch, O, T, n int) {
	_, _, pb := vnniSizes(O, T, n)
	s.ppack = grow(s.ppack, ceilDiv(pb+64, 2))
	nob := ceilDiv(O, vnniTileO)
	s.acc = grow(s.acc, nob*vnniTileO*(ceilDiv(n, vnniBlockN)*vnniBlockN+1))
}

// packLenVNNI is the int16 length of the packed weights: the corrections
// and the weights, and room to align them to 64 bytes.
func packLenVNNI(O, T int) int {
	corr, wb, _ := vnniSizes(O, T, 0)
	return ceilDiv(corr+wb+64, 2)
}

// bytes64 returns the first n bytes of s from its first 64-byte aligned
// byte; s must hold n+64 bytes. The offset depends only on s's address,
// so pack and band agree as long as s is not reallocated in between.
func bytes64(s []int16, n int) []byte {
	_ = s[ceilDiv(n+64, 2)-1]
	p := unsafe.Pointer(unsafe.SliceData(s))
	off := (64 - int(uintptr(p)&63)) & 63
	return unsafe.Slice((*byte)(unsafe.Add(p, off)), n)
}

// vnniWeights returns the correction header and the packed weights in
// wpack.
func vnniWeights(wpack []int16, O, T int) (corr []int32, wp []byte) {
	cb, wb, _ := vnniSizes(O, T, 0)
	b := bytes64(wpack, cb+wb)
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), cb/4), b[cb:]
}

// packWeightsVNNI lays out the [O][T] weights w in wpack (packLenVNNI
// long) and computes the corrections 128·Σ_t w[o][t].
func packWeightsVNNI(wpack []int16, w []int8, O, T int) {
	kg, nob := ceilDiv(T, vnniGroup), ceilDiv(O, vnniTileO)
	corr, wp := vnniWeights(wpack, O, T)
	full := T / vnniGroup
	for o := range nob * vnniTileO {
		// Channel o's groups go to column o%8 of channel block o/8.
		base := o/vnniTileO*kg*vnniWGroup + o%vnniTileO*vnniGroup
		dst := wp[base : base+(kg-1)*vnniWGroup+vnniGroup]
		if o >= O { // padding channel: zero weights
			for g := range kg {
				*(*uint32)(unsafe.Pointer(&dst[g*vnniWGroup])) = 0
			}
			continue
		}
		row := w[o*T : (o+1)*T]
		if full > 0 {
			packWeightsVNNIAsm(&dst[0], &row[0], full)
		}
		if full < kg { // the last, partial group, zero-padded
			var q [4]int8
			copy(q[:], row[full*vnniGroup:])
			*(*[4]int8)(unsafe.Pointer(&dst[full*vnniWGroup])) = q
		}
	}
	for ob := range nob {
		sumWeightsVNNI(&corr[ob*vnniTileO], &wp[ob*kg*vnniWGroup], kg)
	}
}

// bandVNNI is gemm.run of s.g on the VNNI micro-kernels, with the weights
// packed in s.wp by packWeightsVNNI: pack the band's patch, multiply,
// requantize.
func bandVNNI(s *simdScratch, src []int8, ld, n, col0 int) {
	g := &s.g
	T, O := g.taps, len(g.bias)
	kg, nb := ceilDiv(T, vnniGroup), ceilDiv(n, vnniBlockN)
	_, _, pbytes := vnniSizes(O, T, n)
	s.ppack = grow(s.ppack, ceilDiv(pbytes+64, 2))
	pp := bytes64(s.ppack, pbytes)
	blk := kg * vnniPGroup // bytes per pixel block
	for jb := range nb {
		packPatchVNNI(pp[jb*blk:(jb+1)*blk], src, ld, jb*vnniBlockN, min(vnniBlockN, n-jb*vnniBlockN), T)
	}
	acc, ldacc := gemmVNNI(s, pp, nb)
	for o := range O {
		outAVX2(g, o, acc[o*ldacc:o*ldacc+n], col0)
	}
}

// gemmVNNI multiplies s.g's packed weights by the nb packed pixel blocks
// pp and returns the int32 sums, channel o's pixel j at acc[o·ldacc+j].
// The loop order is bandAVX2's: tap chunks, then pairs of pixel blocks,
// then channel blocks.
func gemmVNNI(s *simdScratch, pp []byte, nb int) (acc []int32, ldacc int) {
	g := &s.g
	T, O := g.taps, len(g.bias)
	kg, nob := ceilDiv(T, vnniGroup), ceilDiv(O, vnniTileO)
	corr, wp := vnniWeights(s.wp, O, T)
	blk := kg * vnniPGroup
	_ = pp[nb*blk-1]
	ldacc = nb * vnniBlockN
	s.acc = grow(s.acc, nob*vnniTileO*(ldacc+1))
	acc = s.acc[:nob*vnniTileO*ldacc]
	// The accumulators' starting values, Bias − 128·Σw, which the kernels
	// broadcast on the first chunk of taps; padding channels start from 0.
	init := s.acc[nob*vnniTileO*ldacc : nob*vnniTileO*(ldacc+1)]
	for o := range init {
		init[o] = 0
		if o < O {
			init[o] = g.bias[o] - corr[o]
		}
	}
	for k0 := 0; k0 < kg; k0 += vnniChunk {
		kn := min(vnniChunk, kg-k0)
		for jb := 0; jb < nb; jb += 2 {
			p := &pp[jb*blk+k0*vnniPGroup]
			for ob := range nob {
				w := &wp[(ob*kg+k0)*vnniWGroup]
				a := &acc[ob*vnniTileO*ldacc+jb*vnniBlockN]
				var in *int32
				if k0 == 0 {
					in = &init[ob*vnniTileO]
				}
				if jb+1 < nb {
					gemm8x32VNNI(w, p, blk, kn, a, ldacc, in)
				} else {
					gemm8x16VNNI(w, p, kn, a, ldacc, in)
				}
			}
		}
	}
	return acc, ldacc
}

// packPatchVNNI packs the w ≤ 16 pixels j0… of the tap rows src[t·ld+j]
// into one pixel block dst as x+128, x = 0 beyond T taps and w pixels.
func packPatchVNNI(dst []byte, src []int8, ld, j0, w, T int) {
	// The assembly packs whole groups, 16 bytes of each row. For a short
	// pixel block (w < 16) it reads past the row's w pixels: the bytes are
	// in src (the next row's, or beyond the band) and land in padding
	// pixels, whose sums are dropped. Groups whose last row would read
	// past the end of src are left to Go.
	groups := 0
	if room := len(src) - j0 - vnniBlockN; room >= 0 {
		// Row 4g−1 is read up to byte (4g−1)·ld + j0 + 15.
		groups = min(T/vnniGroup, (room/ld+1)/vnniGroup)
	}
	if groups > 0 {
		_ = src[(4*groups-1)*ld+j0+vnniBlockN-1]
		_ = dst[groups*vnniPGroup-1]
		packPatchVNNIAsm(&dst[0], &src[j0], ld, groups)
	}
	// The rest in Go: the last, partial group, or the last group when its
	// read would overrun src.
	for kg := groups; kg < len(dst)/vnniPGroup; kg++ {
		d := dst[kg*vnniPGroup : (kg+1)*vnniPGroup]
		for i := range d {
			d[i] = 0x80
		}
		for t := 4 * kg; t < min(4*kg+4, T); t++ {
			row := src[t*ld+j0 : t*ld+j0+w]
			for j, v := range row {
				d[4*j+t-4*kg] = byte(v) ^ 0x80
			}
		}
	}
}

//go:noescape
func gemm8x32VNNI(w, p *byte, pstride, kg int, acc *int32, ldacc int, init *int32)

//go:noescape
func gemm8x16VNNI(w, p *byte, kg int, acc *int32, ldacc int, init *int32)

//go:noescape
func packPatchVNNIAsm(dst *byte, src *int8, ld, ngroups int)

//go:noescape
func packStripVNNIAsm(dst *byte, src *int8, offs *int, ngroups, nblocks, blk int)

//go:noescape
func packWeightsVNNIAsm(dst *byte, w *int8, ngroups int)

//go:noescape
func sumWeightsVNNI(corr *int32, w *byte, kg int)

// hasVNNI reports whether the CPU runs the VNNI kernel: EVEX VPDPBUSD on
// ZMM (AVX512VNNI, AVX512F), and the EVEX byte/word and YMM/XMM forms the
// kernels use (AVX512BW, AVX512VL). AVX-VNNI alone is not enough.
func hasVNNI() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
}
