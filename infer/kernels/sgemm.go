package kernels

import "sync"

// The float GEMM: the one matrix multiply of vggedge's float paths (the fast
// float forward that calibration, `reduce` and fp32 evaluation run, and the
// trainer in infer/train). It is a packed GEMM in the style of
// GotoBLAS/BLIS: op(B) is packed into panels of sgemmNR columns and op(A)
// into panels of sgemmMR rows, k-major, so the micro-kernel streams both
// from contiguous memory and keeps an sgemmMR×sgemmNR tile of C in
// registers. Packing also absorbs transposition: one kernel serves A·B,
// A·Bᵀ and Aᵀ·B.
//
// # Numerics
//
// Unlike the int8 kernels, the float GEMM is not bit-exact across
// platforms. For every element, and every block of sgemmKC steps of k, the
// micro-kernel sums the products in increasing k, starting from zero, and
// then adds the block's sum to C. The SIMD kernels (AVX2+FMA on amd64, NEON
// FMLA on arm64) round once per step (a fused multiply-add); the generic Go
// kernel rounds the way the Go compiler compiles `s += a*b`: fused on arm64
// (and other FMA targets, and amd64 with GOAMD64=v3), a multiply and an add
// elsewhere. So on arm64 NEON and generic agree bit for bit, and on amd64
// the AVX2 kernel is the generic one's order with fewer roundings. Either
// way each result is within
//
//	|C − C_exact| ≤ γ · Σ_k |A[i,k]|·|B[k,j]|   (+ |C₀| for an accumulate)
//
// with γ = (k' + 2)·u, u = 2⁻²⁴ the float32 unit roundoff and k' the
// number of terms summed serially (at most sgemmKC + k/sgemmKC): the
// standard bound for recursive summation (Higham, Accuracy and Stability of
// Numerical Algorithms, §3.1). The tests check the SIMD kernels against the
// generic one with twice that bound (both are within it of the exact value).

// Float is the element type of the float GEMM: float32 is what runs (and
// what the SIMD kernels compute); float64 serves tests that need more
// precision than the algorithm, such as the trainer's gradient checks.
type Float interface{ ~float32 | ~float64 }

const (
	sgemmMR = 6   // rows of a micro-tile: 12 AVX2 or 24 NEON accumulators
	sgemmNR = 16  // columns of a micro-tile: two AVX registers, four NEON ones
	sgemmKC = 256 // depth of one packed block: an MR×KC A panel and a KC×NR B panel stay in L1
	sgemmNC = 512 // columns packed at once: KC×NC of B stays in L2
)

// Matrix is a row-major GEMM operand with leading dimension Stride. When
// Trans is set the operand is the transpose of what is stored: element
// (i, j) is Data[j*Stride+i].
type Matrix[T Float] struct {
	Data   []T
	Stride int
	Trans  bool
}

// At is element (i, j) of the operand.
func (m Matrix[T]) At(i, j int) T {
	if m.Trans {
		return m.Data[j*m.Stride+i]
	}
	return m.Data[i*m.Stride+j]
}

// GemmBuffers holds the packing buffers of GemmFloat, reused across calls.
// The zero value is ready; one goroutine at a time may use it.
type GemmBuffers[T Float] struct {
	a, b []T
	tile [sgemmMR * sgemmNR]T
}

// GemmFloat computes C = op(A)·op(B), or C += op(A)·op(B) when acc is set.
// C is m×n with leading dimension ldc; op(A) is m×k and op(B) k×n. It
// allocates only to grow buf's packing buffers (at most KC·(m+NC) values
// each, rounded up to whole panels).
func GemmFloat[T Float](m, n, k int, a, b Matrix[T], c []T, ldc int, acc bool, buf *GemmBuffers[T]) {
	sgemm(m, n, k, a, nil, b, c, ldc, acc, buf)
}

// PackedA is op(A) packed once in GemmFloat's layout, for a caller that
// multiplies the same A (a layer's weights) by many B: GemmFloatPacked
// then skips packing it on every call, and any number of goroutines may
// share it.
type PackedA[T Float] struct {
	m, k int
	data []T
}

// PackA packs the m×k op(A) into p, reusing p's memory when it is large
// enough, with up to threads goroutines (one KC-deep block each at a time).
func (p *PackedA[T]) PackA(m, k int, a Matrix[T], threads int) {
	mPanels := (m + sgemmMR - 1) / sgemmMR
	p.m, p.k = m, k
	p.data = sgemmGrow(p.data, mPanels*sgemmMR*k)
	blocks := (k + sgemmKC - 1) / sgemmKC
	pack := func(blk int) {
		pc := blk * sgemmKC
		kc := min(sgemmKC, k-pc)
		sgemmPackA(p.data[mPanels*sgemmMR*pc:mPanels*sgemmMR*(pc+kc)], a, pc, kc, m)
	}
	if threads <= 1 || blocks <= 1 {
		for blk := range blocks {
			pack(blk)
		}
		return
	}
	var wg sync.WaitGroup
	for t := range min(threads, blocks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for blk := t; blk < blocks; blk += threads {
				pack(blk)
			}
		}()
	}
	wg.Wait()
}

// GemmFloatPacked is GemmFloat with op(A) packed by PackA: the same
// arithmetic, bit for bit.
func GemmFloatPacked[T Float](a *PackedA[T], n int, b Matrix[T], c []T, ldc int, acc bool, buf *GemmBuffers[T]) {
	sgemm(a.m, n, a.k, Matrix[T]{}, a.data, b, c, ldc, acc, buf)
}

// sgemm is GemmFloat; when packed is not nil it holds op(A) as PackA
// writes it and a is unused.
func sgemm[T Float](m, n, k int, a Matrix[T], packed []T, b Matrix[T], c []T, ldc int, acc bool, buf *GemmBuffers[T]) {
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
	kernel := sgemmKernelFor[T]()
	mPanels := (m + sgemmMR - 1) / sgemmMR
	for jc := 0; jc < n; jc += sgemmNC {
		nc := min(sgemmNC, n-jc)
		nPanels := (nc + sgemmNR - 1) / sgemmNR
		for pc := 0; pc < k; pc += sgemmKC {
			kc := min(sgemmKC, k-pc)
			buf.b = sgemmGrow(buf.b, nPanels*kc*sgemmNR)
			sgemmPackB(buf.b, b, pc, kc, jc, nc)
			var pa []T
			if packed != nil {
				pa = packed[mPanels*sgemmMR*pc : mPanels*sgemmMR*(pc+kc)]
			} else {
				buf.a = sgemmGrow(buf.a, mPanels*kc*sgemmMR)
				sgemmPackA(buf.a, a, pc, kc, m)
				pa = buf.a
			}
			for jr := 0; jr < nc; jr += sgemmNR {
				nn := min(sgemmNR, nc-jr)
				pb := buf.b[(jr/sgemmNR)*kc*sgemmNR : (jr/sgemmNR+1)*kc*sgemmNR]
				for ir := 0; ir < m; ir += sgemmMR {
					mm := min(sgemmMR, m-ir)
					pp := pa[(ir/sgemmMR)*kc*sgemmMR : (ir/sgemmMR+1)*kc*sgemmMR]
					off := ir*ldc + jc + jr
					if mm == sgemmMR && nn == sgemmNR {
						kernel(kc, pp, pb, c[off:off+(sgemmMR-1)*ldc+sgemmNR], ldc)
						continue
					}
					// Edge tile: compute the full tile aside and add the
					// part that exists.
					t := buf.tile[:]
					clear(t)
					kernel(kc, pp, pb, t, sgemmNR)
					for i := 0; i < mm; i++ {
						row := c[off+i*ldc : off+i*ldc+nn]
						for j := range row {
							row[j] += t[i*sgemmNR+j]
						}
					}
				}
			}
		}
	}
}

func sgemmGrow[T Float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// sgemmPackA writes rows [0, m) × columns [pc, pc+kc) of op(A) as panels
// of MR rows: dst[panel*kc*MR + kk*MR + r], zero past the last row.
func sgemmPackA[T Float](dst []T, a Matrix[T], pc, kc, m int) {
	for ir := 0; ir < m; ir += sgemmMR {
		p := dst[(ir/sgemmMR)*kc*sgemmMR : (ir/sgemmMR+1)*kc*sgemmMR]
		mm := min(sgemmMR, m-ir)
		if mm < sgemmMR {
			clear(p)
		}
		for r := 0; r < mm; r++ {
			if a.Trans {
				for kk := 0; kk < kc; kk++ {
					p[kk*sgemmMR+r] = a.Data[(pc+kk)*a.Stride+ir+r]
				}
			} else {
				row := a.Data[(ir+r)*a.Stride+pc : (ir+r)*a.Stride+pc+kc]
				for kk, v := range row {
					p[kk*sgemmMR+r] = v
				}
			}
		}
	}
}

// sgemmPackB writes rows [pc, pc+kc) × columns [jc, jc+nc) of op(B) as
// panels of NR columns: dst[panel*kc*NR + kk*NR + j], zero past the last
// column.
func sgemmPackB[T Float](dst []T, b Matrix[T], pc, kc, jc, nc int) {
	for jr := 0; jr < nc; jr += sgemmNR {
		p := dst[(jr/sgemmNR)*kc*sgemmNR : (jr/sgemmNR+1)*kc*sgemmNR]
		nn := min(sgemmNR, nc-jr)
		if nn < sgemmNR {
			clear(p)
		}
		if b.Trans {
			for j := 0; j < nn; j++ {
				col := b.Data[(jc+jr+j)*b.Stride+pc : (jc+jr+j)*b.Stride+pc+kc]
				for kk, v := range col {
					p[kk*sgemmNR+j] = v
				}
			}
			continue
		}
		for kk := 0; kk < kc; kk++ {
			copy(p[kk*sgemmNR:kk*sgemmNR+nn], b.Data[(pc+kk)*b.Stride+jc+jr:])
		}
	}
}

// sgemmKernelF32 is the SIMD float32 micro-kernel, nil where there is none
// (set by sgemm_amd64.go and sgemm_arm64.go; see sgemm_noasm.go).
// sgemmKernelName names it for GemmFloatKernel.
//
// A micro-kernel adds the product of an MR×kc packed A panel and a kc×NR
// packed B panel to the MR×NR tile of c with row stride ldc.

// sgemmKernelFor returns the micro-kernel for T: the SIMD one for float32
// where the CPU has it, the generic one otherwise. A func value converts to
// an interface without allocating.
func sgemmKernelFor[T Float]() func(kc int, a, b, c []T, ldc int) {
	if sgemmKernelF32 != nil {
		if f, ok := any(sgemmKernelF32).(func(int, []T, []T, []T, int)); ok {
			return f
		}
	}
	return sgemmKernelGo[T]
}

// GemmFloatKernel names the float32 micro-kernel GemmFloat runs on this
// CPU: "avx2+fma", "neon" or "go".
func GemmFloatKernel() string {
	if sgemmKernelF32 == nil {
		return "go"
	}
	return sgemmKernelName
}
