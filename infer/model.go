package infer

import (
	"errors"
	"fmt"
)

// MaxDim bounds every size in a model (channels, features, pixels per side).
// It keeps hostile architecture files from overflowing the cost arithmetic;
// no edge model comes near it.
const MaxDim = 1 << 20

// Model is a sequential network: the layers run in order on a single
// tensor, as torchvision's VGG does.
type Model struct {
	// Name is what the user called it ("vgg16", or the architecture file's
	// name).
	Name string
	// Class is the printed top-level module name ("VGG").
	Class  string
	Input  Shape
	Layers []Layer
	// Meta is the input spec, labels and provenance; zero for a model that
	// is only costed.
	Meta Meta
}

// LayerError says which layer of a model is wrong and why.
type LayerError struct {
	Index int
	Name  string
	Kind  Kind
	Err   error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("layer %d %s (%s): %v", e.Index, e.Name, e.Kind, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// Resolve infers every layer's unset input size (In) from the chain of
// shapes and checks that the layers chain: it returns each layer's output
// shape. It writes In, so resolve a model before sharing it between
// goroutines (the builders return resolved models).
func (m *Model) Resolve() ([]Shape, error) {
	if err := m.Input.Validate(); err != nil {
		return nil, fmt.Errorf("input %v: %w", m.Input, err)
	}
	if len(m.Layers) == 0 {
		return nil, errors.New("model has no layers")
	}
	shapes := make([]Shape, len(m.Layers))
	cur := m.Input
	for i := range m.Layers {
		l := &m.Layers[i]
		out, err := l.OutShape(cur)
		if err == nil {
			err = out.Validate()
		}
		if err == nil {
			err = l.checkParams(cur)
		}
		if err != nil {
			return nil, &LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: err}
		}
		switch l.Kind {
		case Conv2d, BatchNorm2d, SqueezeExcite:
			l.In = cur.C
		case Linear:
			l.In = int(cur.Elems())
		}
		shapes[i] = out
		cur = out
	}
	return shapes, nil
}

// Validate reports whether vggedge supports a tensor of this shape: every
// dimension positive and at most MaxDim, and at most 2^31-1 values.
func (s Shape) Validate() error {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return fmt.Errorf("every dimension must be positive")
	}
	// 2^31-1 values keeps every index an int on 32-bit ARM too.
	if s.C > MaxDim || s.H > MaxDim || s.W > MaxDim || s.Elems() > 1<<31-1 {
		return fmt.Errorf("larger than vggedge supports (%d per dimension, 2^31-1 values)", MaxDim)
	}
	return nil
}

// checkParams checks that weights, when present, have the sizes the layer
// needs for the input it receives.
func (l *Layer) checkParams(in Shape) error {
	want := func(field string, got []float32, n int64) error {
		if got != nil && int64(len(got)) != n {
			return fmt.Errorf("%s has %d values, want %d", field, len(got), n)
		}
		return nil
	}
	switch l.Kind {
	case Conv2d:
		if err := want("weight", l.Weight, int64(l.Out)*int64(in.C)*int64(l.KH)*int64(l.KW)); err != nil {
			return err
		}
		if !l.Bias && l.BiasData != nil {
			return fmt.Errorf("bias values given but bias=false")
		}
		return want("bias", l.BiasData, int64(l.Out))
	case Linear:
		if err := want("weight", l.Weight, int64(l.Out)*in.Elems()); err != nil {
			return err
		}
		if !l.Bias && l.BiasData != nil {
			return fmt.Errorf("bias values given but bias=false")
		}
		return want("bias", l.BiasData, int64(l.Out))
	case SqueezeExcite:
		c, r := int64(in.C), int64(l.Out)
		for _, f := range []struct {
			name string
			v    []float32
			n    int64
		}{{"weight", l.Weight, r * c}, {"bias", l.BiasData, r}, {"weight2", l.Weight2, c * r}, {"bias2", l.Bias2, c}} {
			if err := want(f.name, f.v, f.n); err != nil {
				return err
			}
		}
	case BatchNorm2d:
		for _, f := range []struct {
			name string
			v    []float32
		}{{"weight", l.Gamma}, {"bias", l.Beta}, {"running_mean", l.Mean}, {"running_var", l.Var}} {
			if err := want(f.name, f.v, int64(in.C)); err != nil {
				return err
			}
		}
		if l.Eps < 0 {
			return fmt.Errorf("eps %g: must not be negative", l.Eps)
		}
	}
	return nil
}

// HasWeights reports whether every parameterised layer carries its values,
// so the model can be run and not only costed.
func (m *Model) HasWeights() bool {
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case Conv2d, Linear:
			if l.Weight == nil || (l.Bias && l.BiasData == nil) {
				return false
			}
		case BatchNorm2d:
			if l.Gamma == nil || l.Beta == nil || l.Mean == nil || l.Var == nil {
				return false
			}
		case SqueezeExcite:
			if l.Weight == nil || l.BiasData == nil || l.Weight2 == nil || l.Bias2 == nil {
				return false
			}
		}
	}
	return true
}

// Clone returns a deep copy of the layer list; parameter slices are shared
// (they are never modified in place).
func (m *Model) Clone() *Model {
	c := *m
	c.Layers = append([]Layer(nil), m.Layers...)
	return &c
}
