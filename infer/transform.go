package infer

import (
	"errors"
	"fmt"
	"strings"
)

// WithReduction returns a copy of m with a 1x1 channel reduction to width
// channels (Conv2d 1x1 + ReLU) after the last feature layer, so the
// classifier's first Linear reads width·H·W values instead of C·H·W. It
// changes the architecture only: a model with weights needs the reduction
// fitted from calibration data instead.
func WithReduction(m *Model, width int) (*Model, error) {
	if width <= 0 || width > MaxDim {
		return nil, fmt.Errorf("reduction width %d: must be in 1..%d", width, MaxDim)
	}
	at := -1
	for i := range m.Layers {
		if strings.HasPrefix(m.Layers[i].Name, "features.") {
			at = i + 1
		}
	}
	if at < 0 {
		return nil, errors.New("model has no features section to reduce")
	}
	if at == len(m.Layers) {
		return nil, errors.New("model has no classifier after its features")
	}
	r := m.Clone()
	r.Name = fmt.Sprintf("%s+1x1r%d", m.Name, width)
	n := countPrefix(m.Layers, "features.")
	red := []Layer{
		{Name: fmt.Sprintf("features.%d", n), Kind: Conv2d, Out: width, KH: 1, KW: 1, Stride: 1, Bias: true},
		{Name: fmt.Sprintf("features.%d", n+1), Kind: ReLU},
	}
	r.Layers = append(append(append([]Layer(nil), m.Layers[:at]...), red...), m.Layers[at:]...)
	// The classifier's first Linear and anything before it re-learn their
	// input size; their weights would no longer fit.
	for i := at + len(red); i < len(r.Layers); i++ {
		l := &r.Layers[i]
		if l.Weight != nil || l.Gamma != nil {
			return nil, fmt.Errorf("layer %s has weights: a reduction of a trained model must be fitted (vggedge reduce)", l.Name)
		}
		if l.Kind == Linear || l.Kind == Conv2d || l.Kind == BatchNorm2d {
			l.In = 0
			if l.Kind == Linear {
				break
			}
		}
	}
	if _, err := r.Resolve(); err != nil {
		return nil, err
	}
	return r, nil
}

// WithInput returns a copy of m for another input size. Its layers must
// accept it (a model with AdaptiveAvgPool2d before its classifier accepts
// any size of at least its smallest).
func WithInput(m *Model, in Shape) (*Model, error) {
	r := m.Clone()
	r.Input = in
	if _, err := r.Resolve(); err != nil {
		return nil, err
	}
	return r, nil
}
