//go:build gc && !purego

#include "textflag.h"

// func maxPool2x2x16AVX2(r0, r1, dst *int8, blocks int)
TEXT ·maxPool2x2x16AVX2(SB), NOSPLIT, $0-32
	MOVQ r0+0(FP), SI
	MOVQ r1+8(FP), DI
	MOVQ dst+16(FP), DX
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JZ   done

	// Two 16-output blocks per iteration while we can (one YMM store).
loop2:
	CMPQ CX, $2
	JLT  tail
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPMAXSB (DI), Y0, Y0
	VPMAXSB 32(DI), Y1, Y1
	VPSRLW  $8, Y0, Y2
	VPSRLW  $8, Y1, Y3
	VPMAXSB Y2, Y0, Y0
	VPMAXSB Y3, Y1, Y1
	VPSLLW  $8, Y0, Y0
	VPSRAW  $8, Y0, Y0
	VPSLLW  $8, Y1, Y1
	VPSRAW  $8, Y1, Y1
	VPACKSSWB Y1, Y0, Y0 // qwords: Y0.lo-lane, Y1.lo-lane, Y0.hi-lane, Y1.hi-lane
	VPERMQ  $0xD8, Y0, Y0 // back in order
	VMOVDQU Y0, (DX)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $32, DX
	SUBQ $2, CX
	JMP  loop2

tail:
	TESTQ CX, CX
	JZ   vzero
	VMOVDQU (SI), Y0
	VPMAXSB (DI), Y0, Y0
	VPSRLW  $8, Y0, Y2
	VPMAXSB Y2, Y0, Y0
	VPSLLW  $8, Y0, Y0
	VPSRAW  $8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSWB X1, X0, X0
	VMOVDQU X0, (DX)

vzero:
	VZEROUPPER
done:
	RET
