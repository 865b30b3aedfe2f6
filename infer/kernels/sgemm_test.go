package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The float GEMM's tolerance (see sgemm.go): every float32 result is within
// γ·(Σ_k |A[i,k]|·|B[k,j]| + |C₀|) of the exact value, with γ = (k'+2)·2⁻²⁴
// and k' the longest serial sum, at most KC terms in a block plus one add
// per block. The SIMD kernel and the generic one may each be that far off,
// so they are compared with twice the bound.
func sgemmGamma(k int) float64 {
	terms := min(k, sgemmKC) + (k+sgemmKC-1)/sgemmKC + 1
	return float64(terms+2) * 0x1p-24
}

func randMatrix(rng *rand.Rand, r, c int, trans bool) Matrix[float32] {
	rows, cols := r, c
	if trans {
		rows, cols = c, r
	}
	ld := cols + 3 // slack in the leading dimension, as sub-matrices have
	d := make([]float32, rows*ld)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return Matrix[float32]{Data: d, Stride: ld, Trans: trans}
}

// sgemmExact is the definition in float64 (exact products of float32s,
// float64 sums) and the bound's Σ|a||b| + |C₀| for each element.
func sgemmExact(m, n, k int, a, b Matrix[float32], c []float32, ldc int, acc bool) (want, mag []float64) {
	want, mag = make([]float64, len(c)), make([]float64, len(c))
	for i := range c {
		want[i] = float64(c[i])
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			if acc {
				s, g = float64(c[i*ldc+j]), math.Abs(float64(c[i*ldc+j]))
			}
			for p := 0; p < k; p++ {
				ab := float64(a.At(i, p)) * float64(b.At(p, j))
				s += ab
				g += math.Abs(ab)
			}
			want[i*ldc+j], mag[i*ldc+j] = s, g
		}
	}
	return want, mag
}

// withFloatKernel runs f with the float32 micro-kernel set to kern (nil: the
// generic one).
func withFloatKernel(kern func(int, []float32, []float32, []float32, int), f func()) {
	saved := sgemmKernelF32
	sgemmKernelF32 = kern
	defer func() { sgemmKernelF32 = saved }()
	f()
}

// Shapes with tails in m (not a multiple of 4) and n (of 16), several k
// blocks (k > 256) and n blocks (n > 512), and the degenerate ones.
var sgemmShapes = [][3]int{
	{1, 1, 1}, {4, 16, 1}, {5, 17, 3}, {3, 15, 300}, {16, 784, 144}, {9, 530, 20},
	{144, 49, 16}, {2, 3, 0}, {0, 5, 5}, {7, 1, 513}, {64, 33, 27}, {13, 1030, 70},
}

func TestGemmFloatWithinBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kernels := []struct {
		name string
		kern func(int, []float32, []float32, []float32, int)
	}{{"generic", nil}, {GemmFloatKernel(), sgemmKernelF32}}
	for _, kn := range kernels {
		if kn.name != "generic" && kn.kern == nil {
			continue
		}
		for _, s := range sgemmShapes {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						m, n, k := s[0], s[1], s[2]
						name := fmt.Sprintf("%s/%dx%dx%d/ta=%v/tb=%v/acc=%v", kn.name, m, n, k, ta, tb, acc)
						a, b := randMatrix(rng, m, k, ta), randMatrix(rng, k, n, tb)
						ldc := n + 2
						c := make([]float32, m*ldc+1)
						for i := range c {
							c[i] = float32(rng.NormFloat64())
						}
						want, mag := sgemmExact(m, n, k, a, b, c, ldc, acc)
						var buf GemmBuffers[float32]
						withFloatKernel(kn.kern, func() { GemmFloat(m, n, k, a, b, c, ldc, acc, &buf) })
						g := sgemmGamma(k)
						for i := range c {
							if d := math.Abs(float64(c[i]) - want[i]); d > g*mag[i]+1e-30 {
								t.Fatalf("%s: c[%d] = %g, want %g (error %g > bound %g)", name, i, c[i], want[i], d, g*mag[i])
							}
						}
					}
				}
			}
		}
	}
}

// The float64 instantiation (the trainer's gradient checks) is accurate to
// float64 rounding.
func TestGemmFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m, n, k := 9, 37, 300
	a := make([]float64, m*k)
	b := make([]float64, n*k)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	for i := range b {
		b[i] = rng.NormFloat64()
	}
	c := make([]float64, m*n)
	var buf GemmBuffers[float64]
	GemmFloat(m, n, k, Matrix[float64]{Data: a, Stride: k}, Matrix[float64]{Data: b, Stride: k, Trans: true}, c, n, false, &buf)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			for p := 0; p < k; p++ {
				s += a[i*k+p] * b[j*k+p]
				g += math.Abs(a[i*k+p] * b[j*k+p])
			}
			if d := math.Abs(c[i*n+j] - s); d > 1e-13*g {
				t.Fatalf("c[%d,%d] = %g, want %g", i, j, c[i*n+j], s)
			}
		}
	}
}

// The SIMD micro-kernel against the generic one. On small integers every
// product and sum is exact, so they agree bit for bit everywhere; on random
// data within twice the bound, and on arm64 bit for bit (the Go compiler
// fuses the generic kernel's multiply-adds there, as FMLA does).
func TestGemmFloatKernelMatchesGeneric(t *testing.T) {
	if sgemmKernelF32 == nil {
		t.Skip("no SIMD float kernel in this build or on this CPU")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, exact := range []bool{true, false} {
		for _, kc := range []int{1, 2, 7, 255, 256} {
			a, b := make([]float32, kc*sgemmMR), make([]float32, kc*sgemmNR)
			for i := range a {
				a[i] = float32(rng.IntN(17) - 8)
				if !exact {
					a[i] = float32(rng.NormFloat64())
				}
			}
			for i := range b {
				b[i] = float32(rng.IntN(17) - 8)
				if !exact {
					b[i] = float32(rng.NormFloat64())
				}
			}
			ldc := sgemmNR + 5
			c1 := make([]float32, sgemmMR*ldc)
			for i := range c1 {
				c1[i] = float32(rng.IntN(100))
			}
			c0 := append([]float32(nil), c1...)
			c2 := append([]float32(nil), c1...)
			sgemmKernelF32(kc, a, b, c1, ldc)
			sgemmKernelGo(kc, a, b, c2, ldc)
			for i := range c1 {
				r, col := i/ldc, i%ldc
				if col >= sgemmNR {
					if c1[i] != c0[i] {
						t.Fatalf("kc %d: SIMD kernel wrote c[%d] outside its tile", kc, i)
					}
					continue
				}
				if exact || runtime.GOARCH == "arm64" {
					if c1[i] != c2[i] {
						t.Fatalf("exact=%v kc %d: c[%d]: SIMD %g, generic %g", exact, kc, i, c1[i], c2[i])
					}
					continue
				}
				mag := math.Abs(float64(c0[i]))
				for p := 0; p < kc; p++ {
					mag += math.Abs(float64(a[p*sgemmMR+r]) * float64(b[p*sgemmNR+col]))
				}
				if d := math.Abs(float64(c1[i] - c2[i])); d > 2*sgemmGamma(kc)*mag {
					t.Fatalf("kc %d: c[%d]: SIMD %g, generic %g (differ by %g > %g)", kc, i, c1[i], c2[i], d, 2*sgemmGamma(kc)*mag)
				}
			}
		}
	}
}

// A full GEMM with the SIMD kernel against the same GEMM with the generic
// one, on the shapes with tails.
func TestGemmFloatSIMDMatchesGenericGemm(t *testing.T) {
	if sgemmKernelF32 == nil {
		t.Skip("no SIMD float kernel in this build or on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range sgemmShapes {
		m, n, k := s[0], s[1], s[2]
		a, b := randMatrix(rng, m, k, false), randMatrix(rng, k, n, true)
		c1 := make([]float32, m*n)
		c2 := make([]float32, m*n)
		var buf GemmBuffers[float32]
		GemmFloat(m, n, k, a, b, c1, n, false, &buf)
		withFloatKernel(nil, func() { GemmFloat(m, n, k, a, b, c2, n, false, &buf) })
		_, mag := sgemmExact(m, n, k, a, b, c1, n, false)
		for i := range c1 {
			d := math.Abs(float64(c1[i] - c2[i]))
			if runtime.GOARCH == "arm64" && d != 0 || d > 2*sgemmGamma(k)*mag[i] {
				t.Fatalf("%dx%dx%d: c[%d]: SIMD %g, generic %g", m, n, k, i, c1[i], c2[i])
			}
		}
	}
}

func TestGemmFloatAllocatesOnlyToGrow(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m, n, k := 20, 600, 300
	a, b := randMatrix(rng, m, k, false), randMatrix(rng, k, n, false)
	c := make([]float32, m*n)
	var buf GemmBuffers[float32]
	GemmFloat(m, n, k, a, b, c, n, false, &buf)
	if got := testing.AllocsPerRun(3, func() { GemmFloat(m, n, k, a, b, c, n, true, &buf) }); got != 0 {
		t.Errorf("%v allocations per call with warm buffers", got)
	}
}

func benchGemmFloat(bm *testing.B, m, n, k int, generic bool) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := randMatrix(rng, m, k, false), randMatrix(rng, k, n, false)
	c := make([]float32, m*n)
	var buf GemmBuffers[float32]
	kern := sgemmKernelF32
	if generic {
		kern = nil
	}
	withFloatKernel(kern, func() {
		for bm.Loop() {
			GemmFloat(m, n, k, a, b, c, n, false, &buf)
		}
	})
	bm.ReportMetric(2*float64(bm.N)*float64(m*n*k)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// One thread. VGG16's conv3_x layer (256 out, 3x3x256 in, one 256-pixel
// column block of its 56x56 map) and a 16→16 3x3 conv on 28x28.
func BenchmarkGemmFloatVGGConv3(b *testing.B)        { benchGemmFloat(b, 256, 256, 2304, false) }
func BenchmarkGemmFloatVGGConv3Generic(b *testing.B) { benchGemmFloat(b, 256, 256, 2304, true) }
func BenchmarkGemmFloatSmallConv(b *testing.B)       { benchGemmFloat(b, 16, 784, 144, false) }

// A packed A gives GemmFloat's result bit for bit, reused across calls.
func TestGemmFloatPackedEqualsGemmFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var pa PackedA[float32]
	for _, s := range sgemmShapes {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			a, b := randMatrix(rng, m, k, ta), randMatrix(rng, k, n, false)
			c1 := make([]float32, m*n)
			for i := range c1 {
				c1[i] = float32(rng.NormFloat64())
			}
			c2 := append([]float32(nil), c1...)
			var buf GemmBuffers[float32]
			GemmFloat(m, n, k, a, b, c1, n, true, &buf)
			pa.PackA(m, k, a, 1+len(c1)%3)
			GemmFloatPacked(&pa, n, b, c2, n, true, &buf)
			for i := range c1 {
				if c1[i] != c2[i] {
					t.Fatalf("%dx%dx%d ta=%v: c[%d]: packed %g, GemmFloat %g", m, n, k, ta, i, c2[i], c1[i])
				}
			}
		}
	}
}
