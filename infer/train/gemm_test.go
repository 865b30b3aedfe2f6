package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice[T float](r *rand.Rand, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T(r.NormFloat64())
	}
	return s
}

// naiveGemm is the definition, summed in float64.
func naiveGemm[T float](m, n, k int, a, b mat[T], c []T, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			if acc {
				s = float64(c[i*ldc+j])
			}
			for p := 0; p < k; p++ {
				s += float64(a.at(i, p)) * float64(b.at(p, j))
			}
			c[i*ldc+j] = T(s)
		}
	}
}

// operand stores an r×c matrix (transposed when t) in a buffer with some
// slack in its leading dimension, as sub-matrices have.
func operand[T float](rng *rand.Rand, r, c int, t bool) mat[T] {
	rows, cols := r, c
	if t {
		rows, cols = c, r
	}
	ld := cols + 3
	return mat[T]{d: randSlice[T](rng, rows*ld), ld: ld, t: t}
}

func TestGemmMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Shapes cover edge tiles in m and n, several k blocks and n blocks.
	shapes := [][3]int{{1, 1, 1}, {4, 16, 1}, {5, 17, 3}, {3, 15, 300}, {16, 784, 144}, {9, 530, 20}, {144, 49, 16}, {2, 3, 0}}
	for _, s := range shapes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					m, n, k := s[0], s[1], s[2]
					name := fmt.Sprintf("%dx%dx%d/ta=%v/tb=%v/acc=%v", m, n, k, ta, tb, acc)
					a, b := operand[float64](rng, m, k, ta), operand[float64](rng, k, n, tb)
					ldc := n + 2
					c := randSlice[float64](rng, m*ldc)
					want := append([]float64(nil), c...)
					naiveGemm(m, n, k, a, b, want, ldc, acc)
					var buf gemmBuf[float64]
					gemm(m, n, k, a, b, c, ldc, acc, &buf)
					for i := range c {
						if math.Abs(c[i]-want[i]) > 1e-12*(1+math.Abs(want[i]))*float64(k+1) {
							t.Fatalf("%s: c[%d] = %g, want %g", name, i, c[i], want[i])
						}
					}

					// float32, with the assembly kernel where there is one.
					a32 := mat[float32]{d: to32(a.d), ld: a.ld, t: ta}
					b32 := mat[float32]{d: to32(b.d), ld: b.ld, t: tb}
					c32 := to32(c)
					want32 := append([]float32(nil), c32...)
					naiveGemm(m, n, k, a32, b32, want32, ldc, acc)
					var buf32 gemmBuf[float32]
					gemm(m, n, k, a32, b32, c32, ldc, acc, &buf32)
					for i := range c32 {
						if d := math.Abs(float64(c32[i] - want32[i])); d > 1e-5*math.Sqrt(float64(k+1))*(1+math.Abs(float64(want32[i]))) {
							t.Fatalf("%s float32: c[%d] = %g, want %g", name, i, c32[i], want32[i])
						}
					}
				}
			}
		}
	}
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, v := range s {
		d[i] = float32(v)
	}
	return d
}

// On small integers every product and sum is exact, so the assembly kernel
// (fused multiply-adds) and the portable one must agree bit for bit.
func TestKernelAsmEqualsGoOnExactData(t *testing.T) {
	if kernelF32 == nil {
		t.Skip("no assembly kernel on this CPU")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kc := range []int{1, 2, 7, 256} {
		a, b := make([]float32, kc*mr), make([]float32, kc*nr)
		for i := range a {
			a[i] = float32(rng.IntN(17) - 8)
		}
		for i := range b {
			b[i] = float32(rng.IntN(17) - 8)
		}
		ldc := nr + 5
		c1 := make([]float32, mr*ldc)
		for i := range c1 {
			c1[i] = float32(rng.IntN(100))
		}
		c2 := append([]float32(nil), c1...)
		kernelF32(kc, a, b, c1, ldc)
		kernelGo(kc, a, b, c2, ldc)
		for i := range c1 {
			if c1[i] != c2[i] {
				t.Fatalf("kc %d: c[%d]: asm %g, Go %g", kc, i, c1[i], c2[i])
			}
		}
	}
}

func benchGemm(bm *testing.B, m, n, k int, kern bool) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := operand[float32](rng, m, k, false), operand[float32](rng, k, n, false)
	c := make([]float32, m*n)
	var buf gemmBuf[float32]
	saved := kernelF32
	if !kern {
		kernelF32 = nil
	}
	defer func() { kernelF32 = saved }()
	for bm.Loop() {
		gemm(m, n, k, a, b, c, n, false, &buf)
	}
	bm.ReportMetric(float64(bm.N)*float64(m*n*k)/bm.Elapsed().Seconds()/1e9, "GMAC/s")
}

// The shapes of a 16→16 3x3 convolution on 28x28: forward, weight gradient.
func BenchmarkGemmConvForward(b *testing.B)    { benchGemm(b, 16, 784, 144, true) }
func BenchmarkGemmConvForwardGo(b *testing.B)  { benchGemm(b, 16, 784, 144, false) }
func BenchmarkGemmConvWeightGrad(b *testing.B) { benchGemm(b, 16, 144, 784, true) }
func BenchmarkGemmSquare256(b *testing.B)      { benchGemm(b, 256, 256, 256, true) }
