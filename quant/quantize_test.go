package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// heWeights gives a model He-initialised weights (as torchvision's VGG
// init: kaiming normal, fan_out for convs; normal(0, 0.01) for Linear is
// replaced by He so random logits are not all zero) and BN statistics.
func heWeights(m *infer.Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	fill := func(n int, std, mean float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		return v
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case infer.Conv2d:
			fan := l.In * l.KH * l.KW
			l.Weight = fill(l.Out*fan, math.Sqrt(2/float64(fan)), 0)
			if l.Bias {
				l.BiasData = fill(l.Out, 0.02, 0)
			}
		case infer.Linear:
			l.Weight = fill(l.Out*l.In, math.Sqrt(2/float64(l.In)), 0)
			if l.Bias {
				l.BiasData = fill(l.Out, 0.02, 0)
			}
		case infer.BatchNorm2d:
			l.Gamma, l.Beta, l.Mean = fill(l.In, 0.1, 1), fill(l.In, 0.1, 0), fill(l.In, 0.1, 0)
			l.Var = fill(l.In, 0.1, 1)
			for c := range l.Var {
				l.Var[c] = float32(math.Abs(float64(l.Var[c])) + 0.2)
			}
		}
	}
}

// smoothImages are camera-like u8 CHW pictures: a few random gradients and
// waves plus noise, so neighbouring pixels correlate as in real images.
func smoothImages(n int, in infer.Shape, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 5))
	imgs := make([][]byte, n)
	for k := range imgs {
		img := make([]byte, in.Elems())
		fx, fy, ph := r.Float64()*0.3, r.Float64()*0.3, r.Float64()*6
		for c := 0; c < in.C; c++ {
			base, amp := 60+r.Float64()*130, 20+r.Float64()*60
			for y := 0; y < in.H; y++ {
				for x := 0; x < in.W; x++ {
					v := base + amp*math.Sin(fx*float64(x)+fy*float64(y)+ph+float64(c)) + 12*r.NormFloat64()
					img[(c*in.H+y)*in.W+x] = uint8(min(max(v, 0), 255))
				}
			}
		}
		imgs[k] = img
	}
	return imgs
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// calibrate quantizes m on calib images.
func calibrate(t testing.TB, m *infer.Model, calib [][]byte, opt Options) *infer.QModel {
	t.Helper()
	c, err := NewCalibrator(m)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, m.Input.Elems())
	for _, img := range calib {
		m.Meta.Spec.Normalize(x, img, m.Input)
		if err := c.ObserveImage(x); err != nil {
			t.Fatal(err)
		}
	}
	q, err := c.Quantize(opt)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// compare returns the smallest cosine similarity between int8 and float
// logits over imgs.
func compare(t testing.TB, m *infer.Model, q *infer.QModel, imgs [][]byte) float64 {
	t.Helper()
	s, err := infer.NewSession(q)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, m.Input.Elems())
	worst := 1.0
	for _, img := range imgs {
		m.Meta.Spec.Normalize(x, img, m.Input)
		want, err := m.ForwardFast(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPixels(img); err != nil {
			t.Fatal(err)
		}
		got, err := s.Run()
		if err != nil {
			t.Fatal(err)
		}
		worst = min(worst, cosine(got, want))
	}
	return worst
}

func smallNet(t testing.TB, in infer.Shape, spec infer.InputSpec) *infer.Model {
	t.Helper()
	src := `{"batch_norm": true,
	  "features": [16, "M", 24, {"type": "conv2d", "out": 12, "kernel": 1, "stride": 2}, {"type": "relu"},
	               {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1}],
	  "avgpool": [3, 3], "classifier": [32, 10]}`
	m, err := infer.ParseArch([]byte(src), "small.json", infer.Options{Input: in})
	if err != nil {
		t.Fatal(err)
	}
	heWeights(m, 11)
	m.Meta.Spec = spec
	return m
}

func TestQuantizeMatchesFloat(t *testing.T) {
	rgb := infer.InputSpec{ChannelOrder: "RGB", Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}, Resize: "stretch"}
	gray := infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.1307}, Std: []float32{0.3081}, Resize: "stretch"}
	for _, tt := range []struct {
		name string
		in   infer.Shape
		spec infer.InputSpec
	}{
		{"rgb", infer.Shape{C: 3, H: 33, W: 29}, rgb},
		{"gray", infer.Shape{C: 1, H: 28, W: 28}, gray},
	} {
		m := smallNet(t, tt.in, tt.spec)
		calib := smoothImages(48, tt.in, 1)
		test := smoothImages(16, tt.in, 2)
		for _, method := range []Method{MinMax, Percentile, Entropy} {
			q := calibrate(t, m, calib, Options{Method: method})
			if c := compare(t, m, q, test); c < 0.99 {
				t.Errorf("%s %s: worst cosine %.4f < 0.99", tt.name, method, c)
			} else {
				t.Logf("%s %s: worst cosine %.4f", tt.name, method, c)
			}
		}
	}
}

// A model whose only layer is a padded convolution writes its accumulators
// as logits. Its weights are chosen so that the folded weights W/(255·std)
// are exact multiples of 1/255 with a full-range ±127 in every row, the
// means are whole pixels p_c/255 and the biases whole multiples of 1/255:
// then weight and bias quantization are exact, and the int8 result must
// equal the float convolution of the normalised input — borders included,
// which checks the per-channel pad value — to float rounding.
func TestFirstLayerFoldsNormalisation(t *testing.T) {
	in := infer.Shape{C: 3, H: 9, W: 7}
	m := &infer.Model{Name: "conv", Input: in, Layers: []infer.Layer{
		{Name: "features.0", Kind: infer.Conv2d, Out: 4, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
	}}
	if _, err := m.Resolve(); err != nil {
		t.Fatal(err)
	}
	std := []float32{1, 0.5, 2}
	pix := []float32{128, 100, 200}
	m.Meta.Spec = infer.InputSpec{ChannelOrder: "RGB", Std: std, Resize: "stretch"}
	for _, p := range pix {
		m.Meta.Spec.Mean = append(m.Meta.Spec.Mean, p/255)
	}
	r := rand.New(rand.NewPCG(5, 5))
	l := &m.Layers[0]
	l.Weight = make([]float32, 4*27)
	l.BiasData = make([]float32, 4)
	for o := 0; o < 4; o++ {
		for k := 0; k < 27; k++ {
			n := float32(r.IntN(255) - 127)
			if k == o { // one full-range weight per row fixes the scale at 1/255
				n = 127
			}
			l.Weight[o*27+k] = n * std[k/9]
		}
		l.BiasData[o] = float32(r.IntN(2001)-1000) / 255
	}
	imgs := smoothImages(8, in, 4)
	q := calibrate(t, m, imgs, Options{Method: MinMax})
	if !q.Layers[0].Logits || q.Layers[0].InZero != -128 || q.Layers[0].InScale != 1 {
		t.Fatalf("first layer: logits %v, in %g/%d; want logits, scale 1, zero -128", q.Layers[0].Logits, q.Layers[0].InScale, q.Layers[0].InZero)
	}
	if got := q.Layers[0].PadValue; got[0] != 0 || got[1] != -28 || got[2] != 72 {
		t.Errorf("pad values %v, want [0 -28 72] (pixels 128, 100, 200 minus 128)", got)
	}
	s, err := infer.NewSession(q)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, in.Elems())
	for _, img := range imgs {
		m.Meta.Spec.Normalize(x, img, in)
		want, err := m.ForwardFloat(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPixels(img); err != nil {
			t.Fatal(err)
		}
		got, err := s.Run()
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("output %d: int8 %g, float %g", i, got[i], want[i])
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	in := infer.Shape{C: 1, H: 28, W: 28}
	m := smallNet(t, in, infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.5}, Std: []float32{0.5}, Resize: "stretch"})
	c, err := NewCalibrator(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Quantize(Options{}); err == nil {
		t.Error("no calibration images: no error")
	}
	noSpec := smallNet(t, in, infer.InputSpec{})
	if _, err := NewCalibrator(noSpec); err == nil {
		t.Error("no input spec: no error")
	}
	arch, _ := infer.VGG("vgg11", infer.Shape{C: 3, H: 32, W: 32}, 10)
	if _, err := NewCalibrator(arch); err == nil {
		t.Error("no weights: no error")
	}
	if err := c.ObserveImage(make([]float32, 3)); err == nil {
		t.Error("wrong input size: no error")
	}
}
