package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// gradCase is a tiny model that exercises some layer kinds.
type gradCase struct {
	name   string
	input  infer.Shape
	layers []infer.Layer
}

func conv(out, kh, kw, stride, pad int, bias bool) infer.Layer {
	return infer.Layer{Kind: infer.Conv2d, Out: out, KH: kh, KW: kw, Stride: stride, Pad: pad, Bias: bias}
}

func linear(out int, bias bool) infer.Layer {
	return infer.Layer{Kind: infer.Linear, Out: out, Bias: bias}
}

var (
	relu    = infer.Layer{Kind: infer.ReLU}
	flatten = infer.Layer{Kind: infer.Flatten}
)

func maxPool(k, stride, pad int) infer.Layer {
	return infer.Layer{Kind: infer.MaxPool2d, KH: k, KW: k, Stride: stride, Pad: pad}
}

var gradCases = []gradCase{
	{"conv3x3-pad1-linear", infer.Shape{C: 2, H: 5, W: 5}, []infer.Layer{
		conv(3, 3, 3, 1, 1, true), flatten, linear(4, true)}},
	{"conv2x3-stride2-maxpool3-pad1", infer.Shape{C: 2, H: 7, W: 6}, []infer.Layer{
		conv(3, 2, 3, 2, 1, false), relu, maxPool(3, 2, 1), flatten, linear(3, true)}},
	{"conv1x1-avgpool-dropout", infer.Shape{C: 3, H: 5, W: 5}, []infer.Layer{
		conv(4, 1, 1, 1, 0, true), relu, {Kind: infer.AdaptiveAvgPool2d, OutH: 3, OutW: 2}, flatten,
		linear(6, true), relu, {Kind: infer.Dropout, P: 0.3}, linear(3, false)}},
	{"maxpool2-linear-nobias", infer.Shape{C: 2, H: 4, W: 6}, []infer.Layer{
		maxPool(2, 2, 0), flatten, linear(5, false)}},
	{"conv3x3-stride3-nopad-upsampling-avgpool", infer.Shape{C: 1, H: 7, W: 8}, []infer.Layer{
		conv(2, 3, 3, 3, 0, true), relu, conv(2, 1, 1, 2, 0, true), {Kind: infer.AdaptiveAvgPool2d, OutH: 3, OutW: 3}, flatten, linear(3, true)}},
	{"vgg-style", infer.Shape{C: 1, H: 8, W: 8}, []infer.Layer{
		conv(3, 3, 3, 1, 1, true), relu, conv(3, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(2, 1, 1, 1, 0, true), relu, flatten, linear(5, true), relu, {Kind: infer.Dropout, P: 0.5}, linear(3, true)}},
}

func buildModel(t testing.TB, in infer.Shape, layers []infer.Layer) *infer.Model {
	t.Helper()
	m := &infer.Model{Name: "test", Input: in, Layers: append([]infer.Layer(nil), layers...)}
	for i := range m.Layers {
		m.Layers[i].Name = fmt.Sprintf("layers.%d", i)
	}
	if _, err := m.Resolve(); err != nil {
		t.Fatal(err)
	}
	return m
}

// lossOf runs the batch forward (with the same dropout masks every time)
// and returns the mean loss; with grad set it also runs backward.
func lossOf(n *net[float64], sh *shard[float64], x []float64, labels []int, grad bool) float64 {
	bs := len(labels)
	copy(sh.acts[0], x)
	rngs := make([]*rand.Rand, bs)
	for b := range rngs {
		rngs[b] = rand.New(rand.NewPCG(7, uint64(b)))
	}
	logits := n.forward(sh, bs, true, rngs)
	var dz []float64
	if grad {
		dz = sh.d0
	}
	loss, _ := softmaxCE(logits, labels, int(n.outShape().Elems()), 1/float64(bs), dz)
	if grad {
		sh.zeroGrads()
		n.backward(sh, bs)
	}
	return loss / float64(bs)
}

// TestGradients compares every parameter's and every input's gradient with
// central finite differences, in float64.
func TestGradients(t *testing.T) {
	const h = 1e-6
	for ci, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			m := buildModel(t, tc.input, tc.layers)
			n, err := newNet[float64](m)
			if err != nil {
				t.Fatal(err)
			}
			n.initHe(uint64(ci))
			rng := rand.New(rand.NewPCG(uint64(ci), 99))
			// Non-zero biases, so a bias that is ignored shows.
			for _, l := range n.layers {
				for j := range l.b {
					l.b[j] = 0.1 * rng.NormFloat64()
				}
			}
			const bs = 3
			classes := int(n.outShape().Elems())
			x := randSlice[float64](rng, bs*int(tc.input.Elems()))
			labels := make([]int, bs)
			for i := range labels {
				labels[i] = rng.IntN(classes)
			}
			sh := newShard(n, bs)
			sh.inputGrad = true
			lossOf(n, sh, x, labels, true)
			dx := append([]float64(nil), sh.d0[:len(x)]...)

			check := func(what string, v []float64, analytic []float64) {
				t.Helper()
				for j := range v {
					saved := v[j]
					v[j] = saved + h
					up := lossOf(n, sh, x, labels, false)
					v[j] = saved - h
					down := lossOf(n, sh, x, labels, false)
					v[j] = saved
					num := (up - down) / (2 * h)
					if d := math.Abs(num - analytic[j]); d > 1e-6*(1+math.Abs(num)) {
						t.Fatalf("%s[%d]: backward %.9g, finite difference %.9g", what, j, analytic[j], num)
					}
				}
			}
			checked := 0
			for i, l := range n.layers {
				if l.w != nil {
					check(fmt.Sprintf("layer %d (%s) weight", i, l.kind), l.w, append([]float64(nil), sh.gw[i]...))
					checked++
				}
				if l.b != nil {
					check(fmt.Sprintf("layer %d (%s) bias", i, l.kind), l.b, append([]float64(nil), sh.gb[i]...))
				}
			}
			check("input", x, dx)
			if checked == 0 {
				t.Fatal("no parameters checked")
			}
		})
	}
}

// The gradient test must be able to fail: a wrong gradient is caught.
func TestGradientCheckCatchesErrors(t *testing.T) {
	tc := gradCases[0]
	m := buildModel(t, tc.input, tc.layers)
	n, _ := newNet[float64](m)
	n.initHe(1)
	rng := rand.New(rand.NewPCG(1, 1))
	x := randSlice[float64](rng, 2*int(tc.input.Elems()))
	labels := []int{0, 3}
	sh := newShard(n, 2)
	lossOf(n, sh, x, labels, true)
	g := sh.gw[0][5]
	const h = 1e-6
	n.layers[0].w[5] += h
	up := lossOf(n, sh, x, labels, false)
	n.layers[0].w[5] -= 2 * h
	down := lossOf(n, sh, x, labels, false)
	num := (up - down) / (2 * h)
	if math.Abs(num-g) > 1e-6*(1+math.Abs(num)) {
		t.Fatalf("backward %g, finite difference %g", g, num)
	}
	if math.Abs(num-1.01*g) <= 1e-6*(1+math.Abs(num)) && g != 0 {
		t.Fatalf("a 1%% error in the gradient (%g vs %g) would pass the tolerance", 1.01*g, num)
	}
}

// The trainer's forward pass (float32, im2col + GEMM) must match infer's
// reference ForwardFloat.
func TestForwardMatchesInfer(t *testing.T) {
	for ci, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			m := buildModel(t, tc.input, tc.layers)
			n, err := newNet[float32](m)
			if err != nil {
				t.Fatal(err)
			}
			n.initHe(uint64(ci + 10))
			rng := rand.New(rand.NewPCG(uint64(ci), 5))
			for _, l := range n.layers {
				for j := range l.b {
					l.b[j] = float32(0.1 * rng.NormFloat64())
				}
			}
			// The model infer runs carries the same weights.
			for i, l := range n.layers {
				m.Layers[i].Weight, m.Layers[i].BiasData = l.w, l.b
			}
			const bs = 4
			e := int(tc.input.Elems())
			x := randSlice[float32](rng, bs*e)
			sh := newShard(n, bs)
			copy(sh.acts[0], x)
			got := n.forward(sh, bs, false, nil)
			classes := int(n.outShape().Elems())
			for b := 0; b < bs; b++ {
				want, err := m.ForwardFloat(x[b*e : (b+1)*e])
				if err != nil {
					t.Fatal(err)
				}
				scale := 0.0
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				for j, w := range want {
					g := got[b*classes+j]
					if d := math.Abs(float64(g - w)); d > 1e-4*max(scale, 1e-3) {
						t.Errorf("sample %d logit %d: train %g, infer %g", b, j, g, w)
					}
				}
			}
		})
	}
}

// A larger convolution stack, with the GEMM's block edges in play, at the
// real digits model's shapes.
func TestForwardMatchesInferDigitsShapes(t *testing.T) {
	layers := []infer.Layer{
		conv(16, 3, 3, 1, 1, true), relu, conv(16, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(32, 3, 3, 1, 1, true), relu, conv(32, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(16, 1, 1, 1, 0, true), relu, flatten, linear(64, true), relu, {Kind: infer.Dropout, P: 0.5}, linear(10, true)}
	m := buildModel(t, infer.Shape{C: 1, H: 28, W: 28}, layers)
	n, err := newNet[float32](m)
	if err != nil {
		t.Fatal(err)
	}
	n.initHe(3)
	for i, l := range n.layers {
		m.Layers[i].Weight, m.Layers[i].BiasData = l.w, l.b
	}
	rng := rand.New(rand.NewPCG(8, 8))
	x := randSlice[float32](rng, 784)
	sh := newShard(n, 1)
	copy(sh.acts[0], x)
	got := n.forward(sh, 1, false, nil)
	want, err := m.ForwardFloat(x)
	if err != nil {
		t.Fatal(err)
	}
	scale := 0.0
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for j := range want {
		if d := math.Abs(float64(got[j] - want[j])); d > 1e-4*scale {
			t.Errorf("logit %d: train %g, infer %g", j, got[j], want[j])
		}
	}
}

func randSlice[T float](r *rand.Rand, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T(r.NormFloat64())
	}
	return s
}
