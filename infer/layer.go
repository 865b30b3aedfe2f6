package infer

import "fmt"

// Kind names a layer type. The strings are the architecture file's "type"
// values and the JSON output's "kind".
type Kind string

// The layer kinds vggedge understands.
const (
	Conv2d            Kind = "conv2d"
	BatchNorm2d       Kind = "batchnorm2d"
	ReLU              Kind = "relu"
	MaxPool2d         Kind = "maxpool2d"
	AdaptiveAvgPool2d Kind = "adaptiveavgpool2d"
	Flatten           Kind = "flatten"
	Linear            Kind = "linear"
	Dropout           Kind = "dropout"
	// SqueezeExcite is squeeze-and-excitation channel attention (Hu et
	// al. 2018): global average pool → 1x1 conv C→r → ReLU → 1x1 conv r→C
	// → sigmoid → each channel of the input scaled by its gate. In is C,
	// Out the reduced width r; it keeps its input's shape.
	SqueezeExcite Kind = "squeezeexcite"
)

// Kinds lists every kind, in the order the architecture file documents them.
var Kinds = []Kind{Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear, Dropout, SqueezeExcite}

// Shape is a C×H×W activation (batch 1). A flattened vector of n features
// is n×1×1.
type Shape struct{ C, H, W int }

// Elems is the number of values in a tensor of this shape.
func (s Shape) Elems() int64 { return int64(s.C) * int64(s.H) * int64(s.W) }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Dims is the shape as a JSON-friendly [C, H, W].
func (s Shape) Dims() []int { return []int{s.C, s.H, s.W} }

// Layer is one node of a sequential model. Only the fields of its Kind are
// meaningful; the rest stay zero.
type Layer struct {
	// Name is the torchvision module path: "features.0", "avgpool",
	// "classifier.6". Weight import and the printout depend on it.
	Name string
	Kind Kind

	// Conv2d: In→Out channels. Linear: In→Out features. BatchNorm2d: In
	// channels. An In of 0 is filled in from the previous layer's shape.
	In, Out int
	// Conv2d and MaxPool2d window; MaxPool2d uses KH (square) only.
	KH, KW int
	Stride int
	Pad    int
	Bias   bool // Conv2d, Linear

	OutH, OutW int     // AdaptiveAvgPool2d output size
	P          float64 // Dropout probability (no-op at inference)
	Eps        float64 // BatchNorm2d epsilon

	// Functional marks an operation applied in forward() rather than held
	// as a module (torchvision's VGG calls torch.flatten in forward):
	// it runs and is costed but is not printed.
	Functional bool

	// Role marks a layer that vggedge reduce inserted (RoleReduce,
	// RoleLowRank, RoleRestore); "" for the model's own layers. summary
	// marks them and the model file keeps them.
	Role Role

	// Parameters, present when the model carries weights (nil when it is
	// only costed). Conv2d weights are OIHW, Linear weights [Out][In].
	Weight, BiasData       []float32
	Gamma, Beta, Mean, Var []float32 // BatchNorm2d
	// SqueezeExcite: Weight [r][C] and BiasData [r] are the squeeze 1x1,
	// Weight2 [C][r] and Bias2 [C] the excitation 1x1 (both always have a
	// bias).
	Weight2, Bias2 []float32
}

// Role says why vggedge reduce inserted a layer.
type Role string

// The roles of inserted layers.
const (
	// RoleReduce is a 1x1 convolution C→r before the classifier, from the
	// principal components of the last feature map.
	RoleReduce Role = "reduce"
	// RoleLowRank is a convolution's Cin→r half (its kernel, r filters).
	RoleLowRank Role = "low-rank"
	// RoleRestore is the 1x1 convolution r→Cout after a low-rank one.
	RoleRestore Role = "restore"
)

// Roles lists the roles a model file may carry.
var Roles = []Role{RoleReduce, RoleLowRank, RoleRestore}

// inPlace reports whether the layer writes its output over its input, so it
// needs no buffer of its own.
func (l *Layer) inPlace() bool {
	switch l.Kind {
	case ReLU, Dropout, Flatten, BatchNorm2d, SqueezeExcite:
		return true
	}
	return false
}

// OutShape computes the layer's output shape from its input and checks the
// layer against it. The error says what was expected.
func (l *Layer) OutShape(in Shape) (Shape, error) {
	for _, v := range []int{l.In, l.Out, l.KH, l.KW, l.Stride, l.Pad, l.OutH, l.OutW} {
		if v > MaxDim || v < -MaxDim {
			return Shape{}, fmt.Errorf("a size of %d is beyond what vggedge supports (%d)", v, MaxDim)
		}
	}
	switch l.Kind {
	case Conv2d:
		if l.Out <= 0 {
			return Shape{}, fmt.Errorf("out_channels %d: must be positive", l.Out)
		}
		if l.KH <= 0 || l.KW <= 0 {
			return Shape{}, fmt.Errorf("kernel_size %dx%d: must be positive", l.KH, l.KW)
		}
		if l.Stride <= 0 {
			return Shape{}, fmt.Errorf("stride %d: must be positive", l.Stride)
		}
		if l.Pad < 0 {
			return Shape{}, fmt.Errorf("padding %d: must not be negative", l.Pad)
		}
		if l.In != 0 && l.In != in.C {
			return Shape{}, fmt.Errorf("in_channels %d, but its input has %d channels (%v)", l.In, in.C, in)
		}
		h := (in.H+2*l.Pad-l.KH)/l.Stride + 1
		w := (in.W+2*l.Pad-l.KW)/l.Stride + 1
		if in.H+2*l.Pad < l.KH || in.W+2*l.Pad < l.KW || h <= 0 || w <= 0 {
			return Shape{}, fmt.Errorf("input %v (padding %d) is smaller than the %dx%d kernel", in, l.Pad, l.KH, l.KW)
		}
		return Shape{l.Out, h, w}, nil
	case BatchNorm2d:
		if l.In != 0 && l.In != in.C {
			return Shape{}, fmt.Errorf("num_features %d, but its input has %d channels (%v)", l.In, in.C, in)
		}
		return in, nil
	case ReLU, Dropout:
		if l.Kind == Dropout && (l.P < 0 || l.P > 1) {
			return Shape{}, fmt.Errorf("p %g: must be in [0, 1]", l.P)
		}
		return in, nil
	case Flatten:
		return Shape{int(in.Elems()), 1, 1}, nil
	case MaxPool2d:
		if l.KW != 0 && l.KW != l.KH {
			return Shape{}, fmt.Errorf("kernel_size %dx%d: max-pool windows are square", l.KH, l.KW)
		}
		if l.KH <= 0 || l.Stride <= 0 || l.Pad < 0 {
			return Shape{}, fmt.Errorf("kernel_size %d, stride %d, padding %d: kernel and stride must be positive, padding not negative", l.KH, l.Stride, l.Pad)
		}
		if 2*l.Pad > l.KH {
			return Shape{}, fmt.Errorf("padding %d: must be at most half the kernel size %d", l.Pad, l.KH)
		}
		if in.H+2*l.Pad < l.KH || in.W+2*l.Pad < l.KH {
			return Shape{}, fmt.Errorf("input %v is smaller than the %dx%d window; the input image is too small for this model", in, l.KH, l.KH)
		}
		return Shape{in.C, (in.H+2*l.Pad-l.KH)/l.Stride + 1, (in.W+2*l.Pad-l.KH)/l.Stride + 1}, nil
	case AdaptiveAvgPool2d:
		if l.OutH <= 0 || l.OutW <= 0 {
			return Shape{}, fmt.Errorf("output_size (%d, %d): must be positive", l.OutH, l.OutW)
		}
		return Shape{in.C, l.OutH, l.OutW}, nil
	case SqueezeExcite:
		if l.Out <= 0 {
			return Shape{}, fmt.Errorf("reduced width %d: must be positive", l.Out)
		}
		if l.In != 0 && l.In != in.C {
			return Shape{}, fmt.Errorf("channels %d, but its input has %d channels (%v)", l.In, in.C, in)
		}
		return in, nil
	case Linear:
		if l.Out <= 0 {
			return Shape{}, fmt.Errorf("out_features %d: must be positive", l.Out)
		}
		if l.In != 0 && int64(l.In) != in.Elems() {
			return Shape{}, fmt.Errorf("in_features %d, but its input has %d values (%v)", l.In, in.Elems(), in)
		}
		return Shape{l.Out, 1, 1}, nil
	}
	return Shape{}, fmt.Errorf("unknown layer type %q", l.Kind)
}
