package kernels

// sgemmKernelGo is the generic micro-kernel, the reference of the SIMD
// ones: it adds the product of an MR×kc A panel and a kc×NR B panel to the
// MR×NR tile of c with row stride ldc, each element summed from zero in
// increasing k and then added to c. It works on 2×4 sub-tiles, whose eight
// accumulators and six operands fit the 16 registers of amd64 and leave the
// compiler nothing to spill.
func sgemmKernelGo[T Float](kc int, a, b, c []T, ldc int) {
	a = a[:kc*sgemmMR]
	b = b[:kc*sgemmNR]
	for i := 0; i < sgemmMR; i += 2 {
		for j := 0; j < sgemmNR; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13 T
			for kk := 0; kk < kc; kk++ {
				aa := a[kk*sgemmMR+i : kk*sgemmMR+i+2 : kk*sgemmMR+i+2]
				bb := b[kk*sgemmNR+j : kk*sgemmNR+j+4 : kk*sgemmNR+j+4]
				a0, a1 := aa[0], aa[1]
				b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
			}
			r0 := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			r1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4 : (i+1)*ldc+j+4]
			r0[0] += c00
			r0[1] += c01
			r0[2] += c02
			r0[3] += c03
			r1[0] += c10
			r1[1] += c11
			r1[2] += c12
			r1[3] += c13
		}
	}
}
