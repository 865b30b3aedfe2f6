package main

import "fmt"

// Encodings of the Advanced SIMD integer instructions the requantization
// epilogue needs and Go's assembler lacks (Arm ARM, A64 "Advanced SIMD
// three same", "shift by immediate" and "two-register misc" classes).

func vec3(base uint32, op string, arr string, d, n, m int) {
	word(base|uint32(m)<<16|uint32(n)<<5|uint32(d), fmt.Sprintf("%s v%d.%s, v%d.%s, v%d.%s", op, d, arr, n, arr, m, arr))
}

func sqrdmulh(d, n, m int) { vec3(0x6ea0b400, "sqrdmulh", "4s", d, n, m) }
func sqadd(d, n, m int)    { vec3(0x4ea00c00, "sqadd", "4s", d, n, m) }
func srshl(d, n, m int)    { vec3(0x4ea05400, "srshl", "4s", d, n, m) }
func sqshl(d, n, m int)    { vec3(0x4ea04c00, "sqshl", "4s", d, n, m) }
func smax16b(d, n, m int)  { vec3(0x4e206400, "smax", "16b", d, n, m) }

// sshr31 is sshr vd.4s, vn.4s, #31 (immh:immb = 64 − 31).
func sshr31(d, n int) {
	word(0x4f210400|uint32(n)<<5|uint32(d), fmt.Sprintf("sshr v%d.4s, v%d.4s, #31", d, n))
}

// sqxtn narrows with signed saturation: to16 picks .4s → .4h/.8h, else
// .8h → .8b/.16b; high is the "2" form writing the upper half.
func sqxtn(high, to16 bool, d, n int) {
	w, op := uint32(0x0e214800), "sqxtn"
	dst, src := "8b", "8h"
	if to16 {
		w |= 1 << 22
		dst, src = "4h", "4s"
	}
	if high {
		w |= 1 << 30
		op += "2"
		dst = map[string]string{"8b": "16b", "4h": "8h"}[dst]
	}
	word(w|uint32(n)<<5|uint32(d), fmt.Sprintf("%s v%d.%s, v%d.%s", op, d, dst, n, src))
}

func requantSet() {
	p(`
// func requantRowNEON(dst *int8, acc *int32, n int, bias, mult, left, right, zero, lo int32)
//
// dst[j] = clamp(zero + Requantize(acc[j]+bias, mult, left−right), lo, 127)
// for j < n (n ≥ 8; left = 0 or right = 0), bit for bit requantRow:
//
//   - left > 0: SQSHL saturates x·2^left to int32 like Requantize's clamp;
//   - SQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul for every
//     input: it computes floor((2ab + 2^31) / 2^32) = floor((ab + 2^30) /
//     2^31), saturating only MinInt32² to MaxInt32 as gemmlowp does. For
//     ab ≥ 0 gemmlowp's trunc((ab + 2^30) / 2^31) is the same floor; for
//     ab < 0 its trunc((ab + 1 − 2^30) / 2^31) is a ceiling of a negative
//     number, and ceil(m/k) = floor((m + k − 1)/k) turns it into
//     floor((ab + 2^30) / 2^31) again;
//   - RoundingDivideByPOT(x, e) is x/2^e rounded half away from zero, i.e.
//     floor((x + 2^(e−1)) / 2^e) for x ≥ 0 and floor((x + 2^(e−1) − 1) /
//     2^e) for x < 0 (its threshold is one higher for negative x). SRSHL by
//     −e computes floor((x + 2^(e−1)) / 2^e) without overflow, so it is
//     right for x ≥ 0, and for x < 0 (and e > 0) the fixup first adds
//     (x AND −e) >> 31 = −1 (the sign bit of −e is set): x − 1 gives the
//     second form. SQADD keeps MinInt32 − 1 from wrapping; for x =
//     MinInt32 both forms give −2^(31−e) anyway, since 2^(e−1) − 1 < 2^e
//     and 2^e divides 2^31. For e = 0 the mask −e is 0: no fixup, no
//     shift;
//   - zero is added with a wrapping ADD, as Go's int32 addition wraps;
//   - two SQXTN saturate to int8, which is min(·, 127) and max(·, −128),
//     and SMAX with lo ≥ −128 then gives max(min(v, 127), lo) =
//     min(max(v, lo), 127).
//
// Blocks of 16 outputs, then one of 8; a remainder below 8 recomputes the
// last 8 outputs (overlapping ones get the same values). V31 bias, V30
// mult, V29 −right, V28 zero, V27 lo (bytes), V26 left.
TEXT ·requantRowNEON(SB), NOSPLIT, $0-48
	MOVD dst+0(FP), R0
	MOVD acc+8(FP), R1
	MOVD n+16(FP), R2
	MOVW bias+24(FP), R3
	MOVW mult+28(FP), R4
	MOVW left+32(FP), R5
	MOVW right+36(FP), R6
	MOVW zero+40(FP), R7
	MOVW lo+44(FP), R8
	NEG R6, R6
	VDUP R3, V31.S4
	VDUP R4, V30.S4
	VDUP R6, V29.S4
	VDUP R7, V28.S4
	VDUP R8, V27.B16
	VDUP R5, V26.S4
	AND $7, R2, R10 // the remainder below 8
	LSR $4, R2, R9 // blocks of 16
	CBNZ R5, left
	CBZ R3, nobias`)
	requantVariant("bias", true, false)
	requantVariant("nobias", false, false)
	requantVariant("left", true, true)
}

// requantVariant emits one loop of requantRowNEON: with or without the
// bias add, with a left shift (and no rounding right shift) or without.
func requantVariant(label string, bias, left bool) {
	if label != "bias" {
		p("%s:", label)
	}
	p("\tCBZ R9, %s8", label)
	p("%s16:", label)
	requantBody(4, bias, left)
	p("\tSUBS $1, R9")
	p("\tBNE %s16", label)
	p("%s8:", label)
	p("\tTBZ $3, R2, %sLast", label)
	requantBody(2, bias, left)
	p("%sLast:", label)
	p("\tCBZ R10, %sDone", label)
	p("\t// Back up to the last 8 outputs: 8 − remainder of them again.")
	p("\tMOVD $8, R11")
	p("\tSUB R10, R11, R11")
	p("\tSUB R11, R0, R0")
	p("\tSUB R11<<2, R1, R1")
	requantBody(2, bias, left)
	p("%sDone:", label)
	p("\tRET")
}

// requantBody requantizes 4·k accumulators (k = 2 or 4) into V0 and stores
// them.
func requantBody(k int, bias, left bool) {
	regs := "[V0.S4, V1.S4]"
	if k == 4 {
		regs = "[V0.S4, V1.S4, V2.S4, V3.S4]"
	}
	p("\tVLD1.P %d(R1), %s", 16*k, regs)
	// Step by step over the k vectors: independent instructions follow
	// each other, so an in-order core need not wait for each result.
	each := func(f func(i int)) {
		for i := 0; i < k; i++ {
			f(i)
		}
	}
	if bias {
		each(func(i int) { p("\tVADD V31.S4, V%d.S4, V%d.S4", i, i) })
	}
	if left {
		each(func(i int) { sqshl(i, i, 26) })
	}
	each(func(i int) { sqrdmulh(i, i, 30) })
	if !left {
		each(func(i int) { p("\tVAND V29.B16, V%d.B16, V%d.B16", i, 4+i) })
		each(func(i int) { sshr31(4+i, 4+i) })
		each(func(i int) { sqadd(i, i, 4+i) })
		each(func(i int) { srshl(i, i, 29) })
	}
	each(func(i int) { p("\tVADD V28.S4, V%d.S4, V%d.S4", i, i) })
	for i := 0; i < k; i += 2 {
		sqxtn(false, true, i, i)
		sqxtn(true, true, i, i+1)
	}
	sqxtn(false, false, 0, 0)
	if k == 4 {
		sqxtn(true, false, 0, 2)
	}
	smax16b(0, 0, 27)
	if k == 4 {
		p("\tVST1.P [V0.B16], 16(R0)")
	} else {
		p("\tVST1.P [V0.B8], 8(R0)")
	}
}
