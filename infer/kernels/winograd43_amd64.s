//go:build gc && !purego

#include "textflag.h"

// AVX2 parts of the Winograd F(4,3) path (winograd43.go): the 36-position
// GEMM in VPMADDWD on channel pairs, and the input and output transforms,
// 8 tiles a YMM. Every operation is a wrapping int16 or int32 ring
// operation, like the Go twins, so the results are the same bits.

// STEP43 is one channel pair of w43GemmNAVX2: V's 8 tiles at OFF(DI), the
// 8 channels' U pairs at UOFF(SI) broadcast, into Y0…Y7.
#define STEP43(OFF, UOFF) \
	VMOVDQU      OFF(DI), Y8; \
	VPBROADCASTD UOFF+0(SI), Y9; \
	VPBROADCASTD UOFF+4(SI), Y10; \
	VPBROADCASTD UOFF+8(SI), Y11; \
	VPBROADCASTD UOFF+12(SI), Y12; \
	VPMADDWD     Y8, Y9, Y9; \
	VPMADDWD     Y8, Y10, Y10; \
	VPMADDWD     Y8, Y11, Y11; \
	VPMADDWD     Y8, Y12, Y12; \
	VPADDD       Y9, Y0, Y0; \
	VPADDD       Y10, Y1, Y1; \
	VPADDD       Y11, Y2, Y2; \
	VPADDD       Y12, Y3, Y3; \
	VPBROADCASTD UOFF+16(SI), Y13; \
	VPBROADCASTD UOFF+20(SI), Y14; \
	VPBROADCASTD UOFF+24(SI), Y15; \
	VPBROADCASTD UOFF+28(SI), Y9; \
	VPMADDWD     Y8, Y13, Y13; \
	VPMADDWD     Y8, Y14, Y14; \
	VPMADDWD     Y8, Y15, Y15; \
	VPMADDWD     Y8, Y9, Y9; \
	VPADDD       Y13, Y4, Y4; \
	VPADDD       Y14, Y5, Y5; \
	VPADDD       Y15, Y6, Y6; \
	VPADDD       Y9, Y7, Y7

// BT6 applies Bᵀ to the int16 columns d0…d5 (Y0…Y5), writing r0…r5 to
// Y6…Y11; Y12, Y13 are scratch. (Go's operand order: VPSUBW a, b, c is
// c = b − a.)
#define BT6 \
	VPSUBW Y2, Y4, Y12; /* d4 − d2 */ \
	VPSUBW Y2, Y0, Y6;  /* d0 − d2 */ \
	VPSLLW $2, Y6, Y6; \
	VPADDW Y12, Y6, Y6; /* r0 = 4(d0 − d2) + d4 − d2 */ \
	VPSUBW Y1, Y3, Y13; /* d3 − d1 */ \
	VPSLLW $1, Y13, Y13; \
	VPADDW Y13, Y12, Y9;  /* r3 = d4 − d2 + 2(d3 − d1) */ \
	VPSUBW Y13, Y12, Y10; /* r4 = d4 − d2 − 2(d3 − d1) */ \
	VPADDW Y4, Y3, Y12; /* d3 + d4 */ \
	VPADDW Y2, Y1, Y13; /* d1 + d2 */ \
	VPSLLW $2, Y13, Y13; \
	VPSUBW Y13, Y12, Y7; /* r1 = d3 + d4 − 4(d1 + d2) */ \
	VPSUBW Y3, Y4, Y12; /* d4 − d3 */ \
	VPSUBW Y2, Y1, Y13; /* d1 − d2 */ \
	VPSLLW $2, Y13, Y13; \
	VPADDW Y13, Y12, Y8; /* r2 = d4 − d3 + 4(d1 − d2) */ \
	VPSUBW Y3, Y1, Y12; /* d1 − d3 */ \
	VPSLLW $2, Y12, Y12; \
	VPSUBW Y3, Y5, Y13; /* d5 − d3 */ \
	VPADDW Y13, Y12, Y11 /* r5 = 4(d1 − d3) + d5 − d3 */

// LD8 loads the two halves' 4 pairs of source OFF of row register R (the
// second half SI bytes on) into Y sign-extended to int16.
#define LD8(R, OFF, X, Y) \
	VMOVQ     OFF(R), X; \
	VPINSRQ   $1, OFF(R)(SI*1), X, X; \
	VPMOVSXBW X, Y

// COL loads column source S (byte offset OFF from R10) of the six plane
// rows (stride BX) sign-extended, applies Bᵀ, and stores W[i][S] to the
// frame at (6i+S)·32.
#define COL(S, OFF) \
	LD8(R10, OFF, X0, Y0); \
	LD8(R11, OFF, X1, Y1); \
	LD8(R12, OFF, X2, Y2); \
	LD8(R13, OFF, X3, Y3); \
	LD8(R14, OFF, X4, Y4); \
	LD8(R15, OFF, X5, Y5); \
	BT6; \
	VMOVDQU Y6, S*32+0(SP); \
	VMOVDQU Y7, S*32+192(SP); \
	VMOVDQU Y8, S*32+384(SP); \
	VMOVDQU Y9, S*32+576(SP); \
	VMOVDQU Y10, S*32+768(SP); \
	VMOVDQU Y11, S*32+960(SP)

// ROW applies Bᵀ to row I of W and stores V_{6I+j} at DI + (6I+j)·xs.
#define ROW(I) \
	VMOVDQU I*192+0(SP), Y0; \
	VMOVDQU I*192+32(SP), Y1; \
	VMOVDQU I*192+64(SP), Y2; \
	VMOVDQU I*192+96(SP), Y3; \
	VMOVDQU I*192+128(SP), Y4; \
	VMOVDQU I*192+160(SP), Y5; \
	BT6; \
	VMOVDQU Y6, (AX); \
	VMOVDQU Y7, (AX)(CX*1); \
	VMOVDQU Y8, (AX)(CX*2); \
	LEAQ    (AX)(CX*2), AX; \
	VMOVDQU Y9, (AX)(CX*1); \
	VMOVDQU Y10, (AX)(CX*2); \
	LEAQ    (AX)(CX*2), AX; \
	VMOVDQU Y11, (AX)(CX*1); \
	LEAQ    (AX)(CX*2), AX

// func w43InputRowAVX2(v *int16, xs, vb int, pl *int8, d, step, rowb, np, nb int)
//
// w43InputRowGo for nb > 0 blocks of 8 tiles; xs in bytes. A half's tile
// l has column s of the pair at phase s%4, position l + s/4: byte
// (s%4)·2np + 2(l + s/4), so a half's 4 tiles are 8 bytes from one load,
// and the other half d bytes on. Block i's V starts i·vb bytes on.
TEXT ·w43InputRowAVX2(SB), 0, $1152-72
	MOVQ v+0(FP), DI
	MOVQ xs+8(FP), CX
	MOVQ pl+24(FP), R10
	MOVQ d+32(FP), SI
	MOVQ rowb+48(FP), BX
	MOVQ np+56(FP), DX
	SHLQ $1, DX               // phase stride in bytes
	MOVQ nb+64(FP), R9
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	LEAQ (R13)(BX*1), R14
	LEAQ (R14)(BX*1), R15

block:
	// Phases 0…3 at offsets 0, np2, 2·np2, 3·np2; sources 4, 5 are
	// phases 0, 1 one position on. The offsets are in registers, so
	// each COL reads through a moved base.
	COL(0, 0)
	ADDQ DX, R10
	ADDQ DX, R11
	ADDQ DX, R12
	ADDQ DX, R13
	ADDQ DX, R14
	ADDQ DX, R15
	COL(1, 0)
	COL(5, 2)
	ADDQ DX, R10
	ADDQ DX, R11
	ADDQ DX, R12
	ADDQ DX, R13
	ADDQ DX, R14
	ADDQ DX, R15
	COL(2, 0)
	ADDQ DX, R10
	ADDQ DX, R11
	ADDQ DX, R12
	ADDQ DX, R13
	ADDQ DX, R14
	ADDQ DX, R15
	COL(3, 0)
	// Back to phase 0, then source 4.
	LEAQ (DX)(DX*2), R8
	SUBQ R8, R10
	SUBQ R8, R11
	SUBQ R8, R12
	SUBQ R8, R13
	SUBQ R8, R14
	SUBQ R8, R15
	COL(4, 2)

	MOVQ DI, AX
	ROW(0)
	ROW(1)
	ROW(2)
	ROW(3)
	ROW(4)
	ROW(5)

	MOVQ step+40(FP), R8
	ADDQ R8, R10
	ADDQ R8, R11
	ADDQ R8, R12
	ADDQ R8, R13
	ADDQ R8, R14
	ADDQ R8, R15
	ADDQ vb+16(FP), DI
	DECQ R9
	JNZ  block
	VZEROUPPER
	RET

// AT6 applies Âᵀ to the int32 columns m0…m5 (Y0…Y5, destroyed), writing
// r0…r3 to Y6…Y9; Y10, Y11 are scratch.
#define AT6 \
	VPADDD Y2, Y1, Y10; /* S12 */ \
	VPSUBD Y2, Y1, Y1;  /* D12 */ \
	VPADDD Y4, Y3, Y11; /* S34 */ \
	VPSUBD Y4, Y3, Y3;  /* D34 */ \
	VPADDD Y11, Y10, Y8; \
	VPSLLD $2, Y8, Y8;   /* r2 = 4(S12 + S34) */ \
	VPSLLD $2, Y10, Y10; \
	VPADDD Y11, Y10, Y10; /* 4S12 + S34 */ \
	VPSLLD $1, Y0, Y11;  /* 2m0 */ \
	VPSLLD $2, Y0, Y6;   /* 4m0 */ \
	VPADDD Y11, Y6, Y6; \
	VPADDD Y10, Y6, Y6;  /* r0 = 6m0 + 4S12 + S34 */ \
	VPSLLD $2, Y1, Y1;   /* 4D12 */ \
	VPSLLD $1, Y3, Y3;   /* 2D34 */ \
	VPADDD Y3, Y1, Y7;   /* r1 = 4D12 + 2D34 */ \
	VPSLLD $2, Y3, Y3;   /* 8D34 */ \
	VPADDD Y3, Y1, Y1; \
	VPSLLD $3, Y5, Y5;   /* 8m5 */ \
	VPSLLD $1, Y5, Y10;  /* 16m5 */ \
	VPADDD Y5, Y10, Y10; /* 24m5 */ \
	VPADDD Y10, Y1, Y9   /* r3 = 4D12 + 8D34 + 24m5 */

// OCOL applies Âᵀ to column J of channel R8's M (stride 256 bytes per ξ
// from SI) and stores T[a][J] to the frame at (6a+J)·32.
#define OCOL(J) \
	VMOVDQU J*256+0(SI), Y0; \
	VMOVDQU J*256+1536(SI), Y1; \
	VMOVDQU J*256+3072(SI), Y2; \
	VMOVDQU J*256+4608(SI), Y3; \
	VMOVDQU J*256+6144(SI), Y4; \
	VMOVDQU J*256+7680(SI), Y5; \
	AT6; \
	VMOVDQU Y6, J*32+0(SP); \
	VMOVDQU Y7, J*32+192(SP); \
	VMOVDQU Y8, J*32+384(SP); \
	VMOVDQU Y9, J*32+576(SP)

// ADDSUM adds the accumulators at DI to Y0…Y3 (tiles 4…7 R9 bytes on);
// ADDBIAS adds the bias in Y14 instead.
#define ADDSUM \
	VPADDD (DI), Y0, Y0; \
	VPADDD 32(DI), Y1, Y1; \
	VPADDD (DI)(R9*1), Y2, Y2; \
	VPADDD 32(DI)(R9*1), Y3, Y3

#define ADDBIAS \
	VPADDD Y14, Y0, Y0; \
	VPADDD Y14, Y1, Y1; \
	VPADDD Y14, Y2, Y2; \
	VPADDD Y14, Y3, Y3

// OROW applies Âᵀ to row A of T, recovers S = (R·9⁻¹) >> 6 (Y15 holds
// 9⁻¹), transposes the four 8-tile vectors into 32 consecutive outputs
// (tile t's b at 4t+b) and adds them to the accumulator row at DI.
#define OROW(A, SUM) \
	VMOVDQU A*192+0(SP), Y0; \
	VMOVDQU A*192+32(SP), Y1; \
	VMOVDQU A*192+64(SP), Y2; \
	VMOVDQU A*192+96(SP), Y3; \
	VMOVDQU A*192+128(SP), Y4; \
	VMOVDQU A*192+160(SP), Y5; \
	AT6; \
	VPMULLD Y15, Y6, Y6; \
	VPMULLD Y15, Y7, Y7; \
	VPMULLD Y15, Y8, Y8; \
	VPMULLD Y15, Y9, Y9; \
	VPSRAD  $6, Y6, Y6; \
	VPSRAD  $6, Y7, Y7; \
	VPSRAD  $6, Y8, Y8; \
	VPSRAD  $6, Y9, Y9; \
	VPUNPCKLDQ  Y7, Y6, Y0;  /* a0 b0 a1 b1 | a4 b4 a5 b5 */ \
	VPUNPCKHDQ  Y7, Y6, Y1;  /* a2 b2 a3 b3 | a6 b6 a7 b7 */ \
	VPUNPCKLDQ  Y9, Y8, Y2;  /* c0 d0 c1 d1 | … */ \
	VPUNPCKHDQ  Y9, Y8, Y3; \
	VPUNPCKLQDQ Y2, Y0, Y4;  /* t0 | t4 */ \
	VPUNPCKHQDQ Y2, Y0, Y5;  /* t1 | t5 */ \
	VPUNPCKLQDQ Y3, Y1, Y6;  /* t2 | t6 */ \
	VPUNPCKHQDQ Y3, Y1, Y7;  /* t3 | t7 */ \
	VPERM2I128  $0x20, Y5, Y4, Y0; /* t0 t1 */ \
	VPERM2I128  $0x20, Y7, Y6, Y1; /* t2 t3 */ \
	VPERM2I128  $0x31, Y5, Y4, Y2; /* t4 t5 */ \
	VPERM2I128  $0x31, Y7, Y6, Y3; /* t6 t7 */ \
	SUM; \
	VMOVDQU     Y0, (DI); \
	VMOVDQU     Y1, 32(DI); \
	VMOVDQU     Y2, (DI)(R9*1); \
	VMOVDQU     Y3, 32(DI)(R9*1); \
	ADDQ        BX, DI

// func w43OutputAVX2(m *int32, no int, bias, acc *int32, d, ps, rowlen int)
//
// w43OutputGo for no > 0 channels; d, ps and rowlen in bytes; bias nil
// to add to acc.
TEXT ·w43OutputAVX2(SB), 0, $768-56
	MOVQ m+0(FP), SI
	MOVQ no+8(FP), CX
	MOVQ bias+16(FP), R10
	MOVQ acc+24(FP), DX
	MOVQ d+32(FP), R9
	MOVQ ps+40(FP), R8
	MOVQ rowlen+48(FP), BX
	MOVL $0x38E38E39, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

channel:
	OCOL(0)
	OCOL(1)
	OCOL(2)
	OCOL(3)
	OCOL(4)
	OCOL(5)
	MOVQ  DX, DI
	TESTQ R10, R10
	JNZ   withbias
	OROW(0, ADDSUM)
	OROW(1, ADDSUM)
	OROW(2, ADDSUM)
	OROW(3, ADDSUM)
	JMP   next

withbias:
	VPBROADCASTD (R10), Y14
	ADDQ         $4, R10
	OROW(0, ADDBIAS)
	OROW(1, ADDBIAS)
	OROW(2, ADDBIAS)
	OROW(3, ADDBIAS)

next:
	ADDQ $32, SI
	ADDQ R8, DX
	DECQ CX
	JNZ  channel
	VZEROUPPER
	RET

// The byte order that groups a register of 8 channel pairs p0…p7 by
// phase: p0 p4 | p1 p5 | p2 p6 | p3 p7.
DATA w43PhaseMask<>+0(SB)/8, $0x0b0a030209080100
DATA w43PhaseMask<>+8(SB)/8, $0x0f0e07060d0c0504
GLOBL w43PhaseMask<>(SB), RODATA|NOPTR, $16

// func w43PlaneRowAVX2(dst, a, b *int8, np, n16 int)
//
// dst[(q%4)·2np + 2(q/4) + e] = (a, b)[e][q] for q < 16·n16 (n16 > 0):
// columns of channels a and b interleaved in pairs and split by phase.
TEXT ·w43PlaneRowAVX2(SB), NOSPLIT, $0-40
	MOVQ    dst+0(FP), DI
	MOVQ    a+8(FP), SI
	MOVQ    b+16(FP), DX
	MOVQ    np+24(FP), BX
	SHLQ    $1, BX                 // phase stride in bytes
	MOVQ    n16+32(FP), CX
	LEAQ    (DI)(BX*1), R8         // phase 1
	LEAQ    (DI)(BX*2), R9         // phase 2
	LEAQ    (R8)(BX*2), R10        // phase 3
	VMOVDQU w43PhaseMask<>(SB), X7

prow:
	VMOVDQU     (SI), X0
	VMOVDQU     (DX), X1
	VPUNPCKLBW  X1, X0, X2         // pairs of columns 0…7
	VPUNPCKHBW  X1, X0, X3         // pairs of columns 8…15
	VPSHUFB     X7, X2, X2         // k0, k0+1 of phases 0…3
	VPSHUFB     X7, X3, X3         // k0+2, k0+3 of phases 0…3
	VPUNPCKLDQ  X3, X2, X4         // phase 0 k0…k0+3 | phase 1
	VPUNPCKHDQ  X3, X2, X5         // phase 2 | phase 3
	VMOVQ       X4, (DI)
	VPEXTRQ     $1, X4, (R8)
	VMOVQ       X5, (R9)
	VPEXTRQ     $1, X5, (R10)
	ADDQ        $16, SI
	ADDQ        $16, DX
	ADDQ        $8, DI
	ADDQ        $8, R8
	ADDQ        $8, R9
	ADDQ        $8, R10
	DECQ        CX
	JNZ         prow
	RET

// func w43UChunkAVX2(u *int16, wc *int8, ncp int)
//
// w43UChunkGo: for each of ncp > 0 channel pairs, the 16 lanes (8
// channels × 2) of its 9 permuted weights (wc, 144 bytes a pair) become
// U = Ĝ g Ĝᵀ, position ξ at u + ξ·ncp·32 + cp·32 bytes. int16 is exact:
// |Ĝ g| ≤ 7·128, |U| ≤ 49·128. Ĝ's rows: a; −a−b−c; −a+b−c; a+2b+4c;
// a−2b+4c; c. Y0…Y8 hold g (tap 3·row+col), Y15 zero.
TEXT ·w43UChunkAVX2(SB), NOSPLIT, $0-24
	MOVQ  u+0(FP), DI
	MOVQ  wc+8(FP), SI
	MOVQ  ncp+16(FP), CX
	MOVQ  CX, R8
	SHLQ  $5, R8              // ξ stride in bytes
	VPXOR Y15, Y15, Y15

upair:
	VPMOVSXBW 0(SI), Y0
	VPMOVSXBW 16(SI), Y1
	VPMOVSXBW 32(SI), Y2
	VPMOVSXBW 48(SI), Y3
	VPMOVSXBW 64(SI), Y4
	VPMOVSXBW 80(SI), Y5
	VPMOVSXBW 96(SI), Y6
	VPMOVSXBW 112(SI), Y7
	VPMOVSXBW 128(SI), Y8
	MOVQ DI, AX
	VMOVDQU Y0, (AX)   // ξ = 0
	ADDQ R8, AX
	VPSUBW Y0, Y15, Y12
	VPSUBW Y1, Y12, Y12
	VPSUBW Y2, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 1
	ADDQ R8, AX
	VPSUBW Y0, Y1, Y12
	VPSUBW Y2, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 2
	ADDQ R8, AX
	VPSLLW $2, Y2, Y14
	VPADDW Y14, Y0, Y12
	VPSLLW $1, Y1, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 3
	ADDQ R8, AX
	VPSLLW $2, Y2, Y14
	VPADDW Y14, Y0, Y12
	VPSLLW $1, Y1, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 4
	ADDQ R8, AX
	VMOVDQU Y2, (AX)   // ξ = 5
	ADDQ R8, AX
	VPSUBW Y0, Y15, Y9
	VPSUBW Y3, Y9, Y9
	VPSUBW Y6, Y9, Y9
	VPSUBW Y1, Y15, Y10
	VPSUBW Y4, Y10, Y10
	VPSUBW Y7, Y10, Y10
	VPSUBW Y2, Y15, Y11
	VPSUBW Y5, Y11, Y11
	VPSUBW Y8, Y11, Y11
	VMOVDQU Y9, (AX)   // ξ = 6
	ADDQ R8, AX
	VPSUBW Y9, Y15, Y12
	VPSUBW Y10, Y12, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 7
	ADDQ R8, AX
	VPSUBW Y9, Y10, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 8
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 9
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 10
	ADDQ R8, AX
	VMOVDQU Y11, (AX)   // ξ = 11
	ADDQ R8, AX
	VPSUBW Y0, Y3, Y9
	VPSUBW Y6, Y9, Y9
	VPSUBW Y1, Y4, Y10
	VPSUBW Y7, Y10, Y10
	VPSUBW Y2, Y5, Y11
	VPSUBW Y8, Y11, Y11
	VMOVDQU Y9, (AX)   // ξ = 12
	ADDQ R8, AX
	VPSUBW Y9, Y15, Y12
	VPSUBW Y10, Y12, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 13
	ADDQ R8, AX
	VPSUBW Y9, Y10, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 14
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 15
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 16
	ADDQ R8, AX
	VMOVDQU Y11, (AX)   // ξ = 17
	ADDQ R8, AX
	VPSLLW $2, Y6, Y13
	VPADDW Y13, Y0, Y9
	VPSLLW $1, Y3, Y13
	VPADDW Y13, Y9, Y9
	VPSLLW $2, Y7, Y13
	VPADDW Y13, Y1, Y10
	VPSLLW $1, Y4, Y13
	VPADDW Y13, Y10, Y10
	VPSLLW $2, Y8, Y13
	VPADDW Y13, Y2, Y11
	VPSLLW $1, Y5, Y13
	VPADDW Y13, Y11, Y11
	VMOVDQU Y9, (AX)   // ξ = 18
	ADDQ R8, AX
	VPSUBW Y9, Y15, Y12
	VPSUBW Y10, Y12, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 19
	ADDQ R8, AX
	VPSUBW Y9, Y10, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 20
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 21
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 22
	ADDQ R8, AX
	VMOVDQU Y11, (AX)   // ξ = 23
	ADDQ R8, AX
	VPSLLW $2, Y6, Y13
	VPADDW Y13, Y0, Y9
	VPSLLW $1, Y3, Y13
	VPSUBW Y13, Y9, Y9
	VPSLLW $2, Y7, Y13
	VPADDW Y13, Y1, Y10
	VPSLLW $1, Y4, Y13
	VPSUBW Y13, Y10, Y10
	VPSLLW $2, Y8, Y13
	VPADDW Y13, Y2, Y11
	VPSLLW $1, Y5, Y13
	VPSUBW Y13, Y11, Y11
	VMOVDQU Y9, (AX)   // ξ = 24
	ADDQ R8, AX
	VPSUBW Y9, Y15, Y12
	VPSUBW Y10, Y12, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 25
	ADDQ R8, AX
	VPSUBW Y9, Y10, Y12
	VPSUBW Y11, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 26
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 27
	ADDQ R8, AX
	VPSLLW $2, Y11, Y14
	VPADDW Y14, Y9, Y12
	VPSLLW $1, Y10, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 28
	ADDQ R8, AX
	VMOVDQU Y11, (AX)   // ξ = 29
	ADDQ R8, AX
	VMOVDQU Y6, (AX)   // ξ = 30
	ADDQ R8, AX
	VPSUBW Y6, Y15, Y12
	VPSUBW Y7, Y12, Y12
	VPSUBW Y8, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 31
	ADDQ R8, AX
	VPSUBW Y6, Y7, Y12
	VPSUBW Y8, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 32
	ADDQ R8, AX
	VPSLLW $2, Y8, Y14
	VPADDW Y14, Y6, Y12
	VPSLLW $1, Y7, Y14
	VPADDW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 33
	ADDQ R8, AX
	VPSLLW $2, Y8, Y14
	VPADDW Y14, Y6, Y12
	VPSLLW $1, Y7, Y14
	VPSUBW Y14, Y12, Y12
	VMOVDQU Y12, (AX)   // ξ = 34
	ADDQ R8, AX
	VMOVDQU Y8, (AX)   // ξ = 35
	ADDQ R8, AX
	ADDQ $144, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  upair
	VZEROUPPER
	RET

// func w43GemmNAVX2(u, v *int16, ncp, xs, vb, nb int, m *int32)
//
// w43GemmNGo for nb > 0 blocks of tiles (vb bytes apart in V): for each
// ξ, for each block, m + b·9216 + ξ·256 gets the 8 channels' sums for its
// 8 tiles, Y0…Y7 over the whole pair loop. Blocks loop inside each ξ, so
// U_ξ (ncp·32 bytes) stays in L1 while the blocks' V stream past it. xs
// and vb in bytes; ncp > 0.
TEXT ·w43GemmNAVX2(SB), NOSPLIT, $0-56
	MOVQ u+0(FP), R13
	MOVQ v+8(FP), R10
	MOVQ ncp+16(FP), CX
	MOVQ xs+24(FP), BX
	MOVQ m+48(FP), DX
	MOVQ $36, R9

nxi:
	MOVQ nb+40(FP), R11
	MOVQ R10, R14            // V of block 0
	MOVQ DX, R12             // m of block 0

nblk:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	MOVQ  R14, DI
	MOVQ  R13, SI
	MOVQ  CX, R8
	SHRQ  $1, R8
	JZ    nodd

ncp2:
	STEP43(0, 0)
	STEP43(32, 32)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNZ  ncp2

nodd:
	TESTQ $1, CX
	JZ    nstore
	STEP43(0, 0)
	ADDQ  $32, SI

nstore:
	VMOVDQU Y0, (R12)
	VMOVDQU Y1, 32(R12)
	VMOVDQU Y2, 64(R12)
	VMOVDQU Y3, 96(R12)
	VMOVDQU Y4, 128(R12)
	VMOVDQU Y5, 160(R12)
	VMOVDQU Y6, 192(R12)
	VMOVDQU Y7, 224(R12)
	ADDQ    $9216, R12
	ADDQ    vb+32(FP), R14
	DECQ    R11
	JNZ     nblk

	MOVQ SI, R13             // the next ξ's U follows this one's
	ADDQ BX, R10
	ADDQ $256, DX
	DECQ R9
	JNZ  nxi
	VZEROUPPER
	RET
