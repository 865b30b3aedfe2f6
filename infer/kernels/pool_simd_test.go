package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestMaxPool2x2SIMDMatchesGo runs VGG's 2x2/s2 max-pool with the SIMD
// row kernel (when this build has one) and with the Go loop on odd widths,
// whole and partial 16-output blocks, and the extremes −128 and 127.
func TestMaxPool2x2SIMDMatchesGo(t *testing.T) {
	if simdMaxPool2x2Row == nil {
		t.Skip("no SIMD max-pool in this build (purego or no AVX2)")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, tc := range []struct{ c, h, w int }{
		{1, 2, 2}, {3, 2, 30}, {2, 4, 32}, {1, 2, 34}, {2, 6, 62}, {1, 2, 64}, {3, 4, 66},
		{2, 2, 96}, {1, 4, 98}, {2, 8, 224}, {1, 3, 33}, {4, 14, 14}, {2, 28, 28}, {1, 5, 131},
	} {
		p := &PoolParams{C: tc.c, H: tc.h, W: tc.w, K: 2, Stride: 2, OH: tc.h / 2, OW: tc.w / 2}
		x := make([]int8, p.C*p.H*p.W)
		for i := range x {
			switch rng.IntN(8) {
			case 0:
				x[i] = -128
			case 1:
				x[i] = 127
			default:
				x[i] = int8(rng.IntN(256) - 128)
			}
		}
		got := make([]int8, p.C*p.OH*p.OW)
		want := make([]int8, len(got))
		MaxPool2d(p, x, got)
		saved := simdMaxPool2x2Row
		simdMaxPool2x2Row = nil
		MaxPool2d(p, x, want)
		simdMaxPool2x2Row = saved
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%dx%dx%d: output %d = %d, Go loop %d", p.C, p.H, p.W, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkMaxPool2x2 is VGG16's first max-pool (64×224×224 → 112×112),
// with the SIMD row kernel and with the Go loop.
func BenchmarkMaxPool2x2(b *testing.B) {
	p := &PoolParams{C: 64, H: 224, W: 224, K: 2, Stride: 2, OH: 112, OW: 112}
	x := make([]int8, p.C*p.H*p.W)
	for i := range x {
		x[i] = int8(i * 7)
	}
	y := make([]int8, p.C*p.OH*p.OW)
	for _, simd := range []bool{true, false} {
		name := "go"
		if simd {
			name = "simd"
			if simdMaxPool2x2Row == nil {
				continue
			}
		}
		b.Run(name, func(b *testing.B) {
			saved := simdMaxPool2x2Row
			if !simd {
				simdMaxPool2x2Row = nil
			}
			defer func() { simdMaxPool2x2Row = saved }()
			b.SetBytes(int64(len(x)))
			for b.Loop() {
				MaxPool2d(p, x, y)
			}
		})
	}
}
