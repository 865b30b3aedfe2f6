package kernels_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
)

// one is the Q31 multiplier 1.0 (2^30·2^(1−31)); half is 0.5, quarter 0.25.
const (
	one, oneShift   = 1 << 30, 1
	half, halfShift = 1 << 30, 0
	quarterShift    = -1
)

func fill[T any](n int, v T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// Convolutions worked by hand; the arithmetic is in the comments.
func TestConv2dByHand(t *testing.T) {
	seq9 := []int8{1, 2, 3, 4, 5, 6, 7, 8, 9}
	tests := []struct {
		name  string
		p     kernels.Conv2dParams
		x     []int8
		want8 []int8    // int8 output, or
		wantF []float32 // logits
	}{{
		// x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 −1], bias 10:
		// (0,0) 10+1+4+12−5 = 22, (0,1) 10+2+6+15−6 = 27,
		// (1,0) 10+4+10+21−8 = 37, (1,1) 10+5+12+24−9 = 42; × 0.5·0.25.
		name: "2x2 logits",
		p: kernels.Conv2dParams{C: 1, H: 3, W: 3, O: 1, KH: 2, KW: 2, Stride: 1, OH: 2, OW: 2,
			Weight: []int8{1, 2, 3, -1}, Bias: []int32{10}, PadValue: []int8{0}, InScale: 0.5, WScale: []float32{0.25}},
		x:     seq9,
		wantF: []float32{2.75, 3.375, 4.625, 5.25},
	}, {
		// Stride 2, pad 1, pad values 3 (channel 0) and −2 (channel 1),
		// all-ones 3x3 kernels, channel 1 all 10. Every window has 4 real
		// taps and 5 pad taps per channel:
		// (0,0) ch0 1+2+4+5 + 5·3 = 27, ch1 40 − 10 = 30 → 57
		// (0,1) ch0 2+3+5+6 + 15 = 31, + 30 → 61
		// (1,0) ch0 4+5+7+8 + 15 = 39, + 30 → 69
		// (1,1) ch0 5+6+8+9 + 15 = 43, + 30 → 73
		// ×0.5 with gemmlowp rounding: 28.5→29, 30.5→31, 34.5→35, 36.5→37;
		// + zero −5.
		name: "stride 2 pad 1 pad values",
		p: kernels.Conv2dParams{C: 2, H: 3, W: 3, O: 1, KH: 3, KW: 3, Stride: 2, Pad: 1, OH: 2, OW: 2,
			Weight: fill[int8](18, 1), Bias: []int32{0}, PadValue: []int8{3, -2},
			Mult: []int32{half}, Shift: []int32{halfShift}, OutZero: -5},
		x:     append(slices.Clone(seq9), fill[int8](9, 10)...),
		want8: []int8{24, 26, 30, 32},
	}, {
		// The same with bias −60: acc −3, 1, 9, 13. ×0.5: SRDHM(−3, 2^30) =
		// (−3·2^30 + 1 − 2^30)/2^31 = −1.99… → −1 (truncation), 0.5 → 1,
		// 4.5 → 5, 6.5 → 7; + zero 30 = 29, 31, 35, 37; ReLU clamps 29 to 30.
		name: "fused ReLU",
		p: kernels.Conv2dParams{C: 2, H: 3, W: 3, O: 1, KH: 3, KW: 3, Stride: 2, Pad: 1, OH: 2, OW: 2,
			Weight: fill[int8](18, 1), Bias: []int32{-60}, PadValue: []int8{3, -2},
			Mult: []int32{half}, Shift: []int32{halfShift}, OutZero: 30, ReLU: true},
		x:     append(slices.Clone(seq9), fill[int8](9, 10)...),
		want8: []int8{30, 31, 35, 37},
	}, {
		// The same accumulators 57, 61, 69, 73 at 0.25 (Mult 2^30, Shift −1):
		// SRDHM halves with rounding (29, 31, 35, 37), then
		// RoundingDivideByPOT halves again, ties away from zero: 14.5→15,
		// 15.5→16, 17.5→18, 18.5→19 (gemmlowp's double rounding: 57/4 =
		// 14.25 gives 15).
		name: "negative shift",
		p: kernels.Conv2dParams{C: 2, H: 3, W: 3, O: 1, KH: 3, KW: 3, Stride: 2, Pad: 1, OH: 2, OW: 2,
			Weight: fill[int8](18, 1), Bias: []int32{0}, PadValue: []int8{3, -2},
			Mult: []int32{half}, Shift: []int32{quarterShift}},
		x:     append(slices.Clone(seq9), fill[int8](9, 10)...),
		want8: []int8{15, 16, 18, 19},
	}, {
		// 1x1 (the direct path), multiplier 1, zero 0, saturation:
		// ch0 = [100 −100 50 0], ch1 = [1 2 3 4]
		// o0 = x0 + 20·x1:          120, −60, 110, 80
		// o1 = 7 − x0:              −93, 107, −43, 7
		// o2 = 3·x0 − 3·x1: 297→127, −306→−128, 141→127, −12
		name: "1x1 saturation",
		p: kernels.Conv2dParams{C: 2, H: 2, W: 2, O: 3, KH: 1, KW: 1, Stride: 1, OH: 2, OW: 2,
			Weight: []int8{1, 20, -1, 0, 3, -3}, Bias: []int32{0, 7, 0}, PadValue: []int8{0, 0},
			Mult: []int32{one, one, one}, Shift: []int32{oneShift, oneShift, oneShift}},
		x:     []int8{100, -100, 50, 0, 1, 2, 3, 4},
		want8: []int8{120, -60, 110, 80, -93, 107, -43, 7, 127, -128, 127, -12},
	}, {
		// A 1x3 kernel [1 10 100] with pad 1 on both axes over
		// x = [1 2 3; 4 5 6], pad value 7: OH = (2+2−1)+1 = 4, OW = 3.
		// Rows 0 and 3 read only padding: 7 + 70 + 700 = 777.
		// Row 1 (x row 0): 7+10+200 = 217, 1+20+300 = 321, 2+30+700 = 732.
		// Row 2 (x row 1): 7+40+500 = 547, 4+50+600 = 654, 5+60+700 = 765.
		name: "non-square kernel",
		p: kernels.Conv2dParams{C: 1, H: 2, W: 3, O: 1, KH: 1, KW: 3, Stride: 1, Pad: 1, OH: 4, OW: 3,
			Weight: []int8{1, 10, 100}, Bias: []int32{0}, PadValue: []int8{7}, InScale: 1, WScale: []float32{1}},
		x:     []int8{1, 2, 3, 4, 5, 6},
		wantF: []float32{777, 777, 777, 217, 321, 732, 547, 654, 765, 777, 777, 777},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logits := tt.wantF != nil
			if err := tt.p.Check(logits); err != nil {
				t.Fatal(err)
			}
			var s kernels.Scratch
			if logits {
				y := make([]float32, len(tt.wantF))
				kernels.Conv2dLogits(&tt.p, tt.x, y, &s)
				if !slices.Equal(y, tt.wantF) {
					t.Errorf("got %v, want %v", y, tt.wantF)
				}
				return
			}
			y := make([]int8, len(tt.want8))
			kernels.Conv2dInt8(&tt.p, tt.x, y, &s)
			if !slices.Equal(y, tt.want8) {
				t.Errorf("got %v, want %v", y, tt.want8)
			}
		})
	}
}

// Linear worked by hand: x = [1 −2 3], five rows (a block of four and one
// left over).
func TestLinearByHand(t *testing.T) {
	p := kernels.LinearParams{In: 3, Out: 5,
		Weight: []int8{1, 1, 1, 2, 0, -1, -127, 127, 0, 10, 20, 30, 0, 0, 5},
		Bias:   []int32{0, 100, 0, -1, 2},
		Mult:   fill[int32](5, one), Shift: fill[int32](5, oneShift), OutZero: 3,
		InScale: 0.5, WScale: []float32{1, 2, 0.5, 0.25, 4}}
	// acc: 1−2+3 = 2; 100+2−3 = 99; −127−254 = −381; −1+10−40+90 = 59; 2+15 = 17.
	x := []int8{1, -2, 3}
	y8 := make([]int8, 5)
	kernels.LinearInt8(&p, x, y8)
	// + zero 3: 5, 102, −378 → −128, 62, 20.
	if want := []int8{5, 102, -128, 62, 20}; !slices.Equal(y8, want) {
		t.Errorf("int8: got %v, want %v", y8, want)
	}
	yf := make([]float32, 5)
	kernels.LinearLogits(&p, x, yf)
	// × 0.5·w_scale = 0.5, 1, 0.25, 0.125, 2.
	if want := []float32{1, 99, -95.25, 7.375, 34}; !slices.Equal(yf, want) {
		t.Errorf("logits: got %v, want %v", yf, want)
	}
}

func TestMaxPoolByHand(t *testing.T) {
	// Channel 0 below; channel 1 is all −100, so only the −128 padding
	// could beat it, and must not.
	x := append([]int8{
		1, 5, -3, -4,
		2, 0, -8, -6,
		9, -1, 7, 7,
		3, 3, -128, 127,
	}, fill[int8](16, -100)...)
	for _, tt := range []struct {
		k, stride, pad int
		want           []int8
	}{
		// 2x2 windows: max(1,5,2,0) = 5, max(−3,−4,−8,−6) = −3, 9, 127.
		{2, 2, 0, []int8{5, -3, 9, 127, -100, -100, -100, -100}},
		// 3x3, stride 2, pad 1: rows/cols [−1,1] and [1,3]:
		// max(1,5,2,0) = 5; max(5,−3,−4,0,−8,−6) = 5;
		// max(2,0,9,−1,3,3) = 9; max(0,−8,−6,−1,7,7,3,−128,127) = 127.
		{3, 2, 1, []int8{5, 5, 9, 127, -100, -100, -100, -100}},
	} {
		p := kernels.PoolParams{C: 2, H: 4, W: 4, K: tt.k, Stride: tt.stride, Pad: tt.pad, OH: 2, OW: 2}
		if err := p.CheckMax(); err != nil {
			t.Fatal(err)
		}
		y := make([]int8, len(tt.want))
		kernels.MaxPool2d(&p, x, y)
		if !slices.Equal(y, tt.want) {
			t.Errorf("k%d s%d p%d: got %v, want %v", tt.k, tt.stride, tt.pad, y, tt.want)
		}
	}
}

func TestAdaptiveAvgPoolByHand(t *testing.T) {
	for _, tt := range []struct {
		name         string
		h, w, oh, ow int
		x, want      []int8
	}{
		// Bins [0,2) and [2,4): 3/2 = 1.5 → 2, −3/2 = −1.5 → −2.
		{"ties", 1, 4, 1, 2, []int8{1, 2, -1, -2}, []int8{2, -2}},
		// Bins [0, ceil(3/2)=2) and [floor(3/2)=1, 3) overlap:
		// (4+5)/2 = 4.5 → 5, (5+7)/2 = 6.
		{"overlap", 1, 3, 1, 2, []int8{4, 5, 7}, []int8{5, 6}},
		// Upsampling 2 → 3: bins [0,1), [0,2), [1,2): 10, −1/2 → −1, −11.
		{"upsample", 1, 2, 1, 3, []int8{10, -11}, []int8{10, -1, -11}},
		// 3x3 → 1x1, n = 9 (odd, no ties): 13/9 = 1.44 → 1.
		{"odd bin", 3, 3, 1, 1, []int8{1, 1, 1, 1, 1, 1, 1, 1, 5}, []int8{1}},
		// −14/9 = −1.56 → −2.
		{"odd bin negative", 3, 3, 1, 1, []int8{-1, -1, -1, -1, -1, -1, -1, -1, -6}, []int8{-2}},
		{"extremes", 1, 2, 1, 1, []int8{-128, -128}, []int8{-128}},
		{"identity", 2, 2, 2, 2, []int8{1, -2, 3, -128}, []int8{1, -2, 3, -128}},
	} {
		p := kernels.PoolParams{C: 1, H: tt.h, W: tt.w, OH: tt.oh, OW: tt.ow}
		y := make([]int8, len(tt.want))
		kernels.AdaptiveAvgPool2d(&p, tt.x, y)
		if !slices.Equal(y, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, y, tt.want)
		}
	}
	for _, tt := range []struct{ sum, n, want int64 }{
		{3, 2, 2}, {-3, 2, -2}, {1, 2, 1}, {-1, 2, -1}, {5, 4, 1}, {6, 4, 2}, {-6, 4, -2}, {-5, 4, -1}, {0, 7, 0}, {7, 7, 1},
	} {
		if got := kernels.AvgRound(tt.sum, tt.n); got != tt.want {
			t.Errorf("AvgRound(%d, %d) = %d, want %d", tt.sum, tt.n, got, tt.want)
		}
	}
}

func TestReLUByHand(t *testing.T) {
	x := []int8{-5, 0, 5, -128, 127}
	kernels.ReLU(x, x, -1) // in place
	if want := []int8{-1, 0, 5, -1, 127}; !slices.Equal(x, want) {
		t.Errorf("got %v, want %v", x, want)
	}
}

// The kernels' copy of the requantization must equal infer's, which is
// tested against gemmlowp's definitions.
func TestRequantizeMatchesInfer(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	accs := []int32{0, 1, -1, math.MaxInt32, math.MinInt32, 1 << 30, -(1 << 30), 12345, -12345}
	mults := []int32{0, 1, 1 << 30, math.MaxInt32, 1518500250}
	check := func(acc, mult, shift, zero int32, relu bool) {
		if got, want := kernels.Requantize(acc, mult, shift), infer.Requantize(acc, mult, shift); got != want {
			t.Fatalf("Requantize(%d, %d, %d) = %d, infer says %d", acc, mult, shift, got, want)
		}
		if got, want := kernels.RequantizeOut(acc, mult, shift, zero, relu), infer.RequantizeOut(acc, mult, shift, zero, relu); got != want {
			t.Fatalf("RequantizeOut(%d, %d, %d, %d, %v) = %d, infer says %d", acc, mult, shift, zero, relu, got, want)
		}
	}
	for _, a := range accs {
		for _, m := range mults {
			for s := int32(-31); s <= 30; s++ {
				check(a, m, s, -128, true)
				check(a, m, s, 5, false)
			}
		}
	}
	for range 200000 {
		check(int32(r.Uint32()), int32(r.Uint32()>>1), int32(r.IntN(62))-31, int32(r.IntN(256))-128, r.IntN(2) == 0)
	}
}

// Naive references with int64 sums and infer's requantization.

func refConv(p *kernels.Conv2dParams, x []int8, logits bool) ([]int8, []float32) {
	y8 := make([]int8, p.O*p.OH*p.OW)
	yf := make([]float32, p.O*p.OH*p.OW)
	for o := 0; o < p.O; o++ {
		for oy := 0; oy < p.OH; oy++ {
			for ox := 0; ox < p.OW; ox++ {
				acc := int64(p.Bias[o])
				for c := 0; c < p.C; c++ {
					for ky := 0; ky < p.KH; ky++ {
						for kx := 0; kx < p.KW; kx++ {
							iy, ix := oy*p.Stride-p.Pad+ky, ox*p.Stride-p.Pad+kx
							v := p.PadValue[c]
							if iy >= 0 && iy < p.H && ix >= 0 && ix < p.W {
								v = x[(c*p.H+iy)*p.W+ix]
							}
							acc += int64(p.Weight[((o*p.C+c)*p.KH+ky)*p.KW+kx]) * int64(v)
						}
					}
				}
				i := (o*p.OH+oy)*p.OW + ox
				if logits {
					yf[i] = float32(int32(acc)) * (p.InScale * p.WScale[o])
				} else {
					y8[i] = infer.RequantizeOut(int32(acc), p.Mult[o], p.Shift[o], p.OutZero, p.ReLU)
				}
			}
		}
	}
	return y8, yf
}

func randInt8(r *rand.Rand, n, lo int) []int8 {
	s := make([]int8, n)
	for i := range s {
		s[i] = int8(r.IntN(128-lo) + lo)
	}
	return s
}

// randOut fills the output fields for o channels: mostly realistic
// multipliers, sometimes any shift (saturating everything) or relu.
func randOut(r *rand.Rand, o int) (mult, shift []int32, zero int32, relu bool, wscale []float32) {
	mult, shift, wscale = make([]int32, o), make([]int32, o), make([]float32, o)
	for i := range o {
		mult[i] = int32(r.Uint32() >> 1)
		shift[i] = -int32(r.IntN(14))
		if r.IntN(8) == 0 {
			shift[i] = int32(r.IntN(62)) - 31
		}
		wscale[i] = float32(math.Exp(r.Float64()*10 - 12))
	}
	return mult, shift, int32(r.IntN(256)) - 128, r.IntN(2) == 0, wscale
}

func randConv(r *rand.Rand, c, h, w, o, kh, kw, stride, pad int) (*kernels.Conv2dParams, []int8) {
	p := &kernels.Conv2dParams{C: c, H: h, W: w, O: o, KH: kh, KW: kw, Stride: stride, Pad: pad,
		OH: (h+2*pad-kh)/stride + 1, OW: (w+2*pad-kw)/stride + 1,
		Weight: randInt8(r, o*c*kh*kw, -127), PadValue: randInt8(r, c, -128), InScale: float32(r.Float64() + 0.01)}
	p.Bias = make([]int32, o)
	for i := range p.Bias {
		p.Bias[i] = int32(r.IntN(1<<20) - 1<<19)
	}
	p.Mult, p.Shift, p.OutZero, p.ReLU, p.WScale = randOut(r, o)
	return p, randInt8(r, c*h*w, -128)
}

// Every convolution equals the naive reference bit for bit, on random
// shapes with odd sizes, several bands, a patch bounded by its size, and
// the direct 1x1 path over several chunks. One Scratch serves all, so
// stale contents would show.
func TestConv2dMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type shape struct{ c, h, w, o, kh, kw, stride, pad int }
	shapes := []shape{
		{1, 1, 1, 1, 1, 1, 1, 0},
		{3, 17, 19, 5, 1, 1, 1, 0},   // direct, 323 pixels: two chunks
		{7, 23, 29, 9, 1, 1, 1, 0},   // direct, 667 pixels
		{5, 9, 11, 6, 1, 1, 2, 0},    // 1x1 stride 2: through the patch
		{3, 13, 7, 5, 1, 1, 1, 1},    // 1x1 padded
		{300, 7, 5, 5, 3, 3, 1, 1},   // 2700 taps: the patch bound limits the band
		{300, 3, 100, 5, 3, 3, 1, 1}, // a row's patch is too large: row segments
		{250, 2, 200, 3, 3, 3, 2, 1}, // the same, stride 2
		{3, 31, 33, 7, 3, 3, 1, 1},   // several bands, a short last one
		{2, 20, 3, 3, 3, 1, 2, 1},    // 3x1, stride 2
		{4, 6, 5, 4, 4, 2, 3, 2},     // 4x2, stride 3, pad 2
		{1, 3, 3, 2, 5, 5, 1, 2},     // kernel larger than the image
		{9, 40, 40, 13, 3, 3, 2, 0},  // stride 2, odd channels
		{16, 14, 14, 17, 3, 3, 1, 1}, // VGG-like tail
	}
	for range 40 {
		kh, kw := 1+r.IntN(4), 1+r.IntN(4)
		pad := r.IntN(3)
		shapes = append(shapes, shape{1 + r.IntN(9), max(kh, 1+r.IntN(30)), max(kw, 1+r.IntN(30)), 1 + r.IntN(11), kh, kw, 1 + r.IntN(3), pad})
	}
	var s kernels.Scratch
	for i, sh := range shapes {
		p, x := randConv(r, sh.c, sh.h, sh.w, sh.o, sh.kh, sh.kw, sh.stride, sh.pad)
		for _, logits := range []bool{false, true} {
			name := fmt.Sprintf("%d %+v logits=%v", i, sh, logits)
			if err := p.Check(logits); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want8, wantF := refConv(p, x, logits)
			if logits {
				y := make([]float32, len(wantF))
				kernels.Conv2dLogits(p, x, y, &s)
				if j := diff(y, wantF); j >= 0 {
					t.Fatalf("%s: y[%d] = %v, want %v", name, j, y[j], wantF[j])
				}
				continue
			}
			y := make([]int8, len(want8))
			kernels.Conv2dInt8(p, x, y, &s)
			if j := diff(y, want8); j >= 0 {
				t.Fatalf("%s: y[%d] = %d, want %d", name, j, y[j], want8[j])
			}
		}
	}
}

func diff[T comparable](a, b []T) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestLinearMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 60 {
		p := &kernels.LinearParams{In: 1 + r.IntN(300), Out: 1 + r.IntN(13), InScale: float32(r.Float64() + 0.01)}
		if i == 0 {
			p.In, p.Out = 4099, 4 // long rows, one block exactly
		}
		p.Weight = randInt8(r, p.In*p.Out, -127)
		p.Bias = make([]int32, p.Out)
		for o := range p.Bias {
			p.Bias[o] = int32(r.IntN(1<<20) - 1<<19)
		}
		p.Mult, p.Shift, p.OutZero, p.ReLU, p.WScale = randOut(r, p.Out)
		x := randInt8(r, p.In, -128)
		// The reference is the 1x1 convolution on a 1x1 map.
		cp := &kernels.Conv2dParams{C: p.In, H: 1, W: 1, O: p.Out, KH: 1, KW: 1, Stride: 1, OH: 1, OW: 1,
			Weight: p.Weight, Bias: p.Bias, PadValue: make([]int8, p.In), Mult: p.Mult, Shift: p.Shift,
			OutZero: p.OutZero, ReLU: p.ReLU, InScale: p.InScale, WScale: p.WScale}
		want8, _ := refConv(cp, x, false)
		_, wantF := refConv(cp, x, true)
		y8 := make([]int8, p.Out)
		kernels.LinearInt8(p, x, y8)
		yf := make([]float32, p.Out)
		kernels.LinearLogits(p, x, yf)
		if j := diff(y8, want8); j >= 0 {
			t.Fatalf("%d→%d: y[%d] = %d, want %d", p.In, p.Out, j, y8[j], want8[j])
		}
		if j := diff(yf, wantF); j >= 0 {
			t.Fatalf("%d→%d logits: y[%d] = %v, want %v", p.In, p.Out, j, yf[j], wantF[j])
		}
	}
}

func TestPoolsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for iter := range 100 {
		c, h, w := 1+r.IntN(5), 2+r.IntN(20), 2+r.IntN(20)
		x := randInt8(r, c*h*w, -128)
		if r.IntN(4) == 0 {
			x = fill[int8](c*h*w, int8(r.IntN(2)*255-128)) // all −128 or all 127
		}
		// Max-pool: the window max, −128 outside.
		k := 1 + r.IntN(min(h, w, 4))
		p := kernels.PoolParams{C: c, H: h, W: w, K: k, Stride: 1 + r.IntN(3), Pad: r.IntN(k/2 + 1)}
		if iter%3 == 0 { // VGG's 2x2 stride-2 pool has a fast path; odd sizes too
			p.K, p.Stride, p.Pad, k = 2, 2, 0, 2
		}
		p.OH, p.OW = (h+2*p.Pad-k)/p.Stride+1, (w+2*p.Pad-k)/p.Stride+1
		if err := p.CheckMax(); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		want := make([]int8, c*p.OH*p.OW)
		for i := range want {
			ch, oy, ox := i/(p.OH*p.OW), i/p.OW%p.OH, i%p.OW
			best := int8(-128)
			for ky := 0; ky < k; ky++ {
				for kx := 0; kx < k; kx++ {
					iy, ix := oy*p.Stride-p.Pad+ky, ox*p.Stride-p.Pad+kx
					v := int8(-128)
					if iy >= 0 && iy < h && ix >= 0 && ix < w {
						v = x[(ch*h+iy)*w+ix]
					}
					best = max(best, v)
				}
			}
			want[i] = best
		}
		y := make([]int8, len(want))
		kernels.MaxPool2d(&p, x, y)
		if j := diff(y, want); j >= 0 {
			t.Fatalf("max-pool %+v: y[%d] = %d, want %d", p, j, y[j], want[j])
		}

		// Average pool: math.Round (half away from zero) of the exact
		// float64 quotient; a tie S/n = k + 1/2 is exact in float64 and
		// any other quotient is at least 1/(2n) from a tie.
		a := kernels.PoolParams{C: c, H: h, W: w, OH: 1 + r.IntN(9), OW: 1 + r.IntN(9)}
		want = make([]int8, c*a.OH*a.OW)
		for i := range want {
			ch, oy, ox := i/(a.OH*a.OW), i/a.OW%a.OH, i%a.OW
			y0, y1 := oy*h/a.OH, ((oy+1)*h+a.OH-1)/a.OH
			x0, x1 := ox*w/a.OW, ((ox+1)*w+a.OW-1)/a.OW
			var sum float64
			for iy := y0; iy < y1; iy++ {
				for ix := x0; ix < x1; ix++ {
					sum += float64(x[(ch*h+iy)*w+ix])
				}
			}
			want[i] = int8(math.Round(sum / float64((y1-y0)*(x1-x0))))
		}
		y = make([]int8, len(want))
		kernels.AdaptiveAvgPool2d(&a, x, y)
		if j := diff(y, want); j >= 0 {
			t.Fatalf("avg-pool %+v: y[%d] = %d, want %d", a, j, y[j], want[j])
		}
	}
}

func TestKernelsDoNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p, x := randConv(r, 8, 20, 20, 6, 3, 3, 1, 1)
	y := make([]int8, p.O*p.OH*p.OW)
	yf := make([]float32, len(y))
	var s kernels.Scratch
	s.Reserve(p)
	lp := &kernels.LinearParams{In: 50, Out: 7, Weight: randInt8(r, 350, -127), Bias: make([]int32, 7)}
	lp.Mult, lp.Shift, lp.OutZero, lp.ReLU, lp.WScale = randOut(r, 7)
	pool := &kernels.PoolParams{C: 8, H: 20, W: 20, K: 2, Stride: 2, OH: 10, OW: 10}
	avg := &kernels.PoolParams{C: 8, H: 20, W: 20, OH: 7, OW: 7}
	n := testing.AllocsPerRun(5, func() {
		kernels.Conv2dInt8(p, x, y, &s)
		kernels.Conv2dLogits(p, x, yf, &s)
		kernels.LinearInt8(lp, x, y)
		kernels.LinearLogits(lp, x, yf)
		kernels.MaxPool2d(pool, x, y)
		kernels.AdaptiveAvgPool2d(avg, x, y)
		kernels.ReLU(y, y, 3)
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func TestCheckRejects(t *testing.T) {
	good := kernels.Conv2dParams{C: 1, H: 3, W: 3, O: 1, KH: 3, KW: 3, Stride: 1, Pad: 1, OH: 3, OW: 3,
		Weight: make([]int8, 9), Bias: []int32{0}, PadValue: []int8{0}, Mult: []int32{1}, Shift: []int32{0}, WScale: []float32{1}}
	if err := good.Check(false); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(p *kernels.Conv2dParams){
		"output size": func(p *kernels.Conv2dParams) { p.OW = 2 },
		"weights":     func(p *kernels.Conv2dParams) { p.Weight = p.Weight[:8] },
		"pad values":  func(p *kernels.Conv2dParams) { p.PadValue = nil },
		"shift":       func(p *kernels.Conv2dParams) { p.Shift = []int32{31} },
		"zero stride": func(p *kernels.Conv2dParams) { p.Stride = 0 },
		"bias":        func(p *kernels.Conv2dParams) { p.Bias = nil },
	} {
		p := good
		mod(&p)
		if p.Check(false) == nil {
			t.Errorf("%s: Check accepted a bad convolution", name)
		}
	}
	lp := kernels.LinearParams{In: 2, Out: 1, Weight: make([]int8, 2), Bias: []int32{0}}
	if lp.Check(true) == nil {
		t.Error("Linear logits without w_scale accepted")
	}
	if (&kernels.PoolParams{C: 1, H: 4, W: 4, K: 2, Stride: 2, Pad: 2, OH: 4, OW: 4}).CheckMax() == nil {
		t.Error("max-pool with pad > K/2 accepted")
	}
}
