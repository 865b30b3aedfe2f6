package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// forward builds a one-input model from layers (named l0, l1, … unless
// named) and runs the float reference on x.
func forward(t *testing.T, in Shape, x []float32, layers ...Layer) []float32 {
	t.Helper()
	m := &Model{Name: "test", Input: in, Layers: nameLayers(layers)}
	y, err := m.ForwardFloat(x)
	if err != nil {
		t.Fatalf("ForwardFloat: %v", err)
	}
	return y
}

func nameLayers(layers []Layer) []Layer {
	out := append([]Layer(nil), layers...)
	for i := range out {
		if out[i].Name == "" {
			out[i].Name = fmt.Sprintf("l%d", i)
		}
	}
	return out
}

// closeTo reports whether got and want agree within rel relative to the
// larger magnitude (with an absolute floor of rel near zero).
func closeTo(got, want float32, rel float64) bool {
	g, w := float64(got), float64(want)
	return math.Abs(g-w) <= rel*math.Max(1, math.Max(math.Abs(g), math.Abs(w)))
}

func assertClose(t *testing.T, got, want []float32, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values %v, want %d values %v", len(got), got, len(want), want)
	}
	for i := range got {
		if !closeTo(got[i], want[i], rel) {
			t.Fatalf("value %d = %g, want %g\n got  %v\n want %v", i, got[i], want[i], got, want)
		}
	}
}

// heInit fills every parameterised layer of a resolved model with
// deterministic weights: Kaiming-uniform (bound √(6/fan_in), the He variance
// 2/fan_in) for Conv2d and Linear, small biases, and BN statistics near the
// identity. Uniform rather than normal keeps vgg11's ~10^8 weights cheap.
func heInit(t *testing.T, m *Model, seed uint64) {
	t.Helper()
	if _, err := m.Resolve(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	uniform := func(n int, bound float64) []float32 {
		v := make([]float32, n)
		b := float32(bound)
		for i := range v {
			v[i] = (2*rng.Float32() - 1) * b
		}
		return v
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case Conv2d, Linear:
			fanIn := l.In
			if l.Kind == Conv2d {
				fanIn = l.In * l.KH * l.KW
			}
			l.Weight = uniform(l.Out*fanIn, math.Sqrt(6/float64(fanIn)))
			if l.Bias {
				l.BiasData = uniform(l.Out, 0.01)
			}
		case BatchNorm2d:
			l.Gamma, l.Beta, l.Mean, l.Var = uniform(l.In, 0.1), uniform(l.In, 0.1), uniform(l.In, 0.1), uniform(l.In, 0.1)
			for c := range l.In {
				l.Gamma[c]++
				l.Var[c] += 1.1 // keeps var positive
			}
		}
	}
}

func TestConv2dFloat(t *testing.T) {
	// x is the 3x3 image
	//	1 2 3
	//	4 5 6
	//	7 8 9
	x3 := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	// k is the 2x2 kernel
	//	1 2
	//	3 4
	k := []float32{1, 2, 3, 4}
	tests := []struct {
		name  string
		in    Shape
		x     []float32
		layer Layer
		want  []float32
	}{
		{
			name:  "2x2 kernel, stride 1, no pad",
			in:    Shape{1, 3, 3},
			x:     x3,
			layer: Layer{Kind: Conv2d, Out: 1, KH: 2, KW: 2, Stride: 1, Weight: k},
			// (0,0) 1·1+2·2+4·3+5·4 = 37   (0,1) 2·1+3·2+5·3+6·4 = 47
			// (1,0) 4·1+5·2+7·3+8·4 = 67   (1,1) 5·1+6·2+8·3+9·4 = 77
			want: []float32{37, 47, 67, 77},
		},
		{
			name:  "2x2 kernel, pad 1, stride 2",
			in:    Shape{1, 3, 3},
			x:     x3,
			layer: Layer{Kind: Conv2d, Out: 1, KH: 2, KW: 2, Stride: 2, Pad: 1, Weight: k},
			// Output (3+2−2)/2+1 = 2 per side; windows start at input
			// rows/cols −1 and 1.
			// (0,0) rows −1..0, cols −1..0: only x[0][0]=1 under k=4 → 4
			// (0,1) rows −1..0, cols 1..2: 2·3 + 3·4 = 18
			// (1,0) rows 1..2, cols −1..0: 4·2 + 7·4 = 36
			// (1,1) rows 1..2, cols 1..2: 5·1+6·2+8·3+9·4 = 77
			want: []float32{4, 18, 36, 77},
		},
		{
			name: "2 in, 2 out, bias",
			in:   Shape{2, 2, 3},
			// channel 0: 1 2 3 / 4 5 6; channel 1: 7 8 9 / 10 11 12
			x: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
			layer: Layer{Kind: Conv2d, Out: 2, KH: 2, KW: 2, Stride: 1, Bias: true,
				// OIHW: out 0 = [1 0;0 1] on in 0, [0 1;1 0] on in 1
				//       out 1 = [1 1;1 1] on in 0, [−1 0;0 −1] on in 1
				Weight: []float32{
					1, 0, 0, 1, 0, 1, 1, 0,
					1, 1, 1, 1, -1, 0, 0, -1,
				},
				BiasData: []float32{10, -5},
			},
			// out 0, x=0: (1+5) + (8+10) + 10 = 34;  x=1: (2+6) + (9+11) + 10 = 38
			// out 1, x=0: (1+2+4+5) + (−7−11) − 5 = −11;  x=1: (2+3+5+6) + (−8−12) − 5 = −9
			want: []float32{34, 38, -11, -9},
		},
		{
			name: "1x1 conv",
			in:   Shape{2, 1, 2},
			// channel 0: 1 2; channel 1: 3 4
			x: []float32{1, 2, 3, 4},
			// out 0 = c0 + c1; out 1 = 2·c0 − c1; out 2 = 0.5·c0
			layer: Layer{Kind: Conv2d, Out: 3, KH: 1, KW: 1, Stride: 1, Weight: []float32{1, 1, 2, -1, 0.5, 0}},
			// out 0: 1+3, 2+4; out 1: 2−3, 4−4; out 2: 0.5, 1
			want: []float32{4, 6, -1, 0, 0.5, 1},
		},
		{
			name: "1x3 kernel",
			in:   Shape{1, 2, 4},
			// 1 2 3 4
			// 5 6 7 8
			x:     []float32{1, 2, 3, 4, 5, 6, 7, 8},
			layer: Layer{Kind: Conv2d, Out: 1, KH: 1, KW: 3, Stride: 1, Weight: []float32{1, 2, 3}},
			// row 0: 1+4+9 = 14, 2+6+12 = 20; row 1: 5+12+21 = 38, 6+14+24 = 44
			want: []float32{14, 20, 38, 44},
		},
		{
			name:  "1x3 kernel, pad 1, stride 2",
			in:    Shape{1, 2, 4},
			x:     []float32{1, 2, 3, 4, 5, 6, 7, 8},
			layer: Layer{Kind: Conv2d, Out: 1, KH: 1, KW: 3, Stride: 2, Pad: 1, Weight: []float32{1, 2, 3}},
			// H: (2+2−1)/2+1 = 2 rows at input rows −1 (all padding) and 1.
			// W: (4+2−3)/2+1 = 2 columns starting at −1 and 1.
			// row −1: 0, 0
			// row 1: 0·1 + 5·2 + 6·3 = 28;  6·1 + 7·2 + 8·3 = 44
			want: []float32{0, 0, 28, 44},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertClose(t, forward(t, tt.in, tt.x, tt.layer), tt.want, 0)
		})
	}
}

func TestMaxPool2dFloat(t *testing.T) {
	tests := []struct {
		name  string
		in    Shape
		x     []float32
		layer Layer
		want  []float32
	}{
		{
			name: "2x2 stride 2 with negatives",
			in:   Shape{1, 4, 4},
			x: []float32{
				-1, -2, 3, -4,
				-5, -6, -7, -8,
				9, -10, -11, -12,
				-13, 14, -15, -16,
			},
			layer: Layer{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2},
			// max(−1,−2,−5,−6) = −1, max(3,−4,−7,−8) = 3,
			// max(9,−10,−13,14) = 14, max(−11,−12,−15,−16) = −11
			want: []float32{-1, 3, 14, -11},
		},
		{
			name: "3x3 stride 2 pad 1 pads with -Inf",
			in:   Shape{1, 4, 4},
			x: []float32{
				-1, -2, -3, -4,
				-5, -6, -7, -8,
				-9, -10, -11, -12,
				-13, -14, -15, -16,
			},
			layer: Layer{Kind: MaxPool2d, KH: 3, KW: 3, Stride: 2, Pad: 1},
			// Output (4+2−3)/2+1 = 2 (floor; ceil mode would give 3).
			// Windows cover rows/cols −1..1 and 1..3; zero padding would
			// make (0,0) zero.
			// (0,0) rows 0..1 cols 0..1: −1   (0,1) rows 0..1 cols 1..3: −2
			// (1,0) rows 1..3 cols 0..1: −5   (1,1) rows 1..3 cols 1..3: −6
			want: []float32{-1, -2, -5, -6},
		},
		{
			name: "floor mode drops the ragged edge",
			in:   Shape{1, 3, 3},
			x: []float32{
				1, 2, 9,
				3, 4, 9,
				9, 9, 9,
			},
			layer: Layer{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2},
			// (3−2)/2+1 = 1: only the top-left window, max(1,2,3,4) = 4.
			want: []float32{4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertClose(t, forward(t, tt.in, tt.x, tt.layer), tt.want, 0)
		})
	}
}

func TestAdaptiveAvgPool2dFloat(t *testing.T) {
	iota := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i)
		}
		return v
	}
	tests := []struct {
		name       string
		in         Shape
		x          []float32
		outH, outW int
		want       []float32
	}{
		{
			name: "5x5 to 2x2, overlapping bins",
			in:   Shape{1, 5, 5},
			x:    iota(25), // x[r][c] = 5r + c
			outH: 2, outW: 2,
			// Bins [floor(i·5/2), ceil((i+1)·5/2)) = [0,3) and [2,5).
			// Mean over rows R, cols C = 5·mean(R) + mean(C);
			// mean[0,3) = 1, mean[2,5) = 3.
			// (0,0) 5+1 = 6  (0,1) 5+3 = 8  (1,0) 15+1 = 16  (1,1) 15+3 = 18
			want: []float32{6, 8, 16, 18},
		},
		{
			name: "1x1 to 3x3 replicates",
			in:   Shape{2, 1, 1},
			x:    []float32{2, -3},
			outH: 3, outW: 3,
			// Every bin is [floor(i/3), ceil((i+1)/3)) = [0,1).
			want: []float32{2, 2, 2, 2, 2, 2, 2, 2, 2, -3, -3, -3, -3, -3, -3, -3, -3, -3},
		},
		{
			name: "4x4 to 2x2",
			in:   Shape{1, 4, 4},
			x:    iota(16), // x[r][c] = 4r + c
			outH: 2, outW: 2,
			// Bins [0,2) and [2,4): means 0.5 and 2.5; value 4·mean(R) + mean(C).
			// (0,0) 2+0.5  (0,1) 2+2.5  (1,0) 10+0.5  (1,1) 10+2.5
			want: []float32{2.5, 4.5, 10.5, 12.5},
		},
		{
			name: "3x2 to 2x1",
			in:   Shape{1, 3, 2},
			// 1 2
			// 3 4
			// 5 6
			x:    []float32{1, 2, 3, 4, 5, 6},
			outH: 2, outW: 1,
			// Rows [0,2) and [1,3), columns [0,2).
			// (1+2+3+4)/4 = 2.5, (3+4+5+6)/4 = 4.5
			want: []float32{2.5, 4.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := forward(t, tt.in, tt.x, Layer{Kind: AdaptiveAvgPool2d, OutH: tt.outH, OutW: tt.outW})
			assertClose(t, got, tt.want, 0)
		})
	}
}

func TestElementwiseAndLinearFloat(t *testing.T) {
	tests := []struct {
		name   string
		in     Shape
		x      []float32
		layers []Layer
		want   []float32
	}{
		{
			name: "batchnorm",
			in:   Shape{2, 1, 2},
			// channel 0: 1 5; channel 1: −2 4
			x: []float32{1, 5, -2, 4},
			layers: []Layer{{Kind: BatchNorm2d, Eps: 0.25,
				Gamma: []float32{2, 0.5}, Beta: []float32{1, -1},
				Mean: []float32{1, 0}, Var: []float32{3.75, 0}}},
			// ch 0: √(3.75+0.25) = 2: (1−1)/2·2+1 = 1, (5−1)/2·2+1 = 5
			// ch 1: √(0+0.25) = 0.5: (−2−0)/0.5·0.5−1 = −3, (4−0)/0.5·0.5−1 = 3
			want: []float32{1, 5, -3, 3},
		},
		{
			name:   "relu",
			in:     Shape{1, 1, 4},
			x:      []float32{-1, 0, 2.5, -0.5},
			layers: []Layer{{Kind: ReLU}},
			want:   []float32{0, 0, 2.5, 0},
		},
		{
			name:   "dropout is the identity",
			in:     Shape{1, 1, 3},
			x:      []float32{-1, 2, 3},
			layers: []Layer{{Kind: Dropout, P: 0.5}},
			want:   []float32{-1, 2, 3},
		},
		{
			name: "linear with bias",
			in:   Shape{3, 1, 1},
			x:    []float32{1, 2, 3},
			layers: []Layer{{Kind: Linear, Out: 2, Bias: true,
				Weight:   []float32{1, 2, 3, -1, 0, 1},
				BiasData: []float32{0.5, -2}}},
			// 1·1 + 2·2 + 3·3 + 0.5 = 14.5;  −1 + 0 + 3 − 2 = 0
			want: []float32{14.5, 0},
		},
		{
			name: "flatten then linear reads CHW order",
			in:   Shape{2, 2, 2},
			// channel 0: 1 2 / 3 4; channel 1: 5 6 / 7 8
			x: []float32{1, 2, 3, 4, 5, 6, 7, 8},
			layers: []Layer{
				{Kind: Flatten},
				{Kind: Linear, Out: 3, Weight: []float32{
					1, 1, 1, 1, 0, 0, 0, 0, // all of channel 0
					0, 1, 0, 1, 0, 1, 0, 1, // column 1 of both channels
					0, 0, 0, 0, 0, 0, 1, 1, // row 1 of channel 1
				}},
			},
			// 1+2+3+4 = 10;  2+4+6+8 = 20;  7+8 = 15.
			// An HWC flatten (1 5 2 6 3 7 4 8) would give 14, 26, 12.
			want: []float32{10, 20, 15},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertClose(t, forward(t, tt.in, tt.x, tt.layers...), tt.want, 1e-7)
		})
	}
}

// tinyModel is conv→bn→relu→maxpool→avgpool→flatten→linear on a 1x4x4
// input, small enough to work through by hand (see TestTinyModelFloat).
func tinyModel() (*Model, []float32) {
	m := &Model{Name: "tiny", Input: Shape{1, 4, 4}, Layers: []Layer{
		{Name: "features.0", Kind: Conv2d, Out: 2, KH: 2, KW: 2, Stride: 1,
			// out 0: [1 0; 0 1] (diagonal sum); out 1: [0 1; −1 0]
			Weight: []float32{1, 0, 0, 1, 0, 1, -1, 0}},
		{Name: "features.1", Kind: BatchNorm2d, Eps: 0.25,
			Gamma: []float32{0.5, 2}, Beta: []float32{1, -1},
			Mean: []float32{2, -1}, Var: []float32{3.75, 0.75}},
		{Name: "features.2", Kind: ReLU},
		{Name: "features.3", Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2, Pad: 1},
		{Name: "avgpool", Kind: AdaptiveAvgPool2d, OutH: 1, OutW: 2},
		{Name: "flatten", Kind: Flatten, Functional: true},
		{Name: "classifier.0", Kind: Linear, Out: 2, Bias: true,
			Weight:   []float32{1, -1, 2, 0, 0, 1, 0, -0.5},
			BiasData: []float32{0.5, 1}},
	}}
	x := []float32{
		1, -2, 3, 0,
		-4, 5, -6, 2,
		7, -8, 9, -1,
		0, 2, -3, 4,
	}
	return m, x
}

func TestTinyModelFloat(t *testing.T) {
	m, x := tinyModel()
	// conv out 0: x[r][c] + x[r+1][c+1]
	//	1+5=6    −2−6=−8  3+2=5
	//	−4−8=−12 5+9=14   −6−1=−7
	//	7+2=9    −8−3=−11 9+4=13
	// conv out 1: x[r][c+1] − x[r+1][c]
	//	−2+4=2   3−5=−2   0+6=6
	//	5−7=−2   −6+8=2   2−9=−7
	//	−8−0=−8  9−2=7    −1+3=2
	// bn ch 0: √(3.75+0.25) = 2 → (v−2)/2·0.5+1 = (v−2)/4+1
	//	2 −1.5 1.75 / −2.5 4 −1.25 / 2.75 −2.25 3.75
	// bn ch 1: √(0.75+0.25) = 1 → (v+1)·2−1 = 2v+1
	//	5 −3 13 / −3 5 −13 / −15 15 5
	// relu: ch 0: 2 0 1.75 / 0 4 0 / 2.75 0 3.75;  ch 1: 5 0 13 / 0 5 0 / 0 15 5
	// maxpool 2x2 s2 p1: (3+2−2)/2+1 = 2, windows at rows/cols −1..0 and 1..2
	//	ch 0: 2, max(0,1.75)=1.75 / max(0,2.75)=2.75, max(4,0,0,3.75)=4
	//	ch 1: 5, max(0,13)=13 / max(0,0)=0, max(5,0,15,5)=15
	// avgpool to 1x2: rows [0,2), columns [0,1) and [1,2)
	//	ch 0: (2+2.75)/2 = 2.375, (1.75+4)/2 = 2.875
	//	ch 1: (5+0)/2 = 2.5,      (13+15)/2 = 14
	// linear: 2.375 − 2.875 + 2·2.5 + 0 + 0.5 = 5
	//         2.875 − 0.5·14 + 1 = −3.125
	want := []float32{5, -3.125}
	wantActs := [][]float32{
		{6, -8, 5, -12, 14, -7, 9, -11, 13, 2, -2, 6, -2, 2, -7, -8, 7, 2},
		{2, -1.5, 1.75, -2.5, 4, -1.25, 2.75, -2.25, 3.75, 5, -3, 13, -3, 5, -13, -15, 15, 5},
		{2, 0, 1.75, 0, 4, 0, 2.75, 0, 3.75, 5, 0, 13, 0, 5, 0, 0, 15, 5},
		{2, 1.75, 2.75, 4, 5, 13, 0, 15},
		{2.375, 2.875, 2.5, 14},
		{2.375, 2.875, 2.5, 14},
		want,
	}
	got, err := m.ForwardFloat(x)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, got, want, 1e-7)

	out, acts, err := m.ForwardFloatTrace(x)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, out, want, 1e-7)
	if len(acts) != len(wantActs) {
		t.Fatalf("trace has %d activations, want %d", len(acts), len(wantActs))
	}
	for i := range acts {
		t.Run(m.Layers[i].Name, func(t *testing.T) { assertClose(t, acts[i], wantActs[i], 1e-7) })
	}
	// Trace outputs are independent slices: writing one must not change
	// another (flatten's output is a copy of the pool's).
	acts[5][0] = 100
	if acts[4][0] != 2.375 {
		t.Errorf("trace activations alias each other")
	}
}

func TestForwardFloatDoesNotModify(t *testing.T) {
	m, x := tinyModel()
	m.Layers[0].In, m.Layers[1].In = 0, 0
	x0 := append([]float32(nil), x...)
	w0 := append([]float32(nil), m.Layers[0].Weight...)
	if _, err := m.ForwardFloat(x); err != nil {
		t.Fatal(err)
	}
	assertClose(t, x, x0, 0)
	assertClose(t, m.Layers[0].Weight, w0, 0)
	// Resolve runs on a copy, so the caller's model is untouched and
	// concurrent runs do not race on In.
	if m.Layers[0].In != 0 || m.Layers[1].In != 0 {
		t.Errorf("ForwardFloat filled In on the caller's model")
	}
}

// Sessions may share one model across goroutines; go test -race checks
// that ForwardFloat only reads it.
func TestForwardFloatConcurrent(t *testing.T) {
	m, x := tinyModel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			y, err := m.ForwardFloat(x)
			if err == nil && (y[0] != 5 || y[1] != -3.125) {
				err = fmt.Errorf("got %v, want [5 -3.125]", y)
			}
			errs[g] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestForwardFloatErrors(t *testing.T) {
	conv := func() Layer {
		return Layer{Name: "features.0", Kind: Conv2d, Out: 1, KH: 1, KW: 1, Stride: 1, Weight: []float32{1}}
	}
	tests := []struct {
		name   string
		m      *Model
		x      []float32
		want   []string // substrings of the message
		wantLE string   // name in a *LayerError, if one is expected
	}{
		{
			name: "wrong input length",
			m:    &Model{Input: Shape{1, 3, 3}, Layers: []Layer{conv()}},
			x:    make([]float32, 5),
			want: []string{"input has 5 values, want 1×3×3 = 9"},
		},
		{
			name: "conv without weights",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{
				{Name: "features.0", Kind: Conv2d, Out: 1, KH: 1, KW: 1, Stride: 1}}},
			x:      make([]float32, 4),
			want:   []string{"features.0", "no weights"},
			wantLE: "features.0",
		},
		{
			name: "linear with bias=true but no bias",
			m: &Model{Input: Shape{2, 1, 1}, Layers: []Layer{
				{Name: "classifier.0", Kind: Linear, Out: 1, Bias: true, Weight: []float32{1, 1}}}},
			x:      make([]float32, 2),
			want:   []string{"classifier.0", "no bias"},
			wantLE: "classifier.0",
		},
		{
			name: "batchnorm without running_var",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv(),
				{Name: "features.1", Kind: BatchNorm2d, Gamma: []float32{1}, Beta: []float32{0}, Mean: []float32{0}}}},
			x:      make([]float32, 4),
			want:   []string{"features.1", "running_var"},
			wantLE: "features.1",
		},
		{
			name: "batchnorm with var+eps = 0",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv(),
				{Name: "features.1", Kind: BatchNorm2d, Gamma: []float32{1}, Beta: []float32{0}, Mean: []float32{0}, Var: []float32{0}}}},
			x:      make([]float32, 4),
			want:   []string{"features.1", "var+eps must be positive"},
			wantLE: "features.1",
		},
		{
			name: "resolve fails",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{
				{Name: "features.0", Kind: Conv2d, Out: 1, KH: 1, KW: 1, Stride: 1, Weight: []float32{1, 2}}}},
			x:      make([]float32, 4),
			want:   []string{"features.0", "weight has 2 values, want 1"},
			wantLE: "features.0",
		},
		{
			name: "no layers",
			m:    &Model{Input: Shape{1, 1, 1}},
			x:    []float32{1},
			want: []string{"no layers"},
		},
		{
			name: "nil model",
			x:    []float32{1},
			want: []string{"nil model"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, trace := range []bool{false, true} {
				var err error
				if trace {
					_, _, err = tt.m.ForwardFloatTrace(tt.x)
				} else {
					_, err = tt.m.ForwardFloat(tt.x)
				}
				if err == nil {
					t.Fatalf("trace=%v: no error", trace)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("trace=%v: error %q does not contain %q", trace, err, w)
					}
				}
				if tt.wantLE != "" {
					var le *LayerError
					if !errors.As(err, &le) || le.Name != tt.wantLE {
						t.Errorf("trace=%v: error %v is not a *LayerError for %s", trace, err, tt.wantLE)
					}
				}
			}
		})
	}
}

// TestVGG11Smoke runs the whole of vgg11 at 3x32x32: ~0.28 GMACs, but
// 133M float32 weights (530 MB, 411 MB of them in classifier.0, which sees
// the 1x1 map replicated to 7x7). On bare metal it takes well under a
// second; in a VM first-touching that memory can dominate. -short skips it
// (qemu-user runs, small boards).
func TestVGG11Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 530 MB of weights")
	}
	m, err := VGG("vgg11", Shape{3, 32, 32}, 10)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	heInit(t, m, 1)
	initTime := time.Since(start)
	rng := rand.New(rand.NewPCG(2, 0))
	x := make([]float32, m.Input.Elems())
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	y, err := m.ForwardFloat(x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vgg11 3x32x32: weights in %v, forward in %v", initTime, time.Since(start)-initTime)
	if len(y) != 10 {
		t.Fatalf("got %d logits, want 10", len(y))
	}
	allZero := true
	for i, v := range y {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d = %v, want finite: %v", i, v, y)
		}
		allZero = allZero && v == 0
	}
	if allZero {
		t.Errorf("all logits are zero: the signal died on the way")
	}
}
