package infer

import (
	"errors"
	"fmt"
	"math"
)

// FoldBatchNorm returns a copy of the model in which every BatchNorm2d
// directly following a Conv2d is folded into that convolution's weights and
// bias (the BN layer is removed), as done at inference. Layers keep their
// names. The input model is not modified.
//
// Per output channel o, with s = γ[o]/√(var[o]+eps):
//
//	w'[o] = w[o]·s
//	b'[o] = (b[o] − mean[o])·s + β[o]    (b = 0 when the conv has no bias)
//
// and the folded convolution has Bias=true. The arithmetic is done in
// float64 and rounded to float32 once.
//
// A model that carries only its architecture (neither the convolution nor
// the BN has parameters) is folded structurally: the BN is removed and the
// convolution gains a bias, so its cost is that of the deployed layer.
//
// A BatchNorm2d that does not directly follow a Conv2d is an error naming
// it: it cannot be folded, and vggedge has no standalone BN kernel to fall
// back on.
func FoldBatchNorm(m *Model) (*Model, error) {
	if m == nil {
		return nil, errors.New("nil model")
	}
	// Resolve on a copy: it validates every parameter length (so the
	// slicing below is safe) and fills the convolutions' In without
	// touching m.
	r := m.Clone()
	if _, err := r.Resolve(); err != nil {
		return nil, err
	}
	folded := *r
	out := &folded
	out.Layers = make([]Layer, 0, len(r.Layers))
	for i := range r.Layers {
		l := &r.Layers[i]
		if l.Kind != BatchNorm2d {
			out.Layers = append(out.Layers, *l)
			continue
		}
		if i == 0 || r.Layers[i-1].Kind != Conv2d {
			prev := "it is the first layer"
			if i > 0 {
				prev = fmt.Sprintf("it follows %s (%s)", r.Layers[i-1].Name, r.Layers[i-1].Kind)
			}
			return nil, &LayerError{Index: i, Name: l.Name, Kind: l.Kind,
				Err: fmt.Errorf("cannot fold: a BatchNorm2d must directly follow a Conv2d, but %s", prev)}
		}
		// The convolution was appended just before; the copy's parameter
		// slices are still shared with m, so fold into new slices.
		conv := &out.Layers[len(out.Layers)-1]
		if err := foldInto(conv, l, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// foldInto folds bn (at index bnIndex of the source model; the convolution
// is at bnIndex−1) into conv, replacing conv's parameter slices.
func foldInto(conv, bn *Layer, bnIndex int) error {
	bnHas := bn.Gamma != nil || bn.Beta != nil || bn.Mean != nil || bn.Var != nil
	if conv.Weight == nil && conv.BiasData == nil && !bnHas {
		conv.Bias = true
		return nil
	}
	if conv.Weight == nil || (conv.Bias && conv.BiasData == nil) {
		return &LayerError{Index: bnIndex - 1, Name: conv.Name, Kind: conv.Kind,
			Err: errors.New("cannot fold: the following BatchNorm2d has parameters but this convolution has no weights or bias values")}
	}
	if err := checkBatchNorm(bn); err != nil {
		return &LayerError{Index: bnIndex, Name: bn.Name, Kind: bn.Kind, Err: fmt.Errorf("cannot fold: %w", err)}
	}
	per := len(conv.Weight) / conv.Out // In·KH·KW, exact after Resolve
	w := make([]float32, len(conv.Weight))
	b := make([]float32, conv.Out)
	for o := 0; o < conv.Out; o++ {
		s := float64(bn.Gamma[o]) / math.Sqrt(float64(bn.Var[o])+bn.Eps)
		for j := o * per; j < (o+1)*per; j++ {
			w[j] = float32(float64(conv.Weight[j]) * s)
		}
		var b0 float64
		if conv.Bias {
			b0 = float64(conv.BiasData[o])
		}
		b[o] = float32((b0-float64(bn.Mean[o]))*s + float64(bn.Beta[o]))
	}
	conv.Weight, conv.BiasData, conv.Bias = w, b, true
	return nil
}
