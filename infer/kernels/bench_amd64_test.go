//go:build gc && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkConv2dVGG16 compares the generic and the dispatched (AVX2)
// convolution on each distinct VGG16 conv shape at 224×224, plus a 1x1
// and a stride-2 layer; GMAC/s is the number to watch.
func BenchmarkConv2dVGG16(b *testing.B) {
	for _, tc := range []struct{ c, hw, o, k, stride int }{
		{3, 224, 64, 3, 1}, {64, 224, 64, 3, 1}, {64, 112, 128, 3, 1}, {128, 112, 128, 3, 1},
		{128, 56, 256, 3, 1}, {256, 56, 256, 3, 1}, {256, 28, 512, 3, 1}, {512, 28, 512, 3, 1},
		{512, 14, 512, 3, 1}, {256, 56, 64, 1, 1}, {128, 56, 128, 3, 2},
	} {
		for _, kernel := range []string{"generic", kernelName()} {
			name := fmt.Sprintf("%dx%d-%d-k%ds%d/%s", tc.c, tc.hw, tc.o, tc.k, tc.stride, kernel)
			b.Run(name, func(b *testing.B) {
				if kernel == "generic" {
					g, d := simdGemm, simdDot4
					simdGemm, simdDot4 = nil, nil
					defer func() { simdGemm, simdDot4 = g, d }()
				}
				r := rand.New(rand.NewPCG(1, 2))
				p, x := randConv(r, tc.c, tc.hw, tc.hw, tc.o, tc.k, tc.stride, tc.k/2)
				y := make([]int8, p.O*p.OH*p.OW)
				var s Scratch
				s.Reserve(p)
				b.ResetTimer()
				for range b.N {
					Conv2dInt8(p, x, y, &s)
				}
				macs := float64(p.O*p.Taps()) * float64(p.OH*p.OW)
				b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}

// BenchmarkLinearVGG16 is VGG16's first Linear layer (25088 → 4096),
// generic and dispatched.
func BenchmarkLinearVGG16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	p := &LinearParams{In: 25088, Out: 4096, OutZero: -128, ReLU: true}
	p.Weight = make([]int8, p.In*p.Out)
	for i := range p.Weight {
		p.Weight[i] = int8(r.IntN(255) - 127)
	}
	p.Bias, p.Mult, p.Shift = make([]int32, p.Out), make([]int32, p.Out), make([]int32, p.Out)
	for i := range p.Mult {
		p.Mult[i], p.Shift[i] = 1<<30, -12
	}
	x := make([]int8, p.In)
	y := make([]int8, p.Out)
	for _, kernel := range []string{"generic", kernelName()} {
		b.Run(kernel, func(b *testing.B) {
			if kernel == "generic" {
				d := simdDot4
				simdDot4 = nil
				defer func() { simdDot4 = d }()
			}
			for range b.N {
				LinearInt8(p, x, y)
			}
			b.ReportMetric(float64(p.In*p.Out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
