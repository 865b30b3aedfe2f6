package infer

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// The cost of the 1x1 graph features, computed by hand from the formulas in
// the package doc (params = Cin·Cout·kH·kW + Cout, MACs = Cin·Cout·kH·kW·
// Hout·Wout; squeeze-excite: params = C·r + r + r·C + C, MACs = 2·C·r, the
// C·H·W gate multiplies not counted).
func TestOneByOneCosts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            Shape
		layer         Layer
		out           Shape
		params, macs  int64
		weightsNoBias int64
	}{
		// 64·16 + 16 + 16·64 + 64 = 2,128; MACs 2·64·16 = 2,048.
		{"squeeze-excite 64/16", Shape{64, 14, 14}, Layer{Name: "se", Kind: SqueezeExcite, Out: 16}, Shape{64, 14, 14}, 2128, 2048, 2048},
		// 512·32·2 + 32 + 512 = 33,312; MACs 32,768.
		{"squeeze-excite 512/32", Shape{512, 7, 7}, Layer{Name: "se", Kind: SqueezeExcite, Out: 32}, Shape{512, 7, 7}, 33312, 32768, 32768},
		// 64·128 + 128 = 8,320; out 7x7: MACs 64·128·49 = 401,408.
		{"stride-2 1x1 downsampling", Shape{64, 14, 14}, Layer{Name: "down", Kind: Conv2d, Out: 128, KH: 1, KW: 1, Stride: 2, Bias: true}, Shape{128, 7, 7}, 8320, 401408, 8192},
		// Odd size: (15−1)/2+1 = 8 → 64·128·64 = 524,288.
		{"stride-2 1x1 on an odd map", Shape{64, 15, 15}, Layer{Name: "down", Kind: Conv2d, Out: 128, KH: 1, KW: 1, Stride: 2, Bias: true}, Shape{128, 8, 8}, 8320, 524288, 8192},
		// 16·64 + 64 = 1,088; MACs 16·64·64 = 65,536.
		{"channel expansion 16→64", Shape{16, 8, 8}, Layer{Name: "expand", Kind: Conv2d, Out: 64, KH: 1, KW: 1, Stride: 1, Bias: true}, Shape{64, 8, 8}, 1088, 65536, 1024},
		// 64·64 + 64 = 4,160; MACs 64·64·64 = 262,144.
		{"cross-channel fusion 64→64", Shape{64, 8, 8}, Layer{Name: "fuse", Kind: Conv2d, Out: 64, KH: 1, KW: 1, Stride: 1, Bias: true}, Shape{64, 8, 8}, 4160, 262144, 4096},
		// VGG16's reduction 512→64 on 7x7: 512·64 + 64 = 32,832; MACs 32,768·49 = 1,605,632.
		{"reduction 512→64", Shape{512, 7, 7}, Layer{Name: "reduce", Kind: Conv2d, Out: 64, KH: 1, KW: 1, Stride: 1, Bias: true, Role: RoleReduce}, Shape{64, 7, 7}, 32832, 1605632, 32768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Model{Name: tc.name, Input: tc.in, Layers: []Layer{tc.layer}}
			c, err := m.Cost(Int8)
			if err != nil {
				t.Fatal(err)
			}
			lc := c.Layers[0]
			if lc.Out != tc.out || lc.Params != tc.params || lc.MACs != tc.macs || lc.Weights != tc.weightsNoBias {
				t.Errorf("out %v params %d MACs %d weights %d, want %v %d %d %d", lc.Out, lc.Params, lc.MACs, lc.Weights, tc.out, tc.params, tc.macs, tc.weightsNoBias)
			}
		})
	}
}

// Gates worked out by hand: sigmoid(0) = 0.5 and sigmoid(ln 3) = 0.75.
func TestSqueezeExciteFloatByHand(t *testing.T) {
	// Two channels of 2x1: means 1 and 3. Squeeze (r = 1): h = relu(0.5·1
	// + 0.5·3 − 1) = 1. Excite: s0 = 0·h + 0 → 0.5; s1 = ln3·h + 0 → 0.75.
	l := Layer{Name: "se", Kind: SqueezeExcite, Out: 1,
		Weight: []float32{0.5, 0.5}, BiasData: []float32{-1},
		Weight2: []float32{0, float32(math.Log(3))}, Bias2: []float32{0, 0}}
	m := &Model{Input: Shape{2, 2, 1}, Layers: []Layer{l}}
	y, err := m.ForwardFloat([]float32{0, 2, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1, 1.5, 3}
	for i := range want {
		if math.Abs(float64(y[i]-want[i])) > 1e-6 {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
	// The squeeze's ReLU: a negative pre-activation gives h = 0, so both
	// gates are sigmoid(bias2).
	l.BiasData = []float32{-10}
	l.Bias2 = []float32{float32(math.Log(3)), 0}
	m.Layers[0] = l
	if y, _ = m.ForwardFloat([]float32{0, 2, 2, 4}); math.Abs(float64(y[1]-1.5)) > 1e-6 || math.Abs(float64(y[3]-2)) > 1e-6 {
		t.Errorf("y = %v, want [0 1.5 1 2]", y)
	}
}

// The int8 squeeze-excite, exactly as a Session runs it (seGatesInt8 then
// seScaleInt8), against the float reference on the dequantized input: the
// gates are the same float64 numbers, so the only errors are the 15-bit
// gate (|x−zero| ≤ 255 steps · 2^-16) and the final rounding (½ step): at
// most 0.504 steps. That is the stated tolerance.
func TestSqueezeExciteInt8MatchesFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		c, r, h, w int
		zero       int32
	}{{16, 4, 5, 7, -128}, {64, 16, 3, 3, 5}, {3, 1, 1, 1, -20}, {32, 8, 14, 14, 0}} {
		in := Shape{tc.c, tc.h, tc.w}
		q := QLayer{Name: "se", Kind: SqueezeExcite, In: tc.c, Out: tc.r, InScale: 0.05, OutScale: 0.05, InZero: tc.zero, OutZero: tc.zero,
			SEWeight: randF32(rng, tc.r*tc.c, 0.5), SEBias: randF32(rng, tc.r, 0.2), SEWeight2: randF32(rng, tc.c*tc.r, 1), SEBias2: randF32(rng, tc.c, 0.5)}
		x := make([]int8, in.Elems())
		for i := range x {
			x[i] = int8(rng.IntN(256) - 128)
		}
		s := seScratch{mean: make([]float64, tc.c), hidden: make([]float64, tc.r), gates: make([]float64, tc.c), mult: make([]int32, tc.c)}
		seGatesInt8(&q, in, x, &s)
		y := make([]int8, len(x))
		seScaleInt8(x, y, s.mult, tc.zero, tc.h*tc.w)

		deq := make([]float32, len(x))
		for i, v := range x {
			deq[i] = float32(int32(v)-tc.zero) * q.InScale
		}
		fl := Layer{Name: "se", Kind: SqueezeExcite, Out: tc.r, Weight: q.SEWeight, BiasData: q.SEBias, Weight2: q.SEWeight2, Bias2: q.SEBias2}
		ref, err := (&Model{Input: in, Layers: []Layer{fl}}).ForwardFloat(deq)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range y {
			got := float64(int32(y[i])-tc.zero) * float64(q.InScale)
			worst = max(worst, math.Abs(got-float64(ref[i]))/float64(q.InScale))
		}
		if worst > 0.504 {
			t.Errorf("%v zero %d: worst error %.4f steps, want ≤ 0.504", in, tc.zero, worst)
		}
	}
}

func randF32(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(std * rng.NormFloat64())
	}
	return v
}

// seNet is a small network with the 1x1 graph features: expansion, a
// squeeze-excite block, stride-2 1x1 downsampling and cross-channel fusion.
func seNet(seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	he := func(n, fan int) []float32 { return randF32(rng, n, math.Sqrt(2/float64(fan))) }
	m := &Model{Name: "senet", Class: "SENet", Input: Shape{3, 12, 12}, Layers: []Layer{
		{Name: "features.0", Kind: Conv2d, In: 3, Out: 8, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true, Weight: he(8*27, 27), BiasData: randF32(rng, 8, 0.05)},
		{Name: "features.1", Kind: ReLU},
		{Name: "features.2", Kind: Conv2d, In: 8, Out: 24, KH: 1, KW: 1, Stride: 1, Bias: true, Weight: he(24*8, 8), BiasData: randF32(rng, 24, 0.05)},
		{Name: "features.3", Kind: ReLU},
		{Name: "features.4", Kind: SqueezeExcite, In: 24, Out: 6, Bias: true, Weight: randF32(rng, 6*24, 0.3), BiasData: randF32(rng, 6, 0.1),
			Weight2: randF32(rng, 24*6, 0.5), Bias2: randF32(rng, 24, 0.3)},
		{Name: "features.5", Kind: Conv2d, In: 24, Out: 16, KH: 1, KW: 1, Stride: 2, Bias: true, Weight: he(16*24, 24), BiasData: randF32(rng, 16, 0.05)},
		{Name: "features.6", Kind: ReLU},
		{Name: "features.7", Kind: Conv2d, In: 16, Out: 16, KH: 1, KW: 1, Stride: 1, Bias: true, Weight: he(16*16, 16), BiasData: randF32(rng, 16, 0.05)},
		{Name: "features.8", Kind: ReLU},
		{Name: "flatten", Kind: Flatten, Functional: true},
		{Name: "classifier.0", Kind: Linear, In: 16 * 6 * 6, Out: 10, Bias: true, Weight: he(10*576, 576), BiasData: randF32(rng, 10, 0.05)},
	}}
	m.Meta.Spec = InputSpec{ChannelOrder: "RGB", Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}, Resize: "stretch"}
	return m
}

// A squeeze-excite and a stride-2 1x1 run in a Session: threads give the
// same bits as one thread, and Run allocates nothing.
func TestSessionSqueezeExciteThreads(t *testing.T) {
	m := seNet(5)
	q, err := RandomQModel(&Model{Input: m.Input, Layers: []Layer{m.Layers[0], m.Layers[1], m.Layers[2], m.Layers[3], m.Layers[5], m.Layers[6], m.Layers[9], m.Layers[10]}}, 6)
	if err != nil {
		t.Fatal(err)
	}
	prev := q.Layers[1]
	se := QLayer{Name: "features.4", Kind: SqueezeExcite, In: 24, Out: 6, InScale: prev.OutScale, OutScale: prev.OutScale,
		InZero: prev.OutZero, OutZero: prev.OutZero, SEWeight: m.Layers[4].Weight, SEBias: m.Layers[4].BiasData,
		SEWeight2: m.Layers[4].Weight2, SEBias2: m.Layers[4].Bias2}
	q.Layers = append(q.Layers[:2], append([]QLayer{se}, q.Layers[2:]...)...)
	pix := make([]byte, m.Input.Elems())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pix {
		pix[i] = byte(rng.IntN(256))
	}
	var ref []float32
	for _, threads := range []int{1, 2, 3, 7} {
		s, err := NewSessionThreads(q, threads)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPixels(pix); err != nil {
			t.Fatal(err)
		}
		out, err := s.Run()
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = append([]float32(nil), out...)
		} else if !reflect.DeepEqual(out, ref) {
			t.Errorf("%d threads: %v, 1 thread: %v", threads, out, ref)
		}
		allocs := testing.AllocsPerRun(20, func() {
			_ = s.SetPixels(pix)
			_, _ = s.Run()
		})
		if allocs != 0 {
			t.Errorf("%d threads: Run allocates %.1f times", threads, allocs)
		}
		s.Close()
	}
	if strings.Contains(seNet(1).Layers[4].Module(), "SqueezeExcitation(input_channels=24, squeeze_channels=6)") == false {
		t.Errorf("module text %q", seNet(1).Layers[4].Module())
	}
}
