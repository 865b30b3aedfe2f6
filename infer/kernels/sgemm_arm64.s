//go:build gc && !purego

#include "textflag.h"

// func sgemm6x16NEON(kc int, a, b, c *float32, ldc int)
//
// V8..V31 hold the 6×16 tile (four registers per row). Each step of k
// loads 16 floats of B (V0..V3) and the 6 of A (V4, V5), broadcasts each
// of those in turn (V6, V7) and does 24 fused multiply-adds: per element
// the generic kernel's order, with the same single rounding per step that
// the Go compiler's fused `s += a*b` has on arm64. The sums are then added
// to C. Go's assembler has no vector FADD: it is encoded by hand (fadd in
// the comments), and TestARM64WordEncodings checks each encoding with
// objdump.
TEXT ·sgemm6x16NEON(SB), NOSPLIT, $0-40
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD c+24(FP), R3
	MOVD ldc+32(FP), R4
	LSL  $2, R4, R4
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16

loop:
	VLD1.P 64(R2), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 16(R1), [V4.S4]
	VLD1.P 8(R1), [V5.S2]
	VDUP   V4.S[0], V6.S4
	VFMLA  V0.S4, V6.S4, V8.S4
	VFMLA  V1.S4, V6.S4, V9.S4
	VFMLA  V2.S4, V6.S4, V10.S4
	VFMLA  V3.S4, V6.S4, V11.S4
	VDUP   V4.S[1], V7.S4
	VFMLA  V0.S4, V7.S4, V12.S4
	VFMLA  V1.S4, V7.S4, V13.S4
	VFMLA  V2.S4, V7.S4, V14.S4
	VFMLA  V3.S4, V7.S4, V15.S4
	VDUP   V4.S[2], V6.S4
	VFMLA  V0.S4, V6.S4, V16.S4
	VFMLA  V1.S4, V6.S4, V17.S4
	VFMLA  V2.S4, V6.S4, V18.S4
	VFMLA  V3.S4, V6.S4, V19.S4
	VDUP   V4.S[3], V7.S4
	VFMLA  V0.S4, V7.S4, V20.S4
	VFMLA  V1.S4, V7.S4, V21.S4
	VFMLA  V2.S4, V7.S4, V22.S4
	VFMLA  V3.S4, V7.S4, V23.S4
	VDUP   V5.S[0], V6.S4
	VFMLA  V0.S4, V6.S4, V24.S4
	VFMLA  V1.S4, V6.S4, V25.S4
	VFMLA  V2.S4, V6.S4, V26.S4
	VFMLA  V3.S4, V6.S4, V27.S4
	VDUP   V5.S[1], V7.S4
	VFMLA  V0.S4, V7.S4, V28.S4
	VFMLA  V1.S4, V7.S4, V29.S4
	VFMLA  V2.S4, V7.S4, V30.S4
	VFMLA  V3.S4, V7.S4, V31.S4
	SUBS   $1, R0, R0
	BNE    loop

	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d508 // fadd v8.4s, v8.4s, v0.4s
	WORD   $0x4e21d529 // fadd v9.4s, v9.4s, v1.4s
	WORD   $0x4e22d54a // fadd v10.4s, v10.4s, v2.4s
	WORD   $0x4e23d56b // fadd v11.4s, v11.4s, v3.4s
	VST1   [V8.S4, V9.S4, V10.S4, V11.S4], (R3)
	ADD    R4, R3, R3
	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d58c // fadd v12.4s, v12.4s, v0.4s
	WORD   $0x4e21d5ad // fadd v13.4s, v13.4s, v1.4s
	WORD   $0x4e22d5ce // fadd v14.4s, v14.4s, v2.4s
	WORD   $0x4e23d5ef // fadd v15.4s, v15.4s, v3.4s
	VST1   [V12.S4, V13.S4, V14.S4, V15.S4], (R3)
	ADD    R4, R3, R3
	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d610 // fadd v16.4s, v16.4s, v0.4s
	WORD   $0x4e21d631 // fadd v17.4s, v17.4s, v1.4s
	WORD   $0x4e22d652 // fadd v18.4s, v18.4s, v2.4s
	WORD   $0x4e23d673 // fadd v19.4s, v19.4s, v3.4s
	VST1   [V16.S4, V17.S4, V18.S4, V19.S4], (R3)
	ADD    R4, R3, R3
	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d694 // fadd v20.4s, v20.4s, v0.4s
	WORD   $0x4e21d6b5 // fadd v21.4s, v21.4s, v1.4s
	WORD   $0x4e22d6d6 // fadd v22.4s, v22.4s, v2.4s
	WORD   $0x4e23d6f7 // fadd v23.4s, v23.4s, v3.4s
	VST1   [V20.S4, V21.S4, V22.S4, V23.S4], (R3)
	ADD    R4, R3, R3
	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d718 // fadd v24.4s, v24.4s, v0.4s
	WORD   $0x4e21d739 // fadd v25.4s, v25.4s, v1.4s
	WORD   $0x4e22d75a // fadd v26.4s, v26.4s, v2.4s
	WORD   $0x4e23d77b // fadd v27.4s, v27.4s, v3.4s
	VST1   [V24.S4, V25.S4, V26.S4, V27.S4], (R3)
	ADD    R4, R3, R3
	VLD1   (R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	WORD   $0x4e20d79c // fadd v28.4s, v28.4s, v0.4s
	WORD   $0x4e21d7bd // fadd v29.4s, v29.4s, v1.4s
	WORD   $0x4e22d7de // fadd v30.4s, v30.4s, v2.4s
	WORD   $0x4e23d7ff // fadd v31.4s, v31.4s, v3.4s
	VST1   [V28.S4, V29.S4, V30.S4, V31.S4], (R3)
	RET
