//go:build gc && !purego

#include "textflag.h"

// func maxPool2x2x16NEON(r0, r1, dst *int8, blocks int)
TEXT ·maxPool2x2x16NEON(SB), NOSPLIT, $0-32
	MOVD r0+0(FP), R0
	MOVD r1+8(FP), R1
	MOVD dst+16(FP), R2
	MOVD blocks+24(FP), R3
	CBZ  R3, done

loop:
	VLD2.P 32(R0), [V0.B16, V1.B16]
	VLD2.P 32(R1), [V2.B16, V3.B16]
	WORD $0x4e216400 // smax v0.16b, v0.16b, v1.16b
	WORD $0x4e236442 // smax v2.16b, v2.16b, v3.16b
	WORD $0x4e226400 // smax v0.16b, v0.16b, v2.16b
	VST1.P [V0.B16], 16(R2)
	SUB  $1, R3
	CBNZ R3, loop

done:
	RET
