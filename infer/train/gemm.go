package train

// A packed GEMM in the style of GotoBLAS/BLIS: op(B) is packed into panels
// of nr columns and op(A) into panels of mr rows, k-major, so the
// micro-kernel streams both from contiguous memory and keeps an mr×nr tile
// of C in registers. Packing also absorbs transposition: one kernel serves
// A·B, A·Bᵀ and Aᵀ·B.

// float is the element type of the layer code: float32 to train, float64 to
// check gradients.
type float interface{ ~float32 | ~float64 }

const (
	mr      = 4   // rows of a micro-tile
	nr      = 16  // columns of a micro-tile: two 8-float AVX registers
	kcBlock = 256 // depth of one packed block: an mr×kc A panel and a kc×nr B panel stay in L1
	ncBlock = 512 // columns packed at once: kc×nc of B stays in L2
)

// mat is a row-major matrix operand with leading dimension ld. When t is
// set the operand is the transpose of what is stored: element (i, j) is
// d[j*ld+i].
type mat[T float] struct {
	d  []T
	ld int
	t  bool
}

func (m mat[T]) at(i, j int) T {
	if m.t {
		return m.d[j*m.ld+i]
	}
	return m.d[i*m.ld+j]
}

// gemmBuf holds the packing buffers, reused across calls.
type gemmBuf[T float] struct {
	a, b []T
	tile [mr * nr]T
}

// gemm computes C = op(A)·op(B), or C += op(A)·op(B) when acc is set. C is
// m×n with leading dimension ldc; op(A) is m×k and op(B) k×n.
func gemm[T float](m, n, k int, a, b mat[T], c []T, ldc int, acc bool, buf *gemmBuf[T]) {
	if m <= 0 || n <= 0 {
		return
	}
	if !acc {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	if k <= 0 {
		return
	}
	kernel := kernelFor[T]()
	mPanels := (m + mr - 1) / mr
	for jc := 0; jc < n; jc += ncBlock {
		nc := min(ncBlock, n-jc)
		nPanels := (nc + nr - 1) / nr
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			buf.b = grow(buf.b, nPanels*kc*nr)
			packB(buf.b, b, pc, kc, jc, nc)
			buf.a = grow(buf.a, mPanels*kc*mr)
			packA(buf.a, a, pc, kc, m)
			for jr := 0; jr < nc; jr += nr {
				nn := min(nr, nc-jr)
				pb := buf.b[(jr/nr)*kc*nr : (jr/nr+1)*kc*nr]
				for ir := 0; ir < m; ir += mr {
					mm := min(mr, m-ir)
					pa := buf.a[(ir/mr)*kc*mr : (ir/mr+1)*kc*mr]
					off := ir*ldc + jc + jr
					if mm == mr && nn == nr {
						kernel(kc, pa, pb, c[off:off+(mr-1)*ldc+nr], ldc)
						continue
					}
					// Edge tile: compute the full tile aside and add the
					// part that exists.
					t := buf.tile[:]
					clear(t)
					kernel(kc, pa, pb, t, nr)
					for i := 0; i < mm; i++ {
						row := c[off+i*ldc : off+i*ldc+nn]
						for j := range row {
							row[j] += t[i*nr+j]
						}
					}
				}
			}
		}
	}
}

func grow[T float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// packA writes rows [0, m) × columns [pc, pc+kc) of op(A) as panels of mr
// rows: dst[panel*kc*mr + kk*mr + r], zero past the last row.
func packA[T float](dst []T, a mat[T], pc, kc, m int) {
	for ir := 0; ir < m; ir += mr {
		p := dst[(ir/mr)*kc*mr : (ir/mr+1)*kc*mr]
		mm := min(mr, m-ir)
		if mm < mr {
			clear(p)
		}
		for r := 0; r < mm; r++ {
			if a.t {
				for kk := 0; kk < kc; kk++ {
					p[kk*mr+r] = a.d[(pc+kk)*a.ld+ir+r]
				}
			} else {
				row := a.d[(ir+r)*a.ld+pc : (ir+r)*a.ld+pc+kc]
				for kk, v := range row {
					p[kk*mr+r] = v
				}
			}
		}
	}
}

// packB writes rows [pc, pc+kc) × columns [jc, jc+nc) of op(B) as panels of
// nr columns: dst[panel*kc*nr + kk*nr + j], zero past the last column.
func packB[T float](dst []T, b mat[T], pc, kc, jc, nc int) {
	for jr := 0; jr < nc; jr += nr {
		p := dst[(jr/nr)*kc*nr : (jr/nr+1)*kc*nr]
		nn := min(nr, nc-jr)
		if nn < nr {
			clear(p)
		}
		if b.t {
			for j := 0; j < nn; j++ {
				col := b.d[(jc+jr+j)*b.ld+pc : (jc+jr+j)*b.ld+pc+kc]
				for kk, v := range col {
					p[kk*nr+j] = v
				}
			}
			continue
		}
		for kk := 0; kk < kc; kk++ {
			copy(p[kk*nr:kk*nr+nn], b.d[(pc+kk)*b.ld+jc+jr:])
		}
	}
}

// kernelFor returns the micro-kernel for T: the assembly one for float32
// where the CPU has it, the portable one otherwise. It is chosen once per
// gemm call; a func value converts to an interface without allocating.
func kernelFor[T float]() func(kc int, a, b, c []T, ldc int) {
	if kernelF32 != nil {
		if f, ok := any(kernelF32).(func(int, []T, []T, []T, int)); ok {
			return f
		}
	}
	return kernelGo[T]
}

// kernelGo is the portable micro-kernel: it adds the product of an mr×kc A
// panel and a kc×nr B panel to the mr×nr tile of c with row stride ldc. It works on 2×4 sub-tiles, whose
// eight accumulators and six operands fit the 16 registers of amd64 and
// leave the compiler nothing to spill.
func kernelGo[T float](kc int, a, b, c []T, ldc int) {
	a = a[:kc*mr]
	b = b[:kc*nr]
	for i := 0; i < mr; i += 2 {
		for j := 0; j < nr; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13 T
			for kk := 0; kk < kc; kk++ {
				aa := a[kk*mr+i : kk*mr+i+2 : kk*mr+i+2]
				bb := b[kk*nr+j : kk*nr+j+4 : kk*nr+j+4]
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
