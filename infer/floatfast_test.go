package infer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomWeights gives every parameterised layer He-initialised weights and
// small random biases and BatchNorm statistics.
func randomWeights(t testing.TB, m *Model, seed uint64) {
	t.Helper()
	shapes, err := m.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	_ = shapes
	r := rand.New(rand.NewPCG(seed, 7))
	fill := func(n int, std float64, mean float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		return v
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case Conv2d:
			fan := l.In * l.KH * l.KW
			l.Weight = fill(l.Out*fan, math.Sqrt(2/float64(fan)), 0)
			if l.Bias {
				l.BiasData = fill(l.Out, 0.05, 0)
			}
		case Linear:
			l.Weight = fill(l.Out*l.In, math.Sqrt(2/float64(l.In)), 0)
			if l.Bias {
				l.BiasData = fill(l.Out, 0.05, 0)
			}
		case BatchNorm2d:
			l.Gamma, l.Beta = fill(l.In, 0.1, 1), fill(l.In, 0.1, 0)
			l.Mean, l.Var = fill(l.In, 0.1, 0), fill(l.In, 0.1, 1)
			for c := range l.Var {
				l.Var[c] = float32(math.Abs(float64(l.Var[c]))) + 0.1
			}
		}
	}
}

func TestForwardFastMatchesReference(t *testing.T) {
	src := `{"input": [3, 19, 23], "batch_norm": true,
	  "features": [8, "M", {"type": "conv2d", "out": 5, "kernel": [1, 3], "stride": 2, "padding": 1}, {"type": "relu"},
	               {"type": "conv2d", "out": 7, "kernel": 1, "bias": false}, {"type": "relu"}],
	  "avgpool": [3, 3], "classifier": [13, 6]}`
	m, err := ParseArch([]byte(src), "t.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	randomWeights(t, m, 1)
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, m.Input.Elems())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	_, want, err := m.ForwardFloatTrace(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2, 3} {
		_, got, err := m.ForwardFastTrace(x, threads)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			for j := range want[i] {
				if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-4*(1+math.Abs(float64(want[i][j]))) {
					t.Fatalf("threads %d layer %s value %d: fast %g, reference %g", threads, m.Layers[i].Name, j, got[i][j], want[i][j])
				}
			}
		}
	}
	if _, err := m.ForwardFast(x[:5], 2); err == nil {
		t.Error("short input: no error")
	}
}

// BenchmarkForwardFastVGG16 is the fast float forward of VGG16 at 224x224
// with random weights on 2 goroutines (as calibration runs it on this
// 2-core machine, without the per-layer trace). One image takes about a
// second, so use e.g. -benchtime 3x.
func BenchmarkForwardFastVGG16(b *testing.B) {
	m, err := VGG("vgg16", DefaultInput, 1000)
	if err != nil {
		b.Fatal(err)
	}
	randomWeights(b, m, 1)
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, m.Input.Elems())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for b.Loop() {
		if _, err := m.ForwardFast(x, 2); err != nil {
			b.Fatal(err)
		}
	}
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(s, "s/image")
	b.ReportMetric(15.470264320/s, "GMAC/s")
}
