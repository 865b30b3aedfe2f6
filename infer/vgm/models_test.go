package vgm

import (
	"math"
	"math/rand/v2"

	"github.com/vggedge/vggedge/infer"
)

// These fixtures are copies of infer's test models (float_test.go,
// se_test.go): a package-infer test cannot import vgm, and vgm cannot see
// infer's test files. Keep them equal: testdata/tiny.vgm pins tinyModel's
// values byte for byte.

// tinyModel is conv→bn→relu→maxpool→avgpool→flatten→linear on a 1x4x4
// input, small enough to work through by hand (see infer's TestTinyModelFloat).
func tinyModel() (*infer.Model, []float32) {
	m := &infer.Model{Name: "tiny", Input: infer.Shape{C: 1, H: 4, W: 4}, Layers: []infer.Layer{
		{Name: "features.0", Kind: infer.Conv2d, Out: 2, KH: 2, KW: 2, Stride: 1,
			// out 0: [1 0; 0 1] (diagonal sum); out 1: [0 1; −1 0]
			Weight: []float32{1, 0, 0, 1, 0, 1, -1, 0}},
		{Name: "features.1", Kind: infer.BatchNorm2d, Eps: 0.25,
			Gamma: []float32{0.5, 2}, Beta: []float32{1, -1},
			Mean: []float32{2, -1}, Var: []float32{3.75, 0.75}},
		{Name: "features.2", Kind: infer.ReLU},
		{Name: "features.3", Kind: infer.MaxPool2d, KH: 2, KW: 2, Stride: 2, Pad: 1},
		{Name: "avgpool", Kind: infer.AdaptiveAvgPool2d, OutH: 1, OutW: 2},
		{Name: "flatten", Kind: infer.Flatten, Functional: true},
		{Name: "classifier.0", Kind: infer.Linear, Out: 2, Bias: true,
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

func randF32(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(std * rng.NormFloat64())
	}
	return v
}

// seNet is a small network with the 1x1 graph features: expansion, a
// squeeze-excite block, stride-2 1x1 downsampling and cross-channel fusion.
func seNet(seed uint64) *infer.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	he := func(n, fan int) []float32 { return randF32(rng, n, math.Sqrt(2/float64(fan))) }
	m := &infer.Model{Name: "senet", Class: "SENet", Input: infer.Shape{C: 3, H: 12, W: 12}, Layers: []infer.Layer{
		{Name: "features.0", Kind: infer.Conv2d, In: 3, Out: 8, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true, Weight: he(8*27, 27), BiasData: randF32(rng, 8, 0.05)},
		{Name: "features.1", Kind: infer.ReLU},
		{Name: "features.2", Kind: infer.Conv2d, In: 8, Out: 24, KH: 1, KW: 1, Stride: 1, Bias: true, Weight: he(24*8, 8), BiasData: randF32(rng, 24, 0.05)},
		{Name: "features.3", Kind: infer.ReLU},
		{Name: "features.4", Kind: infer.SqueezeExcite, In: 24, Out: 6, Bias: true, Weight: randF32(rng, 6*24, 0.3), BiasData: randF32(rng, 6, 0.1),
			Weight2: randF32(rng, 24*6, 0.5), Bias2: randF32(rng, 24, 0.3)},
		{Name: "features.5", Kind: infer.Conv2d, In: 24, Out: 16, KH: 1, KW: 1, Stride: 2, Bias: true, Weight: he(16*24, 24), BiasData: randF32(rng, 16, 0.05)},
		{Name: "features.6", Kind: infer.ReLU},
		{Name: "features.7", Kind: infer.Conv2d, In: 16, Out: 16, KH: 1, KW: 1, Stride: 1, Bias: true, Weight: he(16*16, 16), BiasData: randF32(rng, 16, 0.05)},
		{Name: "features.8", Kind: infer.ReLU},
		{Name: "flatten", Kind: infer.Flatten, Functional: true},
		{Name: "classifier.0", Kind: infer.Linear, In: 16 * 6 * 6, Out: 10, Bias: true, Weight: he(10*576, 576), BiasData: randF32(rng, 10, 0.05)},
	}}
	m.Meta.Spec = infer.InputSpec{ChannelOrder: "RGB", Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}, Resize: "stretch"}
	return m
}
