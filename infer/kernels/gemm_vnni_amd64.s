//go:build gc && !purego

#include "textflag.h"

// AVX-512 VNNI int8 kernels (see gemm_vnni_amd64.go). VPDPBUSD W, P, A
// (Go operand order) adds to each int32 lane of A the four products of the
// unsigned bytes of P (the patch, x+128) and the signed bytes of W (the
// weights), wrapping like Go's int32 addition.

// VSTEP2 is one tap group of gemm8x32VNNI: two ZMM of patch (pixel blocks
// at DI and DI+R9) times the 8 channels' weights at SI, channel r into
// Z(2r) (block 0) and Z(2r+1) (block 1).
#define VSTEP2(P, W) \
	VMOVDQU32    P(DI), Z16; \
	VMOVDQU32    P(DI)(R9*1), Z17; \
	VPBROADCASTD W(SI), Z18; \
	VPBROADCASTD W+4(SI), Z19; \
	VPBROADCASTD W+8(SI), Z20; \
	VPBROADCASTD W+12(SI), Z21; \
	VPDPBUSD     Z18, Z16, Z0; \
	VPDPBUSD     Z18, Z17, Z1; \
	VPDPBUSD     Z19, Z16, Z2; \
	VPDPBUSD     Z19, Z17, Z3; \
	VPBROADCASTD W+16(SI), Z22; \
	VPBROADCASTD W+20(SI), Z23; \
	VPDPBUSD     Z20, Z16, Z4; \
	VPDPBUSD     Z20, Z17, Z5; \
	VPDPBUSD     Z21, Z16, Z6; \
	VPDPBUSD     Z21, Z17, Z7; \
	VPBROADCASTD W+24(SI), Z24; \
	VPBROADCASTD W+28(SI), Z25; \
	VPDPBUSD     Z22, Z16, Z8; \
	VPDPBUSD     Z22, Z17, Z9; \
	VPDPBUSD     Z23, Z16, Z10; \
	VPDPBUSD     Z23, Z17, Z11; \
	VPDPBUSD     Z24, Z16, Z12; \
	VPDPBUSD     Z24, Z17, Z13; \
	VPDPBUSD     Z25, Z16, Z14; \
	VPDPBUSD     Z25, Z17, Z15

// func gemm8x32VNNI(w, p *byte, pstride, kg int, acc *int32, ldacc int, init *int32)
//
// acc[r·ldacc + j] += Σ_t w[r][t]·p[t][j] for 8 channels r and 32 pixels
// j (two pixel blocks, pstride bytes apart) over kg groups of 4 taps.
// w: per group 8 channels × 4 taps (32 bytes); p: per group 16 pixels × 4
// taps (64 bytes). kg > 0. With init non-nil, the accumulators start from
// init[r] instead of acc (the first chunk of taps).
TEXT ·gemm8x32VNNI(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ pstride+16(FP), R9
	MOVQ kg+24(FP), CX
	MOVQ acc+32(FP), DX
	MOVQ ldacc+40(FP), BX
	SHLQ $2, BX              // row stride in bytes
	LEAQ (BX)(BX*2), R11     // 3 rows
	LEAQ (DX)(BX*4), R8      // row 4

	// The accumulators start from init (broadcast), or from acc.
	MOVQ init+48(FP), R10
	TESTQ R10, R10
	JZ    load2
	VPBROADCASTD (R10), Z0
	VPBROADCASTD 4(R10), Z2
	VPBROADCASTD 8(R10), Z4
	VPBROADCASTD 12(R10), Z6
	VPBROADCASTD 16(R10), Z8
	VPBROADCASTD 20(R10), Z10
	VPBROADCASTD 24(R10), Z12
	VPBROADCASTD 28(R10), Z14
	VMOVDQA32    Z0, Z1
	VMOVDQA32    Z2, Z3
	VMOVDQA32    Z4, Z5
	VMOVDQA32    Z6, Z7
	VMOVDQA32    Z8, Z9
	VMOVDQA32    Z10, Z11
	VMOVDQA32    Z12, Z13
	VMOVDQA32    Z14, Z15
	JMP          start2

load2:
	VMOVDQU32 (DX), Z0
	VMOVDQU32 64(DX), Z1
	VMOVDQU32 (DX)(BX*1), Z2
	VMOVDQU32 64(DX)(BX*1), Z3
	VMOVDQU32 (DX)(BX*2), Z4
	VMOVDQU32 64(DX)(BX*2), Z5
	VMOVDQU32 (DX)(R11*1), Z6
	VMOVDQU32 64(DX)(R11*1), Z7
	VMOVDQU32 (R8), Z8
	VMOVDQU32 64(R8), Z9
	VMOVDQU32 (R8)(BX*1), Z10
	VMOVDQU32 64(R8)(BX*1), Z11
	VMOVDQU32 (R8)(BX*2), Z12
	VMOVDQU32 64(R8)(BX*2), Z13
	VMOVDQU32 (R8)(R11*1), Z14
	VMOVDQU32 64(R8)(R11*1), Z15

start2:
	// Two groups per iteration, then the odd one.
	MOVQ CX, AX
	SHRQ $1, AX
	JZ   tail2

loop2:
	VSTEP2(0, 0)
	VSTEP2(64, 32)
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ AX
	JNZ  loop2

tail2:
	TESTQ $1, CX
	JZ    done2
	VSTEP2(0, 0)

done2:
	VMOVDQU32 Z0, (DX)
	VMOVDQU32 Z1, 64(DX)
	VMOVDQU32 Z2, (DX)(BX*1)
	VMOVDQU32 Z3, 64(DX)(BX*1)
	VMOVDQU32 Z4, (DX)(BX*2)
	VMOVDQU32 Z5, 64(DX)(BX*2)
	VMOVDQU32 Z6, (DX)(R11*1)
	VMOVDQU32 Z7, 64(DX)(R11*1)
	VMOVDQU32 Z8, (R8)
	VMOVDQU32 Z9, 64(R8)
	VMOVDQU32 Z10, (R8)(BX*1)
	VMOVDQU32 Z11, 64(R8)(BX*1)
	VMOVDQU32 Z12, (R8)(BX*2)
	VMOVDQU32 Z13, 64(R8)(BX*2)
	VMOVDQU32 Z14, (R8)(R11*1)
	VMOVDQU32 Z15, 64(R8)(R11*1)
	VZEROUPPER
	RET

// VSTEP1 is VSTEP2 for one pixel block, channel r into Z(r).
#define VSTEP1(P, W) \
	VMOVDQU32    P(DI), Z16; \
	VPBROADCASTD W(SI), Z18; \
	VPBROADCASTD W+4(SI), Z19; \
	VPBROADCASTD W+8(SI), Z20; \
	VPBROADCASTD W+12(SI), Z21; \
	VPDPBUSD     Z18, Z16, Z0; \
	VPDPBUSD     Z19, Z16, Z1; \
	VPDPBUSD     Z20, Z16, Z2; \
	VPDPBUSD     Z21, Z16, Z3; \
	VPBROADCASTD W+16(SI), Z22; \
	VPBROADCASTD W+20(SI), Z23; \
	VPBROADCASTD W+24(SI), Z24; \
	VPBROADCASTD W+28(SI), Z25; \
	VPDPBUSD     Z22, Z16, Z4; \
	VPDPBUSD     Z23, Z16, Z5; \
	VPDPBUSD     Z24, Z16, Z6; \
	VPDPBUSD     Z25, Z16, Z7

// func gemm8x16VNNI(w, p *byte, kg int, acc *int32, ldacc int, init *int32)
//
// gemm8x32VNNI for one pixel block: a band's last block when their number
// is odd.
TEXT ·gemm8x16VNNI(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ kg+16(FP), CX
	MOVQ acc+24(FP), DX
	MOVQ ldacc+32(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), R11
	LEAQ (DX)(BX*4), R8

	MOVQ init+40(FP), R10
	TESTQ R10, R10
	JZ    load1
	VPBROADCASTD (R10), Z0
	VPBROADCASTD 4(R10), Z1
	VPBROADCASTD 8(R10), Z2
	VPBROADCASTD 12(R10), Z3
	VPBROADCASTD 16(R10), Z4
	VPBROADCASTD 20(R10), Z5
	VPBROADCASTD 24(R10), Z6
	VPBROADCASTD 28(R10), Z7
	JMP          start1

load1:
	VMOVDQU32 (DX), Z0
	VMOVDQU32 (DX)(BX*1), Z1
	VMOVDQU32 (DX)(BX*2), Z2
	VMOVDQU32 (DX)(R11*1), Z3
	VMOVDQU32 (R8), Z4
	VMOVDQU32 (R8)(BX*1), Z5
	VMOVDQU32 (R8)(BX*2), Z6
	VMOVDQU32 (R8)(R11*1), Z7

start1:
	MOVQ CX, AX
	SHRQ $1, AX
	JZ   tail1

loop1:
	VSTEP1(0, 0)
	VSTEP1(64, 32)
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ AX
	JNZ  loop1

tail1:
	TESTQ $1, CX
	JZ    done1
	VSTEP1(0, 0)

done1:
	VMOVDQU32 Z0, (DX)
	VMOVDQU32 Z1, (DX)(BX*1)
	VMOVDQU32 Z2, (DX)(BX*2)
	VMOVDQU32 Z3, (DX)(R11*1)
	VMOVDQU32 Z4, (R8)
	VMOVDQU32 Z5, (R8)(BX*1)
	VMOVDQU32 Z6, (R8)(BX*2)
	VMOVDQU32 Z7, (R8)(R11*1)
	VZEROUPPER
	RET

// func packPatchVNNIAsm(dst *byte, src *int8, ld, ngroups int)
//
// For each of ngroups tap groups (rows 4k…4k+3 of src, ld bytes apart),
// writes the 16 pixels as byte quadruples (x_4k[j], …, x_4k+3[j]) XOR
// 0x80, 64 bytes. ngroups > 0.
TEXT ·packPatchVNNIAsm(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), BX
	MOVQ ngroups+24(FP), CX
	LEAQ (BX)(BX*2), R9      // three rows
	LEAQ (BX*4), R10         // four rows
	MOVL $0x80808080, AX
	VMOVD AX, X15
	VPBROADCASTD X15, X15

gloop:
	VMOVDQU    (SI), X0          // row 4k, pixels 0–15
	VMOVDQU    (SI)(BX*1), X1    // row 4k+1
	VMOVDQU    (SI)(BX*2), X2    // row 4k+2
	VMOVDQU    (SI)(R9*1), X3    // row 4k+3
	VPUNPCKLBW X1, X0, X4        // x0[0] x1[0] … x0[7] x1[7]
	VPUNPCKHBW X1, X0, X5        // pixels 8–15
	VPUNPCKLBW X3, X2, X6        // x2[0] x3[0] …
	VPUNPCKHBW X3, X2, X7
	VPUNPCKLWD X6, X4, X8        // pixels 0–3: x0 x1 x2 x3 each
	VPUNPCKHWD X6, X4, X9        // pixels 4–7
	VPUNPCKLWD X7, X5, X10       // 8–11
	VPUNPCKHWD X7, X5, X11       // 12–15
	VPXOR      X15, X8, X8
	VPXOR      X15, X9, X9
	VPXOR      X15, X10, X10
	VPXOR      X15, X11, X11
	VMOVDQU    X8, (DI)
	VMOVDQU    X9, 16(DI)
	VMOVDQU    X10, 32(DI)
	VMOVDQU    X11, 48(DI)
	ADDQ       R10, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        gloop
	VZEROUPPER
	RET

// func packStripVNNIAsm(dst *byte, src *int8, offs *int, ngroups, nblocks, blk int)
//
// packPatchVNNIAsm for tap rows at arbitrary offsets (the strip path,
// vnni_strip_amd64.go): tap group k's rows start at src+offs[4k…4k+3];
// its nblocks pixel blocks go to dst + k·64 + b·blk. ngroups, nblocks > 0.
TEXT ·packStripVNNIAsm(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), DX
	MOVQ ngroups+24(FP), CX
	MOVQ nblocks+32(FP), R12
	MOVQ blk+40(FP), BX
	MOVL $0x80808080, AX
	VMOVD AX, X15
	VPBROADCASTD X15, X15

sgroup:
	MOVQ (DX), R8
	MOVQ 8(DX), R9
	MOVQ 16(DX), R10
	MOVQ 24(DX), R11
	ADDQ SI, R8
	ADDQ SI, R9
	ADDQ SI, R10
	ADDQ SI, R11
	MOVQ DI, R13
	MOVQ R12, AX

sblock:
	VMOVDQU    (R8), X0
	VMOVDQU    (R9), X1
	VMOVDQU    (R10), X2
	VMOVDQU    (R11), X3
	VPUNPCKLBW X1, X0, X4
	VPUNPCKHBW X1, X0, X5
	VPUNPCKLBW X3, X2, X6
	VPUNPCKHBW X3, X2, X7
	VPUNPCKLWD X6, X4, X8
	VPUNPCKHWD X6, X4, X9
	VPUNPCKLWD X7, X5, X10
	VPUNPCKHWD X7, X5, X11
	VPXOR      X15, X8, X8
	VPXOR      X15, X9, X9
	VPXOR      X15, X10, X10
	VPXOR      X15, X11, X11
	VMOVDQU    X8, (R13)
	VMOVDQU    X9, 16(R13)
	VMOVDQU    X10, 32(R13)
	VMOVDQU    X11, 48(R13)
	ADDQ       $16, R8
	ADDQ       $16, R9
	ADDQ       $16, R10
	ADDQ       $16, R11
	ADDQ       BX, R13
	DECQ       AX
	JNZ        sblock

	ADDQ $32, DX
	ADDQ $64, DI
	DECQ CX
	JNZ  sgroup
	VZEROUPPER
	RET

// func packWeightsVNNIAsm(dst *byte, w *int8, ngroups int)
//
// Copies ngroups groups of 4 weights, one group every 32 bytes of dst (the
// other 7 channels of an 8-channel block sit between). ngroups > 0.
TEXT ·packWeightsVNNIAsm(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ ngroups+16(FP), CX

wloop:
	MOVL (SI), AX
	MOVL AX, (DI)
	ADDQ $4, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  wloop
	RET

// func sumWeightsVNNI(corr *int32, w *byte, kg int)
//
// corr[r] = 128·Σ w[r] over the kg groups of one packed 8-channel block:
// VPDPBUSD of the weights with bytes 0x80 (unsigned 128). kg > 0.
TEXT ·sumWeightsVNNI(SB), NOSPLIT, $0-24
	MOVQ corr+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ kg+16(FP), CX
	MOVL $0x80808080, AX
	VMOVD AX, X1
	VPBROADCASTD X1, Y1
	VPXORD Y0, Y0, Y0

sloop:
	VPDPBUSD (SI), Y1, Y0
	ADDQ     $32, SI
	DECQ     CX
	JNZ      sloop
	VMOVDQU  Y0, (DI)
	VZEROUPPER
	RET
