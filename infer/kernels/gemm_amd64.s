//go:build gc && !purego

#include "textflag.h"

// AVX2 int8 kernels. int8 values are sign-extended to int16 (VPMOVSXBW)
// and multiplied with VPMADDWD, which sums each pair of adjacent int16
// products into an int32 lane. The products are exact (|w| ≤ 127, |x| ≤
// 128, a pair ≤ 32512 < 2^31) and VPADDD wraps like Go's int32 addition,
// so the results equal the generic kernels bit for bit. VPMADDUBSW is
// avoided on purpose: it saturates int16 pair sums.

// STEP multiplies the tap pair at byte offset P of the packed patch block
// (DI: 16 pixels × (x_k, x_k+1) as int16, two YMM) by the four output
// channels' weight pairs at byte offset W of the packed weight block
// (SI: channel r's pairs at W + 32·r), accumulating into Y0…Y7
// (channel r: Y(2r) pixels 0–7, Y(2r+1) pixels 8–15).
#define STEP(P, W) \
	VMOVDQU      P(DI), Y8; \
	VMOVDQU      P+32(DI), Y9; \
	VPBROADCASTD W(SI), Y10; \
	VPBROADCASTD W+32(SI), Y11; \
	VPMADDWD     Y8, Y10, Y12; \
	VPADDD       Y12, Y0, Y0; \
	VPMADDWD     Y9, Y10, Y13; \
	VPADDD       Y13, Y1, Y1; \
	VPMADDWD     Y8, Y11, Y14; \
	VPADDD       Y14, Y2, Y2; \
	VPMADDWD     Y9, Y11, Y15; \
	VPADDD       Y15, Y3, Y3; \
	VPBROADCASTD W+64(SI), Y10; \
	VPBROADCASTD W+96(SI), Y11; \
	VPMADDWD     Y8, Y10, Y12; \
	VPADDD       Y12, Y4, Y4; \
	VPMADDWD     Y9, Y10, Y13; \
	VPADDD       Y13, Y5, Y5; \
	VPMADDWD     Y8, Y11, Y14; \
	VPADDD       Y14, Y6, Y6; \
	VPMADDWD     Y9, Y11, Y15; \
	VPADDD       Y15, Y7, Y7

// func gemm4x16AVX2(w, p *int16, kb int, acc *int32, ldacc int)
//
// acc[r·ldacc + j] += Σ_t w[r][t]·p[t][j] for 4 channels r and 16 pixels j
// over kb blocks of 16 taps. w: per block 4 channels × 16 taps (128 bytes);
// p: per block 8 tap pairs × 16 pixels × 2 (512 bytes). kb > 0.
TEXT ·gemm4x16AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ kb+16(FP), CX
	MOVQ acc+24(FP), DX
	MOVQ ldacc+32(FP), BX
	SHLQ $2, BX              // row stride in bytes
	LEAQ (DX)(BX*2), R8      // row 2

	// The accumulators start from acc (the bias, or a partial sum).
	VMOVDQU (DX), Y0
	VMOVDQU 32(DX), Y1
	VMOVDQU (DX)(BX*1), Y2
	VMOVDQU 32(DX)(BX*1), Y3
	VMOVDQU (R8), Y4
	VMOVDQU 32(R8), Y5
	VMOVDQU (R8)(BX*1), Y6
	VMOVDQU 32(R8)(BX*1), Y7

loop:
	// One block: 8 tap pairs, unrolled.
	STEP(0, 0)
	STEP(64, 4)
	STEP(128, 8)
	STEP(192, 12)
	STEP(256, 16)
	STEP(320, 20)
	STEP(384, 24)
	STEP(448, 28)
	ADDQ $128, SI
	ADDQ $512, DI
	DECQ CX
	JNZ  loop

	VMOVDQU Y0, (DX)
	VMOVDQU Y1, 32(DX)
	VMOVDQU Y2, (DX)(BX*1)
	VMOVDQU Y3, 32(DX)(BX*1)
	VMOVDQU Y4, (R8)
	VMOVDQU Y5, 32(R8)
	VMOVDQU Y6, (R8)(BX*1)
	VMOVDQU Y7, 32(R8)(BX*1)
	VZEROUPPER
	RET

// STEP8 is STEP for pixels 0–7 only (the first YMM of each tap pair),
// accumulating channel r into Y(r).
#define STEP8(P, W) \
	VMOVDQU      P(DI), Y8; \
	VPBROADCASTD W(SI), Y10; \
	VPBROADCASTD W+32(SI), Y11; \
	VPMADDWD     Y8, Y10, Y12; \
	VPADDD       Y12, Y0, Y0; \
	VPMADDWD     Y8, Y11, Y13; \
	VPADDD       Y13, Y1, Y1; \
	VPBROADCASTD W+64(SI), Y10; \
	VPBROADCASTD W+96(SI), Y11; \
	VPMADDWD     Y8, Y10, Y14; \
	VPADDD       Y14, Y2, Y2; \
	VPMADDWD     Y8, Y11, Y15; \
	VPADDD       Y15, Y3, Y3

// func gemm4x8AVX2(w, p *int16, kb int, acc *int32, ldacc int)
//
// gemm4x16AVX2 for the first 8 pixels of a pixel block: a band's last
// block when at most 8 of its pixels are real, which saves half the
// padding work (VGG's 28- and 56-pixel bands end in such a block).
TEXT ·gemm4x8AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ kb+16(FP), CX
	MOVQ acc+24(FP), DX
	MOVQ ldacc+32(FP), BX
	SHLQ $2, BX              // row stride in bytes
	LEAQ (DX)(BX*2), R8      // row 2

	VMOVDQU (DX), Y0
	VMOVDQU (DX)(BX*1), Y1
	VMOVDQU (R8), Y2
	VMOVDQU (R8)(BX*1), Y3

loop8:
	STEP8(0, 0)
	STEP8(64, 4)
	STEP8(128, 8)
	STEP8(192, 12)
	STEP8(256, 16)
	STEP8(320, 20)
	STEP8(384, 24)
	STEP8(448, 28)
	ADDQ $128, SI
	ADDQ $512, DI
	DECQ CX
	JNZ  loop8

	VMOVDQU Y0, (DX)
	VMOVDQU Y1, (DX)(BX*1)
	VMOVDQU Y2, (R8)
	VMOVDQU Y3, (R8)(BX*1)
	VZEROUPPER
	RET

// func packPatchAVX2(dst *int16, src *int8, ld, npairs int)
//
// For each of npairs tap pairs (rows 2k and 2k+1 of src, ld bytes apart),
// writes the 16 pixels as int16 pairs (x_2k[j], x_2k+1[j]), 64 bytes.
TEXT ·packPatchAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), BX
	MOVQ npairs+24(FP), CX
	LEAQ (BX)(BX*1), DX      // two rows

ploop:
	VMOVDQU    (SI), X0          // row 2k, pixels 0–15
	VMOVDQU    (SI)(BX*1), X1    // row 2k+1
	VPUNPCKLBW X1, X0, X2        // x0[0] x1[0] … x0[7] x1[7]
	VPUNPCKHBW X1, X0, X3        // pixels 8–15
	VPMOVSXBW  X2, Y2
	VPMOVSXBW  X3, Y3
	VMOVDQU    Y2, (DI)
	VMOVDQU    Y3, 32(DI)
	ADDQ       DX, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        ploop
	VZEROUPPER
	RET

// func packWeightsAVX2(dst *int16, w *int8, nblocks int)
//
// Sign-extends nblocks blocks of 16 weights into int16, one block every
// 128 bytes of dst (the other channels of a 4-channel block sit between).
TEXT ·packWeightsAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ nblocks+16(FP), CX

wloop:
	VPMOVSXBW (SI), Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       wloop
	VZEROUPPER
	RET

// func dot4AVX2(x, w0, w1, w2, w3 *int8, n int) (s0, s1, s2, s3 int32)
//
// The four dot products of x with w0…w3 over n values, n a positive
// multiple of 16. Each weight is loaded once: Linear at batch 1 is bound
// by streaming them.
TEXT ·dot4AVX2(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ w0+8(FP), R8
	MOVQ w1+16(FP), R9
	MOVQ w2+24(FP), R10
	MOVQ w3+32(FP), R11
	MOVQ n+40(FP), CX
	XORQ AX, AX              // offset
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

dloop:
	VPMOVSXBW (SI)(AX*1), Y4
	VPMOVSXBW (R8)(AX*1), Y5
	VPMOVSXBW (R9)(AX*1), Y6
	VPMOVSXBW (R10)(AX*1), Y7
	VPMOVSXBW (R11)(AX*1), Y8
	VPMADDWD  Y4, Y5, Y5
	VPMADDWD  Y4, Y6, Y6
	VPMADDWD  Y4, Y7, Y7
	VPMADDWD  Y4, Y8, Y8
	VPADDD    Y5, Y0, Y0
	VPADDD    Y6, Y1, Y1
	VPADDD    Y7, Y2, Y2
	VPADDD    Y8, Y3, Y3
	ADDQ      $16, AX
	CMPQ      AX, CX
	JLT       dloop

	// Horizontal sums: per 128-bit lane, VPHADDD twice leaves
	// (s0, s1, s2, s3) partial sums; then add the two lanes.
	VPHADDD      Y1, Y0, Y0      // s0 s0 s1 s1 | s0 s0 s1 s1
	VPHADDD      Y3, Y2, Y2      // s2 s2 s3 s3 | …
	VPHADDD      Y2, Y0, Y0      // s0 s1 s2 s3 | s0 s1 s2 s3
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, AX
	MOVL         AX, s0+48(FP)
	VPEXTRD      $1, X0, AX
	MOVL         AX, s1+52(FP)
	VPEXTRD      $2, X0, AX
	MOVL         AX, s2+56(FP)
	VPEXTRD      $3, X0, AX
	MOVL         AX, s3+60(FP)
	VZEROUPPER
	RET

// func requantAVX2(dst *int8, acc *int32, n int, mult, e, mask, zero, lo int32)
//
// requantRow for a right shift e ≥ 0 (mask = 2^e − 1) and mult ≠ MinInt32,
// n a positive multiple of 8. SRDHM(a, mult) is computed as
// (a·mult + 2^30) >> 31 in int64, which equals gemmlowp's nudge-and-
// truncate for both signs ((ab + 1 − 2^30)/2^31 truncated toward zero is
// floor((ab + 2^30)/2^31) for ab < 0); the result fits int32 (only
// MinInt32·MinInt32 saturates, excluded), so bits 31…62 are all we need.
TEXT ·requantAVX2(SB), NOSPLIT, $0-44
	MOVQ         dst+0(FP), DI
	MOVQ         acc+8(FP), SI
	MOVQ         n+16(FP), CX
	MOVL         mult+24(FP), AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         e+28(FP), AX
	VMOVD        AX, X11             // shift count
	MOVL         mask+32(FP), AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	VPSRLD       $1, Y13, Y12        // mask >> 1
	MOVL         zero+36(FP), AX
	VMOVD        AX, X10
	VPBROADCASTD X10, Y10
	MOVL         lo+40(FP), AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9
	MOVL         $0x40000000, AX
	VMOVD        AX, X14 
	VPBROADCASTQ X14, Y14            // 2^30 in each int64
	MOVL         $127, AX
	VMOVD        AX, X8
	VPBROADCASTD X8, Y8              // upper clamp

rloop:
	VMOVDQU  (SI), Y0
	// SRDHM: even lanes in the low halves of Y1, odd lanes in the high
	// halves of Y2.
	VPMULDQ  Y15, Y0, Y1
	VPADDQ   Y14, Y1, Y1
	VPSRLQ   $31, Y1, Y1
	VPSRLQ   $32, Y0, Y2
	VPMULDQ  Y15, Y2, Y2
	VPADDQ   Y14, Y2, Y2
	VPSLLQ   $1, Y2, Y2
	VPBLENDD $0xaa, Y2, Y1, Y3       // x = SRDHM(acc, mult)

	// RoundingDivideByPOT(x, e): x >> e, plus one when the remainder
	// x & mask exceeds mask>>1 (mask>>1 + 1 for negative x).
	VPAND    Y13, Y3, Y4             // remainder
	VPSRAD   $31, Y3, Y5             // −1 where x < 0
	VPSUBD   Y5, Y12, Y6             // threshold
	VPSRAD   X11, Y3, Y7
	VPCMPGTD Y6, Y4, Y5              // remainder > threshold: −1
	VPSUBD   Y5, Y7, Y7

	// zero + r (wrapping, as in Go), clamped to [lo, 127].
	VPADDD Y10, Y7, Y7
	VPMAXSD Y9, Y7, Y7
	VPMINSD Y8, Y7, Y7

	// 8 int32 (already in int8 range) → 8 bytes.
	VEXTRACTI128 $1, Y7, X6
	VPACKSSDW    X6, X7, X7
	VPACKSSWB    X7, X7, X7
	VMOVQ        X7, (DI)

	ADDQ $32, SI
	ADDQ $8, DI
	SUBQ $8, CX
	JNZ  rloop
	VZEROUPPER
	RET
