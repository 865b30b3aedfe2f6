package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// randConv returns a checked convolution with random parameters.
func randConv(r *rand.Rand, c, h, w, o, k, stride, pad int) (*Conv2dParams, []int8) {
	p := &Conv2dParams{C: c, H: h, W: w, O: o, KH: k, KW: k, Stride: stride, Pad: pad,
		OH: (h+2*pad-k)/stride + 1, OW: (w+2*pad-k)/stride + 1, OutZero: -128, ReLU: true}
	p.Weight = make([]int8, o*c*k*k)
	for i := range p.Weight {
		p.Weight[i] = int8(r.IntN(255) - 127)
	}
	p.Bias = make([]int32, o)
	p.Mult = make([]int32, o)
	p.Shift = make([]int32, o)
	for i := range o {
		p.Bias[i] = int32(r.IntN(20000) - 10000)
		p.Mult[i] = 1<<30 + int32(r.IntN(1<<30))
		p.Shift[i] = -int32(8 + r.IntN(4))
	}
	p.PadValue = make([]int8, c)
	x := make([]int8, c*h*w)
	for i := range x {
		x[i] = int8(r.IntN(256) - 128)
	}
	return p, x
}

// Benchmarks of single layers shaped like VGG16's at 224×224; GMAC/s is
// the number to watch.
func BenchmarkConv2dInt8(b *testing.B) {
	for _, tc := range []struct{ c, hw, o, k int }{
		{3, 224, 64, 3}, {64, 224, 64, 3}, {128, 112, 128, 3}, {256, 56, 256, 3}, {512, 28, 512, 3}, {512, 14, 512, 3}, {256, 56, 64, 1},
	} {
		b.Run(fmt.Sprintf("%dx%d-%d-k%d", tc.c, tc.hw, tc.o, tc.k), func(b *testing.B) {
			benchConv(b, tc.c, tc.hw, tc.o, tc.k, 1)
		})
	}
}

// benchConv times one convolution of a square c×hw×hw input to o channels
// with the kernel dispatch has chosen, reporting GMAC/s.
func benchConv(b *testing.B, c, hw, o, k, stride int) {
	r := rand.New(rand.NewPCG(1, 2))
	p, x := randConv(r, c, hw, hw, o, k, stride, k/2)
	y := make([]int8, p.O*p.OH*p.OW)
	var s Scratch
	s.Reserve(p)
	b.ResetTimer()
	for range b.N {
		Conv2dInt8(p, x, y, &s)
	}
	macs := float64(p.O*p.Taps()) * float64(p.OH*p.OW)
	b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

// benchLinear times LinearInt8 on random in→out weights, reporting GMAC/s.
func benchLinear(b *testing.B, in, out int) {
	r := rand.New(rand.NewPCG(1, 2))
	p := &LinearParams{In: in, Out: out, OutZero: -128, ReLU: true}
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
	b.ResetTimer()
	for range b.N {
		LinearInt8(p, x, y)
	}
	b.ReportMetric(float64(p.In*p.Out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

func BenchmarkLinearInt8(b *testing.B) { benchLinear(b, 25088, 1024) }
