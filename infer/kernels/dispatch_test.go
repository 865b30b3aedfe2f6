package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// withGeneric runs f with the SIMD kernels switched off, so that the
// generic kernels compute the reference.
func withGeneric(f func()) {
	g, d := simdGemm, simdDot4
	simdGemm, simdDot4 = nil, nil
	defer func() { simdGemm, simdDot4 = g, d }()
	f()
}

// randSIMDConv is a checked random convolution with non-zero pad values
// and both output forms' fields filled.
func randSIMDConv(r *rand.Rand, c, h, w, o, kh, kw, stride, pad int) (*Conv2dParams, []int8) {
	p := &Conv2dParams{C: c, H: h, W: w, O: o, KH: kh, KW: kw, Stride: stride, Pad: pad,
		OH: (h+2*pad-kh)/stride + 1, OW: (w+2*pad-kw)/stride + 1,
		OutZero: int32(r.IntN(256) - 128), ReLU: r.IntN(2) == 0, InScale: float32(r.Float64() + 0.01)}
	p.Weight = randBytes(r, o*c*kh*kw, -127)
	p.PadValue = randBytes(r, c, -128)
	p.Bias, p.Mult, p.Shift, p.WScale = make([]int32, o), make([]int32, o), make([]int32, o), make([]float32, o)
	for i := range o {
		p.Bias[i] = int32(r.IntN(1<<20) - 1<<19)
		p.Mult[i], p.Shift[i] = randMultShift(r)
		p.WScale[i] = float32(math.Exp(r.Float64()*10 - 12))
		if r.IntN(10) == 0 { // saturate
			p.Bias[i] = int32(r.Uint32())
		}
	}
	return p, randBytes(r, c*h*w, -128)
}

// randMultShift returns a requantization multiplier and shift: mostly
// realistic (a right shift of 0…13), sometimes any shift, sometimes the
// extreme multipliers (MinInt32 saturates SRDHM).
func randMultShift(r *rand.Rand) (mult, shift int32) {
	mult, shift = int32(r.Uint32()>>1), -int32(r.IntN(14))
	switch r.IntN(12) {
	case 0:
		shift = int32(r.IntN(62)) - 31
	case 1:
		shift = -31
	case 2:
		mult = []int32{math.MinInt32, math.MaxInt32, 0, 1, -1, -1 << 30}[r.IntN(6)]
	case 3:
		mult = int32(r.Uint32()) // negative multipliers too
	}
	return mult, shift
}

// randBytes returns n values in [lo, 127]; the extremes are over-weighted
// to exercise the largest products.
func randBytes(r *rand.Rand, n, lo int) []int8 {
	s := make([]int8, n)
	for i := range s {
		switch r.IntN(8) {
		case 0:
			s[i] = int8(lo)
		case 1:
			s[i] = 127
		default:
			s[i] = int8(r.IntN(128-lo) + lo)
		}
	}
	return s
}

// The dispatched convolution equals the generic one bit for bit, int8 and
// logits, on shapes that leave every tail: channels not multiples of 4,
// taps not multiples of 16 (odd too), widths not multiples of 16, 1x1
// (direct and through the patch), stride 2, padding, row segments.
func TestConv2dSIMDMatchesGeneric(t *testing.T) {
	t.Logf("convolution kernel: %s", kernelName())
	r := rand.New(rand.NewPCG(21, 22))
	type shape struct{ c, h, w, o, kh, kw, stride, pad int }
	shapes := []shape{
		{1, 1, 1, 1, 1, 1, 1, 0},
		{3, 17, 19, 5, 1, 1, 1, 0},     // 1x1 direct, 3 taps, 323 pixels
		{64, 14, 14, 7, 1, 1, 1, 0},    // 1x1 direct, whole tap blocks
		{33, 9, 23, 13, 1, 1, 2, 0},    // 1x1 stride 2 (patch)
		{17, 13, 7, 6, 1, 1, 1, 1},     // 1x1 padded
		{3, 33, 35, 9, 3, 3, 1, 1},     // first-layer-like: 27 taps
		{16, 20, 18, 16, 3, 3, 1, 1},   // whole blocks everywhere
		{15, 21, 37, 11, 3, 3, 2, 1},   // stride 2, odd taps (135)
		{300, 7, 5, 5, 3, 3, 1, 1},     // the patch bound limits the band
		{300, 3, 100, 5, 3, 3, 1, 1},   // row segments
		{250, 2, 200, 3, 3, 3, 2, 1},   // row segments, stride 2
		{4, 6, 5, 4, 4, 2, 3, 2},       // 4x2, stride 3, pad 2
		{1, 3, 3, 2, 5, 5, 1, 2},       // kernel larger than the image
		{64, 16, 16, 64, 3, 3, 1, 1},   // VGG-like
		{512, 2, 2, 17, 3, 3, 1, 1},    // deep: 4608 taps
		{7, 1, 40, 9, 1, 3, 1, 1},      // one row
		{129, 5, 31, 21, 2, 2, 2, 0},   // even kernel, stride 2
		{2, 30, 30, 3, 7, 7, 2, 3},     // 7x7 stride 2
		{1, 50, 3, 1, 3, 3, 1, 1},      // narrow image: 3-pixel rows
		{5, 100, 100, 4, 1, 1, 1, 0},   // direct, several 256-pixel chunks
		{8, 40, 40, 12, 3, 3, 1, 0},    // unpadded
		{20, 11, 11, 33, 5, 5, 1, 2},   // 5x5
		{3, 224, 5, 2, 3, 3, 1, 1},     // tall
		{1, 2, 2, 1, 2, 2, 1, 0},       // one pixel, 4 taps
		{6, 19, 19, 10, 3, 3, 2, 0},    // stride 2 unpadded
		{31, 12, 13, 31, 3, 3, 1, 1},   // 279 taps
		{12, 8, 64, 8, 1, 1, 2, 0},     // 1x1 stride 2, 32-wide output
		{2, 64, 64, 5, 3, 3, 2, 1},     // 32x32 output
		{100, 9, 9, 100, 3, 3, 1, 1},   // 900 taps
		{1, 7, 300, 3, 3, 3, 1, 1},     // long rows
		{17, 15, 15, 1, 3, 3, 1, 1},    // one output channel
		{18, 15, 15, 2, 3, 3, 1, 1},    // two
		{19, 15, 15, 3, 3, 3, 1, 1},    // three
		{16, 16, 16, 4, 1, 1, 1, 0},    // direct, exactly one tile
		{16, 16, 16, 4, 1, 1, 1, 1},    // padded 1x1
		{48, 10, 10, 8, 3, 3, 1, 1},    // 432 taps
		{256, 7, 7, 20, 1, 1, 1, 0},    // direct, 49 pixels
		{3, 224, 224, 8, 3, 3, 1, 1},   // VGG's first layer, fewer outputs
		{64, 56, 56, 6, 3, 3, 1, 1},    // VGG-like band, 6 outputs
		{5, 10, 10, 70, 3, 3, 1, 1},    // many outputs
		{9, 40, 40, 13, 3, 3, 2, 0},    // stride 2, odd channels
		{16, 14, 14, 17, 3, 3, 1, 1},   // tail of channels
		{35, 17, 17, 5, 4, 4, 2, 1},    // 4x4 stride 2
		{1, 1, 31, 1, 1, 31, 1, 15},    // a 1x31 kernel, all pads
		{2, 9, 9, 3, 3, 3, 1, 2},       // pad 2
		{1000, 1, 1, 7, 1, 1, 1, 0},    // 1x1 map
		{1001, 1, 1, 7, 1, 1, 1, 0},    // odd
		{20, 33, 1, 5, 3, 1, 1, 1},     // one column
		{3, 100, 100, 2, 1, 1, 3, 0},   // 1x1 stride 3
		{40, 6, 6, 16, 3, 3, 1, 1},     // 360 taps
		{11, 20, 20, 9, 2, 3, 1, 0},    // non-square
		{64, 28, 28, 5, 3, 3, 2, 1},    // stride 2 on a VGG-like map
		{128, 14, 14, 12, 1, 1, 2, 0},  // 1x1 stride 2, 128 taps
		{512, 14, 14, 4, 3, 3, 1, 1},   // VGG's conv5 shape, 4 outputs
		{256, 28, 28, 3, 3, 3, 1, 1},   // VGG's conv4 input, 3 outputs
		{128, 56, 56, 2, 3, 3, 1, 1},   // VGG's conv3 input
		{7, 5, 5, 130, 1, 1, 1, 0},     // 130 outputs, 25 pixels
		{2, 3, 17, 5, 3, 3, 1, 1},      // 17 wide
		{2, 3, 15, 5, 3, 3, 1, 1},      // 15 wide
		{2, 3, 16, 5, 3, 3, 1, 1},      // 16 wide
		{2, 3, 32, 5, 3, 3, 1, 1},      // 32 wide
		{2, 3, 33, 5, 3, 3, 1, 1},      // 33 wide
		{8, 3, 31, 5, 3, 3, 1, 1},      // 31 wide, 72 taps
		{3, 3, 3, 3, 3, 3, 3, 3},       // big pad, stride 3
		{9, 2, 8, 11, 1, 1, 1, 0},      // 16 pixels exactly, direct
		{9, 2, 9, 11, 1, 1, 1, 0},      // 18 pixels, direct
		{17, 256, 1, 3, 1, 1, 1, 0},    // direct, 256 pixels
		{2, 257, 1, 3, 1, 1, 1, 0},     // direct, 257 pixels
		{1, 1, 1, 5, 1, 1, 1, 0},       // one tap, one pixel
		{1, 5, 5, 5, 1, 1, 1, 0},       // one tap
		{2, 5, 5, 5, 1, 1, 1, 0},       // one tap pair
		{15, 5, 5, 5, 1, 1, 1, 0},      // one block short
		{17, 5, 5, 5, 1, 1, 1, 0},      // one block and a tap
		{31, 5, 5, 5, 1, 1, 1, 0},      // two blocks short
		{1, 1, 2, 1, 1, 2, 1, 0},       // two taps, one pixel
		{1, 20, 20, 1, 20, 20, 1, 0},   // 400 taps, one pixel
		{1, 20, 20, 1, 20, 20, 1, 10},  // 400 taps, 21x21 pixels
		{2, 4, 4, 1, 4, 4, 2, 3},       // pad beyond the kernel reach
		{130, 16, 16, 33, 3, 3, 1, 1},  // 1170 taps
		{3, 35, 35, 64, 3, 3, 2, 1},    // stride 2 first layer
		{33, 8, 8, 65, 1, 1, 1, 0},     // direct, 65 outputs
		{33, 8, 8, 67, 1, 1, 2, 0},     // patch, 67 outputs
		{256, 5, 5, 9, 3, 3, 2, 1},     // deep, stride 2
		{64, 1, 1000, 3, 1, 3, 1, 1},   // long row: several segments?
		{300, 1, 300, 4, 1, 3, 1, 1},   // 900 taps × 300 px > patch bound
		{170, 1, 500, 5, 1, 3, 2, 1},   // row segments, stride 2
		{1, 3, 250, 5, 3, 3, 1, 1},     // long narrow band
		{4, 64, 4, 5, 3, 3, 1, 1},      // many short rows per band
		{4, 64, 4, 5, 3, 3, 2, 1},      // stride 2
		{40, 3, 3, 40, 3, 3, 1, 0},     // one pixel, 360 taps
		{40, 3, 3, 40, 3, 3, 1, 1},     // 9 pixels
		{2, 200, 200, 1, 1, 1, 1, 0},   // direct, long plane, one output
		{255, 9, 9, 255, 1, 1, 1, 0},   // odd everything
		{127, 9, 9, 127, 3, 3, 1, 1},   // odd everything 3x3
		{16, 30, 30, 16, 3, 3, 1, 1},   // 16s
		{24, 30, 30, 24, 3, 3, 1, 1},   // 24s
		{8, 30, 30, 8, 3, 3, 1, 1},     // 8s
		{3, 12, 12, 5, 3, 3, 1, 1},     // small
		{3, 12, 12, 5, 3, 3, 2, 1},     // small stride 2
		{96, 13, 13, 7, 3, 3, 1, 1},    // 13x13
		{1, 100, 100, 1, 3, 3, 1, 1},   // 9 taps
		{2, 100, 100, 1, 3, 3, 1, 1},   // 18 taps
		{5, 7, 7, 5, 7, 7, 1, 3},       // 7x7 pad 3
		{1, 9, 9, 9, 9, 9, 1, 4},       // 9x9 pad 4
		{17, 31, 29, 19, 3, 3, 1, 1},   // odd sizes
		{35, 23, 23, 3, 3, 3, 2, 1},    // odd, stride 2
		{65, 10, 10, 5, 1, 1, 1, 0},    // 65 taps direct
		{400, 4, 4, 3, 1, 1, 2, 0},     // 1x1 stride 2 deep
		{7, 2, 2, 6, 2, 2, 1, 1},       // tiny padded
		{512, 7, 7, 6, 3, 3, 1, 1},     // 7x7 deep
		{64, 112, 6, 4, 3, 3, 1, 1},    // tall band
		{64, 6, 112, 4, 3, 3, 1, 1},    // wide band
		{64, 6, 112, 4, 3, 3, 2, 1},    // wide band stride 2
		{10, 10, 10, 10, 10, 10, 1, 0}, // kernel = image
	}
	for range 60 {
		kh, kw := 1+r.IntN(4), 1+r.IntN(4)
		shapes = append(shapes, shape{1 + r.IntN(40), max(kh, 1+r.IntN(40)), max(kw, 1+r.IntN(40)), 1 + r.IntN(21),
			kh, kw, 1 + r.IntN(3), r.IntN(3)})
	}
	var s Scratch
	for i, sh := range shapes {
		p, x := randSIMDConv(r, sh.c, sh.h, sh.w, sh.o, sh.kh, sh.kw, sh.stride, sh.pad)
		if err := p.Check(true); err != nil {
			t.Fatalf("%d %+v: %v", i, sh, err)
		}
		n := p.O * p.OH * p.OW
		want8, got8 := make([]int8, n), make([]int8, n)
		wantF, gotF := make([]float32, n), make([]float32, n)
		var gs Scratch
		withGeneric(func() {
			Conv2dInt8(p, x, want8, &gs)
			Conv2dLogits(p, x, wantF, &gs)
		})
		// One Scratch for all shapes: stale packed data would show.
		Conv2dInt8(p, x, got8, &s)
		Conv2dLogits(p, x, gotF, &s)
		if j := firstDiff(got8, want8); j >= 0 {
			t.Fatalf("%d %+v: int8 y[%d] = %d, want %d", i, sh, j, got8[j], want8[j])
		}
		// Compare bits: the same int32 sums give the same float32.
		if j := firstDiff(f32Bits(gotF), f32Bits(wantF)); j >= 0 {
			t.Fatalf("%d %+v: logits y[%d] = %v, want %v", i, sh, j, gotF[j], wantF[j])
		}
	}
}

// Changing the weights between calls with the same Scratch must be seen:
// the packed weights are per call, not cached by address.
func TestConv2dSIMDRepacksWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	p, x := randSIMDConv(r, 20, 12, 12, 9, 3, 3, 1, 1)
	var s Scratch
	got, want := make([]int8, p.O*p.OH*p.OW), make([]int8, p.O*p.OH*p.OW)
	for range 3 {
		copy(p.Weight, randBytes(r, len(p.Weight), -127))
		Conv2dInt8(p, x, got, &s)
		withGeneric(func() { Conv2dInt8(p, x, want, &Scratch{}) })
		if j := firstDiff(got, want); j >= 0 {
			t.Fatalf("y[%d] = %d, want %d", j, got[j], want[j])
		}
	}
}

// Linear: the dispatched dot products equal the generic ones for odd In
// and Out, lengths around the vector width, and VGG's sizes.
func TestLinearSIMDMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	type shape struct{ in, out int }
	shapes := []shape{{1, 1}, {15, 4}, {16, 4}, {17, 5}, {31, 7}, {32, 8}, {33, 9}, {4099, 4}, {4096, 13},
		{25088, 6}, {1000, 1001}, {63, 3}, {64, 2}, {65, 1}, {513, 11}}
	for range 40 {
		shapes = append(shapes, shape{1 + r.IntN(700), 1 + r.IntN(23)})
	}
	for _, sh := range shapes {
		p := &LinearParams{In: sh.in, Out: sh.out, OutZero: int32(r.IntN(256) - 128), ReLU: r.IntN(2) == 0,
			InScale: float32(r.Float64() + 0.01)}
		p.Weight = randBytes(r, p.In*p.Out, -127)
		p.Bias, p.Mult, p.Shift, p.WScale = make([]int32, p.Out), make([]int32, p.Out), make([]int32, p.Out), make([]float32, p.Out)
		for o := range p.Out {
			p.Bias[o] = int32(r.IntN(1<<20) - 1<<19)
			p.Mult[o], p.Shift[o] = randMultShift(r)
			p.WScale[o] = float32(math.Exp(r.Float64()*10 - 12))
		}
		x := randBytes(r, p.In, -128)
		want8, got8 := make([]int8, p.Out), make([]int8, p.Out)
		wantF, gotF := make([]float32, p.Out), make([]float32, p.Out)
		withGeneric(func() {
			LinearInt8(p, x, want8)
			LinearLogits(p, x, wantF)
		})
		LinearInt8(p, x, got8)
		LinearLogits(p, x, gotF)
		if j := firstDiff(got8, want8); j >= 0 {
			t.Fatalf("%+v: y[%d] = %d, want %d", sh, j, got8[j], want8[j])
		}
		if j := firstDiff(f32Bits(gotF), f32Bits(wantF)); j >= 0 {
			t.Fatalf("%+v logits: y[%d] = %v, want %v", sh, j, gotF[j], wantF[j])
		}
	}
}

// The extreme products and sums: all weights −127 against inputs −128
// (the largest positive pair sums), long enough to reach 2^26.
func TestSIMDExtremes(t *testing.T) {
	for _, xv := range []int8{-128, 127} {
		for _, wv := range []int8{-127, 127} {
			c := 4096
			p := &Conv2dParams{C: c, H: 3, W: 17, O: 5, KH: 1, KW: 1, Stride: 1, OH: 3, OW: 17,
				Weight: slices.Repeat([]int8{wv}, 5*c), Bias: make([]int32, 5), PadValue: make([]int8, c),
				InScale: 1, WScale: []float32{1, 1, 1, 1, 1}}
			x := slices.Repeat([]int8{xv}, c*3*17)
			got, want := make([]float32, 5*3*17), make([]float32, 5*3*17)
			Conv2dLogits(p, x, got, &Scratch{})
			withGeneric(func() { Conv2dLogits(p, x, want, &Scratch{}) })
			if j := firstDiff(f32Bits(got), f32Bits(want)); j >= 0 {
				t.Fatalf("x=%d w=%d: y[%d] = %v, want %v", xv, wv, j, got[j], want[j])
			}
			if e := float32(int32(c) * int32(xv) * int32(wv)); want[0] != e {
				t.Fatalf("x=%d w=%d: generic %v, want %v", xv, wv, want[0], e)
			}
		}
	}
}

func firstDiff[T comparable](a, b []T) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func f32Bits(s []float32) []uint32 {
	b := make([]uint32, len(s))
	for i, v := range s {
		b[i] = math.Float32bits(v)
	}
	return b
}

// kernelName is "generic" exactly when no SIMD kernel is set.
func TestKernelName(t *testing.T) {
	withGeneric(func() {
		if n := kernelName(); n != "generic" {
			t.Errorf("kernel %q with SIMD off", n)
		}
	})
	if (simdGemm == nil) != (kernelName() == "generic") {
		t.Errorf("kernel %q, simdGemm set: %v", kernelName(), simdGemm != nil)
	}
}
