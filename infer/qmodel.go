package infer

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// QModel is an int8-quantized sequential model (TFLite's scheme):
//
//   - activations are int8 per tensor, real = (q − Zero)·Scale;
//   - weights are int8 per output channel, symmetric in [-127, 127], zero
//     point 0, real = q·WScale[o];
//   - a convolution or Linear layer computes the int32 accumulator
//     acc[o] = Bias[o] + Σ Weight[o,c,kh,kw]·x[c,ih,iw], where x outside
//     the image reads PadValue[c], then requantizes it:
//     out = clamp(OutZero + Requantize(acc, Mult[o], Shift[o]), lo, 127),
//     lo = max(OutZero, −128) when ReLU is fused, else −128;
//   - Bias already holds −InZero·ΣWeight[o,…], so no kernel subtracts zero
//     points, and a pad value equal to InZero contributes exactly 0;
//   - the first layer reads the camera's u8 pixels as q = pixel − 128
//     (InScale 1, InZero −128): mean/std are folded into its weights and
//     bias, and its PadValue is the pixel that normalises to 0;
//   - max-pool and average-pool run on int8 and keep scale and zero point;
//   - the last layer (Logits) writes float32 logits acc·InScale·WScale[o]
//     instead of requantizing.
//
// Every kernel, generic or SIMD, must produce these numbers bit for bit.
type QModel struct {
	Name   string
	Input  Shape
	Layers []QLayer
	Meta   Meta
}

// QLayer is one layer of a QModel. Kinds: Conv2d, Linear, MaxPool2d,
// AdaptiveAvgPool2d, ReLU (a ReLU that could not be fused), Flatten,
// SqueezeExcite (in place, keeping scale and zero point; see se.go).
type QLayer struct {
	Name string
	Kind Kind
	// Shape fields as in Layer.
	In, Out, KH, KW, Stride, Pad int
	OutH, OutW                   int

	ReLU   bool // ReLU fused into the requantization
	Logits bool // the last layer: float32 logits instead of int8

	Weight   []int8    // Conv2d OIHW, Linear [Out][In]
	WScale   []float32 // per output channel
	Bias     []int32   // per output channel, zero-point term folded in
	Mult     []int32   // Q31 multipliers, per output channel
	Shift    []int32   // exponents, per output channel: positive shifts left
	PadValue []int8    // Conv2d: per input channel

	// SqueezeExcite: the float32 excitation weights, as Layer's Weight,
	// BiasData, Weight2 and Bias2 (In = C, Out = r).
	SEWeight, SEBias, SEWeight2, SEBias2 []float32

	// Role is the float layer's Role (layers vggedge reduce inserted).
	Role Role

	InScale, OutScale float32
	InZero, OutZero   int32
}

// MaxTaps bounds the accumulation length of one output (In·KH·KW): with
// |w| ≤ 127 and |x − zero| ≤ 255 the int32 accumulator cannot overflow.
const MaxTaps = math.MaxInt32 / (127 * 255) / 2

// Shapes checks the layers chain from the input and returns each layer's
// output shape; errors name the layer and field.
func (q *QModel) Shapes() ([]Shape, error) {
	if err := q.Input.Validate(); err != nil {
		return nil, fmt.Errorf("input %v: %w", q.Input, err)
	}
	if len(q.Layers) == 0 {
		return nil, errors.New("model has no layers")
	}
	shapes := make([]Shape, len(q.Layers))
	cur := q.Input
	for i := range q.Layers {
		l := &q.Layers[i]
		out, err := l.check(cur, i == len(q.Layers)-1)
		if err != nil {
			return nil, &LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: err}
		}
		shapes[i] = out
		cur = out
	}
	return shapes, nil
}

// Validate checks everything a Session relies on: shapes chain, parameter
// lengths, finite positive scales, multipliers in range, zero points in
// int8, no accumulator overflow, and meta data.
func (q *QModel) Validate() error {
	if _, err := q.Shapes(); err != nil {
		return err
	}
	if z := q.Layers[0].InZero; z != -128 {
		return &LayerError{Index: 0, Name: q.Layers[0].Name, Kind: q.Layers[0].Kind,
			Err: fmt.Errorf("in_zero %d: the first layer reads u8 pixels as q = pixel − 128, so in_zero must be −128", z)}
	}
	if q.Meta.Spec.ChannelOrder != "" {
		if err := q.Meta.Spec.Validate(q.Input); err != nil {
			return fmt.Errorf("input spec: %w", err)
		}
	}
	if n := len(q.Meta.Labels); n != 0 {
		out := q.Layers[len(q.Layers)-1]
		if out.Kind == Linear && n != out.Out {
			return fmt.Errorf("%d labels for %d outputs", n, out.Out)
		}
	}
	return nil
}

func (l *QLayer) check(in Shape, last bool) (Shape, error) {
	fl := Layer{Kind: l.Kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW, Stride: l.Stride, Pad: l.Pad, OutH: l.OutH, OutW: l.OutW, Bias: true}
	switch l.Kind {
	case Conv2d, Linear, MaxPool2d, AdaptiveAvgPool2d, ReLU, Flatten, SqueezeExcite:
	default:
		return Shape{}, fmt.Errorf("kind %q cannot be in an int8 model", l.Kind)
	}
	if (l.Kind == Conv2d || l.Kind == Linear || l.Kind == SqueezeExcite) && l.In == 0 {
		return Shape{}, errors.New("in: must be set")
	}
	out, err := fl.OutShape(in)
	if err != nil {
		return Shape{}, err
	}
	if err := out.Validate(); err != nil {
		return Shape{}, fmt.Errorf("output %v: %w", out, err)
	}
	if l.Logits && !last {
		return Shape{}, errors.New("logits: only the last layer writes logits")
	}
	if !validZero(l.InZero) || !validZero(l.OutZero) {
		return Shape{}, fmt.Errorf("zero points %d/%d: must be in [-128, 127]", l.InZero, l.OutZero)
	}
	if !positive(l.InScale) {
		return Shape{}, fmt.Errorf("in_scale %g: must be finite and positive", l.InScale)
	}
	if !l.Logits && !positive(l.OutScale) {
		return Shape{}, fmt.Errorf("out_scale %g: must be finite and positive", l.OutScale)
	}
	if l.Kind != SqueezeExcite && (l.SEWeight != nil || l.SEBias != nil || l.SEWeight2 != nil || l.SEBias2 != nil) {
		return Shape{}, errors.New("has squeeze-excite weights, but its kind takes none")
	}
	switch l.Kind {
	case MaxPool2d, AdaptiveAvgPool2d, ReLU, Flatten, SqueezeExcite:
		if l.InScale != l.OutScale || l.InZero != l.OutZero {
			return Shape{}, errors.New("pooling, ReLU, flatten and squeeze-excite keep scale and zero point")
		}
		if l.Logits {
			return Shape{}, errors.New("logits: only a convolution or Linear layer writes logits")
		}
		if l.Weight != nil || l.Bias != nil || l.Mult != nil || l.Shift != nil || l.WScale != nil || l.PadValue != nil || l.ReLU {
			return Shape{}, errors.New("has weights or a fused ReLU, but its kind takes none")
		}
		if l.Kind == SqueezeExcite {
			if err := l.checkSE(in); err != nil {
				return Shape{}, err
			}
		}
		return out, nil
	}
	taps := int64(l.In)
	if l.Kind == Conv2d {
		taps *= int64(l.KH) * int64(l.KW)
	}
	if taps > MaxTaps {
		return Shape{}, fmt.Errorf("%d multiply-adds per output: more than %d could overflow int32", taps, MaxTaps)
	}
	if int64(len(l.Weight)) != taps*int64(l.Out) {
		return Shape{}, fmt.Errorf("weight has %d values, want %d", len(l.Weight), taps*int64(l.Out))
	}
	for i, w := range l.Weight {
		if w == -128 {
			return Shape{}, fmt.Errorf("weight[%d] is -128: weights must be in [-127, 127]", i)
		}
	}
	if len(l.WScale) != l.Out || len(l.Bias) != l.Out {
		return Shape{}, fmt.Errorf("w_scale/bias have %d/%d values, want %d", len(l.WScale), len(l.Bias), l.Out)
	}
	if !l.Logits && (len(l.Mult) != l.Out || len(l.Shift) != l.Out) {
		return Shape{}, fmt.Errorf("mult/shift have %d/%d values, want %d", len(l.Mult), len(l.Shift), l.Out)
	}
	for o := 0; o < l.Out; o++ {
		if !positive(l.WScale[o]) {
			return Shape{}, fmt.Errorf("w_scale[%d] %g: must be finite and positive", o, l.WScale[o])
		}
		if !l.Logits && (l.Mult[o] < 0 || l.Shift[o] < -31 || l.Shift[o] > 30) {
			return Shape{}, fmt.Errorf("mult[%d]/shift[%d] = %d/%d: want a non-negative Q31 multiplier and a shift in [-31, 30]", o, o, l.Mult[o], l.Shift[o])
		}
	}
	if l.Kind == Conv2d && len(l.PadValue) != l.In {
		return Shape{}, fmt.Errorf("pad_value has %d values, want %d", len(l.PadValue), l.In)
	}
	if l.Kind == Linear && l.PadValue != nil {
		return Shape{}, errors.New("pad_value given for a Linear layer")
	}
	return out, nil
}

// checkSE checks a SqueezeExcite's float excitation weights: lengths for
// C = in.C and r = Out, every value finite.
func (l *QLayer) checkSE(in Shape) error {
	c, r := int64(in.C), int64(l.Out)
	for _, f := range []struct {
		key string
		v   []float32
		n   int64
	}{{"se_weight", l.SEWeight, r * c}, {"se_bias", l.SEBias, r}, {"se_weight2", l.SEWeight2, c * r}, {"se_bias2", l.SEBias2, c}} {
		if int64(len(f.v)) != f.n {
			return fmt.Errorf("%s has %d values, want %d", f.key, len(f.v), f.n)
		}
		for i, v := range f.v {
			if !finite(v) {
				return fmt.Errorf("%s[%d] %g: must be finite", f.key, i, v)
			}
		}
	}
	return nil
}

func validZero(z int32) bool { return z >= -128 && z <= 127 }

func positive(f float32) bool { return finite(f) && f > 0 }

// Architecture returns the float architecture (no weights) that costs the
// same as the int8 model: fused ReLUs become ReLU layers again, so
// summaries and budget checks of model files read like those of --arch.
func (q *QModel) Architecture() (*Model, error) {
	m := &Model{Name: q.Name, Class: "VGG", Input: q.Input, Meta: q.Meta}
	for i, l := range q.Layers {
		m.Layers = append(m.Layers, Layer{Name: l.Name, Kind: l.Kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW,
			Stride: l.Stride, Pad: l.Pad, OutH: l.OutH, OutW: l.OutW, Bias: l.Kind == Conv2d || l.Kind == Linear, Role: l.Role})
		if l.ReLU {
			next := ""
			if i+1 < len(q.Layers) {
				next = q.Layers[i+1].Name
			}
			m.Layers = append(m.Layers, fusedReLU(&l, next))
		}
	}
	if _, err := m.Resolve(); err != nil {
		return nil, err
	}
	return m, nil
}

// Architecture returns the model's layers without weights, for costing.
func (m *Model) Architecture() *Model {
	a := m.Clone()
	for i := range a.Layers {
		l := &a.Layers[i]
		l.Weight, l.BiasData, l.Gamma, l.Beta, l.Mean, l.Var = nil, nil, nil, nil, nil, nil
		l.Weight2, l.Bias2 = nil, nil
	}
	return a
}

// fusedReLU is the ReLU an int8 layer l fused, as the float model had it.
// In a torchvision-style Sequential ("features.N") it gets its module
// index back, so summary prints what print(model) would: after a conv
// the index just before the next layer's (features.0 then features.2 in
// VGG, 0 and 3 after a folded BatchNorm in VGG_bn), after a Linear the
// index after it (the Dropout that follows was dropped from the int8
// model). Otherwise it is l.Name+".relu", functional.
func fusedReLU(l *QLayer, next string) Layer {
	prefix, n, ok := seqIndex(l.Name)
	if ok {
		idx := n + 1
		if np, nn, nok := seqIndex(next); nok && np == prefix && nn > n+1 && l.Kind != Linear {
			idx = nn - 1
		}
		if np, nn, nok := seqIndex(next); !nok || np != prefix || nn > idx {
			return Layer{Name: prefix + "." + strconv.Itoa(idx), Kind: ReLU}
		}
	}
	return Layer{Name: l.Name + ".relu", Kind: ReLU, Functional: true}
}

// seqIndex splits "features.12" into "features" and 12.
func seqIndex(name string) (prefix string, n int, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != name[i+1:] {
		return "", 0, false
	}
	return name[:i], n, true
}
