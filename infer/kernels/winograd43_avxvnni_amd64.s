//go:build gc && !purego

#include "textflag.h"

// The F(4,3) GEMM on AVX-VNNI (Intel N100/N97/N305 class, no AVX-512):
// w43GemmNAVX2 with each VPMADDWD+VPADDD pair fused into one VEX-encoded
// VPDPWSSD, which sums the two int16 products into the int32 lane with
// wraparound, like the pair it replaces (no saturation: that is
// VPDPWSSDS). Go's assembler encodes VPDPWSSD only in its EVEX (AVX-512)
// form, which faults on these CPUs, so each one is spelled in BYTEs with
// its GNU mnemonic beside it; TestX86ByteEncodings checks every line with
// objdump. Encoding: C4 (R̄X̄B̄ 00010) (0 v̄v̄v̄v̄ 1 01) 52 (11 reg rm).
// (This file is written by a short script from the AVX2 kernel's
// structure; edit both together.)

// func w43GemmNAVXVNNI(u, v *int16, ncp, xs, vb, nb int, m *int32)
//
// w43GemmNAVX2's contract.
TEXT ·w43GemmNAVXVNNI(SB), NOSPLIT, $0-56
	MOVQ u+0(FP), R13
	MOVQ v+8(FP), R10
	MOVQ ncp+16(FP), CX
	MOVQ xs+24(FP), BX
	MOVQ m+48(FP), DX
	MOVQ $36, R9

vxi:
	MOVQ nb+40(FP), R11
	MOVQ R10, R14
	MOVQ DX, R12

vblk:
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
	JZ    vodd

vcp:
	VMOVDQU      0(DI), Y8
	VPBROADCASTD 0(SI), Y9
	VPBROADCASTD 4(SI), Y10
	VPBROADCASTD 8(SI), Y11
	VPBROADCASTD 12(SI), Y12
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xc1 // {vex} vpdpwssd ymm0,ymm8,ymm9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xca // {vex} vpdpwssd ymm1,ymm8,ymm10
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xd3 // {vex} vpdpwssd ymm2,ymm8,ymm11
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xdc // {vex} vpdpwssd ymm3,ymm8,ymm12
	VPBROADCASTD 16(SI), Y13
	VPBROADCASTD 20(SI), Y14
	VPBROADCASTD 24(SI), Y15
	VPBROADCASTD 28(SI), Y9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xe5 // {vex} vpdpwssd ymm4,ymm8,ymm13
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xee // {vex} vpdpwssd ymm5,ymm8,ymm14
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf7 // {vex} vpdpwssd ymm6,ymm8,ymm15
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf9 // {vex} vpdpwssd ymm7,ymm8,ymm9
	VMOVDQU      32(DI), Y8
	VPBROADCASTD 32(SI), Y9
	VPBROADCASTD 36(SI), Y10
	VPBROADCASTD 40(SI), Y11
	VPBROADCASTD 44(SI), Y12
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xc1 // {vex} vpdpwssd ymm0,ymm8,ymm9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xca // {vex} vpdpwssd ymm1,ymm8,ymm10
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xd3 // {vex} vpdpwssd ymm2,ymm8,ymm11
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xdc // {vex} vpdpwssd ymm3,ymm8,ymm12
	VPBROADCASTD 48(SI), Y13
	VPBROADCASTD 52(SI), Y14
	VPBROADCASTD 56(SI), Y15
	VPBROADCASTD 60(SI), Y9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xe5 // {vex} vpdpwssd ymm4,ymm8,ymm13
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xee // {vex} vpdpwssd ymm5,ymm8,ymm14
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf7 // {vex} vpdpwssd ymm6,ymm8,ymm15
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf9 // {vex} vpdpwssd ymm7,ymm8,ymm9
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNZ  vcp

vodd:
	TESTQ $1, CX
	JZ    vstore
	VMOVDQU      0(DI), Y8
	VPBROADCASTD 0(SI), Y9
	VPBROADCASTD 4(SI), Y10
	VPBROADCASTD 8(SI), Y11
	VPBROADCASTD 12(SI), Y12
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xc1 // {vex} vpdpwssd ymm0,ymm8,ymm9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xca // {vex} vpdpwssd ymm1,ymm8,ymm10
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xd3 // {vex} vpdpwssd ymm2,ymm8,ymm11
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xdc // {vex} vpdpwssd ymm3,ymm8,ymm12
	VPBROADCASTD 16(SI), Y13
	VPBROADCASTD 20(SI), Y14
	VPBROADCASTD 24(SI), Y15
	VPBROADCASTD 28(SI), Y9
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xe5 // {vex} vpdpwssd ymm4,ymm8,ymm13
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xee // {vex} vpdpwssd ymm5,ymm8,ymm14
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf7 // {vex} vpdpwssd ymm6,ymm8,ymm15
	BYTE $0xc4; BYTE $0xc2; BYTE $0x3d; BYTE $0x52; BYTE $0xf9 // {vex} vpdpwssd ymm7,ymm8,ymm9
	ADDQ  $32, SI

vstore:
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
	JNZ     vblk

	MOVQ SI, R13
	ADDQ BX, R10
	ADDQ $256, DX
	DECQ R9
	JNZ  vxi
	VZEROUPPER
	RET
