package infer

import "fmt"

// Precision is the number format weights and activations are stored in.
type Precision string

// The precisions vggedge runs.
const (
	Int8 Precision = "int8"
	FP32 Precision = "fp32"
)

// ParsePrecision accepts "int8" or "fp32".
func ParsePrecision(s string) (Precision, error) {
	switch Precision(s) {
	case Int8, FP32:
		return Precision(s), nil
	}
	return "", fmt.Errorf("unknown precision %q (want int8 or fp32)", s)
}

// ElemBytes is the size of one activation value.
func (p Precision) ElemBytes() int64 {
	if p == FP32 {
		return 4
	}
	return 1
}

// LayerCost is what one layer costs, from the formulas in the package doc.
type LayerCost struct {
	Name string
	Kind Kind
	// Op is the kind of work for latency estimates: "conv3x3", "conv1x1",
	// "conv" (other kernels), "linear", "pool" or "none".
	Op  string
	Out Shape
	// Params counts trainable parameters, bias included.
	Params int64
	// Weights is kH·kW·Cin·Cout (in·out for Linear): the formula as usually
	// quoted, without bias.
	Weights int64
	// MACs is Cin·Cout·kH·kW·Hout·Wout (in·out for Linear; 2·C·r for
	// SqueezeExcite, whose weights are also 2·C·r and params 2·C·r + r + C);
	// 0 for the rest.
	MACs int64
	// OutputBytes is the output tensor at the costed precision; 0 when the
	// layer works in place.
	OutputBytes int64
	// WeightBytesInt8 counts int8 weights plus a float32 scale and an int32
	// bias per output channel; WeightBytesFP32 counts float32 weights and
	// bias. BatchNorm2d is folded into its convolution: 0 bytes, unless the
	// convolution has no bias, when the fold adds one.
	WeightBytesInt8, WeightBytesFP32 int64
	// InputBytes is the bytes the layer reads (input activation and weights
	// at the costed precision): the memory traffic of a latency estimate.
	InputBytes int64
}

// WeightBytes returns the weight bytes at precision p.
func (c *LayerCost) WeightBytes(p Precision) int64 {
	if p == FP32 {
		return c.WeightBytesFP32
	}
	return c.WeightBytesInt8
}

// Cost sums a model's layers.
type Cost struct {
	Precision Precision
	Input     Shape
	Layers    []LayerCost
	Params    int64
	Weights   int64
	MACs      int64
	// WeightBytes is the model's weight memory at Precision.
	WeightBytes int64
	// PeakActivationBytes is the two ping-pong buffers planned once: tensor i
	// (the input is tensor 0) lives in buffer i mod 2, in-place layers write
	// over their input, and each buffer is as large as the largest tensor it
	// holds.
	PeakActivationBytes int64
	// PeakActivationFusedBytes is the same plan when a convolution followed
	// by ReLU and max-pool is fused, so its full-size output is never held.
	PeakActivationFusedBytes int64
	// LargestTensorBytes is the largest single activation tensor.
	LargestTensorBytes int64
}

// Cost computes every layer's cost at precision p. It resolves the model
// first, so it also validates it.
func (m *Model) Cost(p Precision) (*Cost, error) {
	if p != Int8 && p != FP32 {
		return nil, fmt.Errorf("unknown precision %q", p)
	}
	shapes, err := m.Resolve()
	if err != nil {
		return nil, err
	}
	c := &Cost{Precision: p, Input: m.Input, Layers: make([]LayerCost, len(m.Layers))}
	eb := p.ElemBytes()
	in := m.Input
	for i := range m.Layers {
		l := &m.Layers[i]
		out := shapes[i]
		lc := LayerCost{Name: l.Name, Kind: l.Kind, Op: "none", Out: out}
		switch l.Kind {
		case Conv2d:
			lc.Weights = int64(l.KH) * int64(l.KW) * int64(in.C) * int64(l.Out)
			lc.MACs = lc.Weights * int64(out.H) * int64(out.W)
			lc.Params = lc.Weights
			hasBias := l.Bias || (i+1 < len(m.Layers) && m.Layers[i+1].Kind == BatchNorm2d)
			if l.Bias {
				lc.Params += int64(l.Out)
			}
			lc.WeightBytesInt8 = lc.Weights + 8*int64(l.Out)
			lc.WeightBytesFP32 = 4 * lc.Weights
			if hasBias {
				lc.WeightBytesFP32 += 4 * int64(l.Out)
			}
			switch {
			case l.KH == 3 && l.KW == 3:
				lc.Op = "conv3x3"
			case l.KH == 1 && l.KW == 1:
				lc.Op = "conv1x1"
			default:
				lc.Op = "conv"
			}
		case Linear:
			lc.Weights = in.Elems() * int64(l.Out)
			lc.MACs = lc.Weights
			lc.Params = lc.Weights
			if l.Bias {
				lc.Params += int64(l.Out)
			}
			lc.WeightBytesInt8 = lc.Weights + 8*int64(l.Out)
			lc.WeightBytesFP32 = 4 * (lc.Params)
			lc.Op = "linear"
		case SqueezeExcite:
			// Two 1x1 convolutions on the pooled 1x1 map: C·r + r·C
			// weights, r + C biases. The C·H·W multiplies that scale the
			// input by the gates are not counted as MACs (nor are the
			// pool's adds): they are element-wise, like ReLU.
			c, r := int64(in.C), int64(l.Out)
			lc.Weights = 2 * c * r
			lc.MACs = lc.Weights
			lc.Params = lc.Weights + r + c
			lc.WeightBytesInt8 = 4 * lc.Params // the excitation runs in float32 in int8 models too
			lc.WeightBytesFP32 = 4 * lc.Params
			lc.Op = "conv1x1"
		case BatchNorm2d:
			lc.Params = 2 * int64(in.C)
		case MaxPool2d, AdaptiveAvgPool2d:
			lc.Op = "pool"
		}
		if !l.inPlace() {
			lc.OutputBytes = out.Elems() * eb
		}
		lc.InputBytes = in.Elems()*eb + lc.WeightBytes(p)
		c.Layers[i] = lc
		c.Params += lc.Params
		c.Weights += lc.Weights
		c.MACs += lc.MACs
		c.WeightBytes += lc.WeightBytes(p)
		in = out
	}
	c.PeakActivationBytes, c.LargestTensorBytes = pingPong(m, shapes, eb, false)
	c.PeakActivationFusedBytes, _ = pingPong(m, shapes, eb, true)
	return c, nil
}

// pingPong plans two buffers for the materialised tensors (the input, then
// every layer output that is not computed in place) and returns the sum of
// their sizes and the largest tensor. With fuse, a convolution whose output
// goes (through in-place layers) straight into a max-pool is not
// materialised: the pool's output is written from the convolution's tiles.
func pingPong(m *Model, shapes []Shape, eb int64, fuse bool) (peak, largest int64) {
	var buf [2]int64
	n := 0
	hold := func(bytes int64) {
		buf[n%2] = max(buf[n%2], bytes)
		largest = max(largest, bytes)
		n++
	}
	hold(m.Input.Elems() * eb)
	for i := range m.Layers {
		l := &m.Layers[i]
		if l.inPlace() {
			continue
		}
		if fuse && l.Kind == Conv2d {
			j := i + 1
			for j < len(m.Layers) && m.Layers[j].inPlace() && m.Layers[j].Kind != Flatten {
				j++
			}
			if j < len(m.Layers) && m.Layers[j].Kind == MaxPool2d {
				continue // the pool's output is the next tensor
			}
		}
		hold(shapes[i].Elems() * eb)
	}
	return buf[0] + buf[1], largest
}
