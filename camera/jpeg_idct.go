package camera

// The inverse DCT is the Loeffler–Ligtenberg–Moschytz factorisation (12
// multiplies per 1-D pass) in 13-bit fixed point, the "islow" method of the
// IJG's jidctint.c and libjpeg-turbo's default: two passes, columns then
// rows, with 2 extra bits of precision kept between them. Constants are
// round(x·2^13).
const (
	idctConstBits = 13
	idctPass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// clampU8 saturates v to 0..255.
func clampU8(v int32) uint8 {
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// idctDC writes a block whose AC coefficients are all zero: one value.
func idctDC(dc int32, dst []byte, stride int) {
	v := clampU8((dc+4)>>3 + 128)
	_ = dst[7*stride+7]
	for r := range 8 {
		row := dst[r*stride : r*stride+8]
		for i := range row {
			row[i] = v
		}
	}
}

// idct transforms the dequantized coefficients blk (row-major) into
// pixels, level-shifted by 128 and clamped, written to dst with rows
// stride bytes apart.
func idct(blk *[64]int32, dst []byte, stride int) {
	var ws [64]int32
	// Pass 1: columns, results scaled up by 2^pass1Bits.
	for col := range 8 {
		in := blk[col:]
		if in[8] == 0 && in[16] == 0 && in[24] == 0 && in[32] == 0 && in[40] == 0 && in[48] == 0 && in[56] == 0 {
			dc := in[0] << idctPass1Bits
			for r := range 8 {
				ws[r*8+col] = dc
			}
			continue
		}
		z2, z3 := in[16], in[48]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 - z3*fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		z2, z3 = in[0], in[32]
		tmp0 := (z2 + z3) << idctConstBits
		tmp1 := (z2 - z3) << idctConstBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		t0, t1, t2, t3 := idctOdd(in[56], in[40], in[24], in[8])

		const sh = idctConstBits - idctPass1Bits
		const rnd = 1 << (sh - 1)
		ws[0*8+col] = (tmp10 + t3 + rnd) >> sh
		ws[7*8+col] = (tmp10 - t3 + rnd) >> sh
		ws[1*8+col] = (tmp11 + t2 + rnd) >> sh
		ws[6*8+col] = (tmp11 - t2 + rnd) >> sh
		ws[2*8+col] = (tmp12 + t1 + rnd) >> sh
		ws[5*8+col] = (tmp12 - t1 + rnd) >> sh
		ws[3*8+col] = (tmp13 + t0 + rnd) >> sh
		ws[4*8+col] = (tmp13 - t0 + rnd) >> sh
	}
	// Pass 2: rows, removing the pass-1 scale and the DCT's factor 8, and
	// adding the level shift 128 before the final rounding shift.
	_ = dst[7*stride+7]
	for r := range 8 {
		in := ws[r*8 : r*8+8]
		out := dst[r*stride : r*stride+8]
		const sh = idctConstBits + idctPass1Bits + 3
		const bias = 128<<sh + 1<<(sh-1)
		if in[1] == 0 && in[2] == 0 && in[3] == 0 && in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] == 0 {
			v := clampU8((in[0]+1<<(idctPass1Bits+2))>>(idctPass1Bits+3) + 128)
			for i := range out {
				out[i] = v
			}
			continue
		}
		z2, z3 := in[2], in[6]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 - z3*fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (in[0] + in[4]) << idctConstBits
		tmp1 := (in[0] - in[4]) << idctConstBits
		tmp0 += bias
		tmp1 += bias
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		t0, t1, t2, t3 := idctOdd(in[7], in[5], in[3], in[1])

		out[0] = clampU8((tmp10 + t3) >> sh)
		out[7] = clampU8((tmp10 - t3) >> sh)
		out[1] = clampU8((tmp11 + t2) >> sh)
		out[6] = clampU8((tmp11 - t2) >> sh)
		out[2] = clampU8((tmp12 + t1) >> sh)
		out[5] = clampU8((tmp12 - t1) >> sh)
		out[3] = clampU8((tmp13 + t0) >> sh)
		out[4] = clampU8((tmp13 - t0) >> sh)
	}
}

// idctOdd is the odd half of the 1-D transform (inputs 7, 5, 3, 1).
func idctOdd(i7, i5, i3, i1 int32) (t0, t1, t2, t3 int32) {
	z1 := i7 + i1
	z2 := i5 + i3
	z3 := i7 + i3
	z4 := i5 + i1
	z5 := (z3 + z4) * fix1_175875602
	t0 = i7 * fix0_298631336
	t1 = i5 * fix2_053119869
	t2 = i3 * fix3_072711026
	t3 = i1 * fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4
	return
}
