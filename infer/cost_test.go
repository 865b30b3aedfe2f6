package infer

import "testing"

// Golden figures from torchvision's model documentation (the weights tables
// of torchvision.models: "num_params" and "GFLOPS", which are MACs of the
// convolution and Linear layers) and ../shared/ANCHORS.md §2.
func TestVGGTotalsMatchTorchvision(t *testing.T) {
	tests := []struct {
		arch   string
		params int64
		macs   int64
	}{
		{"vgg11", 132_863_336, 7_609_090_048},
		{"vgg13", 133_047_848, 11_308_466_176},
		{"vgg16", 138_357_544, 15_470_264_320},
		{"vgg19", 143_667_240, 19_632_062_464},
		{"vgg11_bn", 132_863_336 + 5_504, 7_609_090_048},
		{"vgg13_bn", 133_047_848 + 5_888, 11_308_466_176},
		{"vgg16_bn", 138_357_544 + 8_448, 15_470_264_320},
		{"vgg19_bn", 143_667_240 + 11_008, 19_632_062_464},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			m, err := VGG(tt.arch, DefaultInput, 1000)
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.Cost(Int8)
			if err != nil {
				t.Fatal(err)
			}
			if c.Params != tt.params {
				t.Errorf("params = %d, want %d", c.Params, tt.params)
			}
			if c.MACs != tt.macs {
				t.Errorf("MACs = %d, want %d", c.MACs, tt.macs)
			}
		})
	}
}

func TestVGG16Memory(t *testing.T) {
	m, err := VGG("vgg16", DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	c8, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	c32, err := m.Cost(FP32)
	if err != nil {
		t.Fatal(err)
	}
	// ANCHORS.md §2: 64x224x224 is the largest tensor; two ping-pong
	// buffers hold 6,422,528 B in int8 and 25,690,112 B in fp32; fused
	// conv+pool drops the int8 peak to 4,014,080 B.
	checks := []struct {
		name      string
		got, want int64
	}{
		{"int8 ping-pong", c8.PeakActivationBytes, 6_422_528},
		{"fp32 ping-pong", c32.PeakActivationBytes, 25_690_112},
		{"int8 fused", c8.PeakActivationFusedBytes, 4_014_080},
		{"int8 largest", c8.LargestTensorBytes, 64 * 224 * 224},
		// 138,357,544 int8 weights + 8 B per output channel (scale and
		// int32 bias) over 13 convs (4224 channels) and 3 Linear (9192).
		{"int8 weights", c8.WeightBytes, 138_357_544 - (4224 + 9192) + 8*(4224+9192)},
		{"fp32 weights", c32.WeightBytes, 4 * 138_357_544},
		{"conv MACs", sumMACs(c8, "conv3x3"), 15_346_630_656},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %d, want %d", ch.name, ch.got, ch.want)
		}
	}
}

func sumMACs(c *Cost, op string) int64 {
	var n int64
	for _, l := range c.Layers {
		if l.Op == op {
			n += l.MACs
		}
	}
	return n
}

// Hand-computed costs of small layers.
func TestLayerCostsByHand(t *testing.T) {
	m := &Model{Name: "hand", Input: Shape{3, 8, 8}, Layers: []Layer{
		{Name: "c0", Kind: Conv2d, Out: 4, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true}, // 4x8x8
		{Name: "bn", Kind: BatchNorm2d, Eps: 1e-5},
		{Name: "r", Kind: ReLU},
		{Name: "p", Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2},                            // 4x4x4
		{Name: "c1", Kind: Conv2d, Out: 2, KH: 1, KW: 1, Stride: 2},                      // 2x2x2, no bias
		{Name: "c2", Kind: Conv2d, Out: 5, KH: 1, KW: 3, Stride: 1, Pad: 1, Bias: false}, // 5x4x2
		{Name: "a", Kind: AdaptiveAvgPool2d, OutH: 3, OutW: 3},
		{Name: "f", Kind: Flatten},
		{Name: "fc", Kind: Linear, Out: 7, Bias: true},
	}}
	c, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		out                   Shape
		params, weights, macs int64
		int8Bytes, fp32Bytes  int64
		outBytes              int64
	}{
		{Shape{4, 8, 8}, 3*3*3*4 + 4, 108, 108 * 64, 108 + 32, 4 * 112, 256},
		{Shape{4, 8, 8}, 8, 0, 0, 0, 0, 0},
		{Shape{4, 8, 8}, 0, 0, 0, 0, 0, 0},
		{Shape{4, 4, 4}, 0, 0, 0, 0, 0, 64},
		{Shape{2, 2, 2}, 8, 8, 8 * 4, 8 + 16, 32, 8},
		// (2+2-1)/1+1 = 4 rows, (2+2-3)/1+1 = 2 columns
		{Shape{5, 4, 2}, 30, 30, 30 * 8, 30 + 40, 120, 40},
		{Shape{5, 3, 3}, 0, 0, 0, 0, 0, 45},
		{Shape{45, 1, 1}, 0, 0, 0, 0, 0, 0},
		{Shape{7, 1, 1}, 45*7 + 7, 315, 315, 315 + 56, 4 * 322, 7},
	}
	for i, w := range want {
		g := c.Layers[i]
		if g.Out != w.out || g.Params != w.params || g.Weights != w.weights || g.MACs != w.macs ||
			g.WeightBytesInt8 != w.int8Bytes || g.WeightBytesFP32 != w.fp32Bytes || g.OutputBytes != w.outBytes {
			t.Errorf("layer %s: got out %v params %d weights %d macs %d int8 %d fp32 %d outB %d, want %+v",
				g.Name, g.Out, g.Params, g.Weights, g.MACs, g.WeightBytesInt8, g.WeightBytesFP32, g.OutputBytes, w)
		}
	}
	// Tensors: input 192 (buf0), c0 256 (buf1), p 64 (buf0), c1 8 (buf1),
	// c2 40 (buf0), a 45 (buf1), fc 7 (buf0): 192 + 256.
	if c.PeakActivationBytes != 192+256 {
		t.Errorf("ping-pong peak = %d, want %d", c.PeakActivationBytes, 192+256)
	}
	// Fused: input 192, p 64, c1 8, c2 40, a 45, fc 7 → buf0 max(192, 8, 45)
	// + buf1 max(64, 40, 7).
	if c.PeakActivationFusedBytes != 192+64 {
		t.Errorf("fused peak = %d, want %d", c.PeakActivationFusedBytes, 192+64)
	}
}

func TestSmallInputs(t *testing.T) {
	if _, err := VGG("vgg16", Shape{3, 32, 32}, 10); err != nil {
		t.Errorf("32x32 must work: %v", err)
	}
	m, err := VGG("vgg16", Shape{1, 100, 57}, 10)
	if err != nil {
		t.Fatalf("1x100x57: %v", err)
	}
	if m.Layers[0].In != 1 {
		t.Errorf("first conv In = %d, want 1", m.Layers[0].In)
	}
	for _, in := range []Shape{{3, 8, 8}, {3, 31, 224}, {0, 224, 224}, {3, -1, 224}} {
		if _, err := VGG("vgg16", in, 1000); err == nil {
			t.Errorf("input %v: no error", in)
		}
	}
	if _, err := VGG("vgg17", DefaultInput, 1000); err == nil {
		t.Error("vgg17: no error")
	}
}
