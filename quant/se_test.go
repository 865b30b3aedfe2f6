package quant

import (
	"math/rand/v2"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// seModel is a small float network with the 1x1 graph features: channel
// expansion, squeeze-and-excitation, stride-2 1x1 downsampling and
// cross-channel fusion (He-initialised; SE weights N(0, 0.3²)).
func seModel(seed uint64) *infer.Model {
	m := &infer.Model{Name: "se", Class: "SENet", Input: infer.Shape{C: 3, H: 32, W: 32}, Layers: []infer.Layer{
		{Name: "features.0", Kind: infer.Conv2d, Out: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
		{Name: "features.1", Kind: infer.ReLU},
		{Name: "features.2", Kind: infer.Conv2d, Out: 48, KH: 1, KW: 1, Stride: 1, Bias: true},
		{Name: "features.3", Kind: infer.ReLU},
		{Name: "features.4", Kind: infer.SqueezeExcite, Out: 12, Bias: true},
		{Name: "features.5", Kind: infer.Conv2d, Out: 32, KH: 1, KW: 1, Stride: 2, Bias: true},
		{Name: "features.6", Kind: infer.ReLU},
		{Name: "features.7", Kind: infer.SqueezeExcite, Out: 8, Bias: true},
		{Name: "features.8", Kind: infer.Conv2d, Out: 32, KH: 1, KW: 1, Stride: 1, Bias: true},
		{Name: "features.9", Kind: infer.ReLU},
		{Name: "features.10", Kind: infer.MaxPool2d, KH: 2, Stride: 2},
		{Name: "flatten", Kind: infer.Flatten, Functional: true},
		{Name: "classifier.0", Kind: infer.Linear, Out: 10, Bias: true},
	}}
	if _, err := m.Resolve(); err != nil {
		panic(err)
	}
	heWeights(m, seed)
	r := rand.New(rand.NewPCG(seed, 3))
	fill := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(std * r.NormFloat64())
		}
		return v
	}
	for i := range m.Layers {
		if l := &m.Layers[i]; l.Kind == infer.SqueezeExcite {
			l.Weight, l.BiasData, l.Weight2, l.Bias2 = fill(l.Out*l.In, 0.3), fill(l.Out, 0.1), fill(l.In*l.Out, 0.3), fill(l.In, 0.3)
		}
	}
	m.Meta.Spec = infer.ImageNetSpec()
	m.Meta.Spec.Resize = "stretch"
	return m
}

// Squeeze-excite and stride-2 1x1 layers quantize and run in int8 as any
// layer does; against the float reference the logits of images the
// calibration never saw keep a cosine similarity of at least 0.995 (the
// tolerance this test states: int8 rounding in 5 quantized layers;
// squeeze-excite itself adds at most 0.504 of a step, see
// infer.TestSqueezeExciteInt8MatchesFloat).
func TestSqueezeExciteAndStride2Int8(t *testing.T) {
	m := seModel(11)
	q := calibrate(t, m, smoothImages(48, m.Input, 1), Options{Method: Percentile})
	kinds := map[infer.Kind]int{}
	for _, l := range q.Layers {
		kinds[l.Kind]++
		if l.Kind == infer.Conv2d && l.Stride == 2 && l.KH != 1 {
			t.Errorf("layer %s: stride 2 on a %dx%d kernel", l.Name, l.KH, l.KW)
		}
	}
	if kinds[infer.SqueezeExcite] != 2 {
		t.Fatalf("int8 model has %d squeeze-excite layers, want 2", kinds[infer.SqueezeExcite])
	}
	worst := compare(t, m, q, smoothImages(24, m.Input, 2))
	t.Logf("worst cosine of int8 and float logits over 24 images: %.5f", worst)
	if worst < 0.995 {
		t.Errorf("worst cosine %.5f < 0.995", worst)
	}
}
