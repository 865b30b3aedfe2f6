package infer

import (
	"errors"
	"fmt"
	"github.com/vggedge/vggedge/infer/kernels"
	"math"
)

// The float32 reference forward pass. It is the oracle every int8 and SIMD
// kernel is tested against, so it is written as plain loops that follow
// PyTorch's definitions one to one, with no tiling, packing or fusion.
//
// Precision: convolution, Linear and average-pool sums accumulate in float64
// (in the order bias, then input channel, kernel row, kernel column) and are
// rounded to float32 once, when stored. BatchNorm2d is also evaluated in
// float64. The result is therefore at least as accurate as PyTorch's float32
// CPU kernels, whose summation order differs; compare against it with a
// relative tolerance, not bit for bit.

// ForwardFloat runs the model on one CHW float32 input (len == Input.Elems())
// and returns the output (logits). x is not modified.
func (m *Model) ForwardFloat(x []float32) ([]float32, error) {
	out, _, err := m.forwardFloat(x, false, referenceOps)
	return out, err
}

// ForwardFloatTrace is the same but also returns every layer's output:
// acts[i] is the output of m.Layers[i] (for calibration). Every slice is
// freshly allocated, so callers may keep or modify them independently.
func (m *Model) ForwardFloatTrace(x []float32) (out []float32, acts [][]float32, err error) {
	return m.forwardFloat(x, true, referenceOps)
}

// floatOps are the convolution and Linear implementations a forward pass
// uses: the reference loops, or the fast GEMM ones (floatfast.go).
type floatOps struct {
	conv   func(l *Layer, in, out Shape, x []float32) []float32
	linear func(l *Layer, x []float32) []float32
}

var referenceOps = floatOps{conv: conv2dFloat, linear: linearFloat}

func (m *Model) forwardFloat(x []float32, trace bool, ops floatOps) ([]float32, [][]float32, error) {
	if m == nil {
		return nil, nil, errors.New("nil model")
	}
	// Resolve fills in In fields; doing it on a copy of the layer list keeps
	// ForwardFloat free of writes to m, so concurrent runs do not race.
	r := m.Clone()
	shapes, err := r.Resolve()
	if err != nil {
		return nil, nil, err
	}
	if err := r.CheckRunnable(shapes); err != nil {
		return nil, nil, err
	}
	in := r.Input
	if int64(len(x)) != in.Elems() {
		return nil, nil, fmt.Errorf("input has %d values, want %d×%d×%d = %d", len(x), in.C, in.H, in.W, in.Elems())
	}
	var acts [][]float32
	if trace {
		acts = make([][]float32, len(r.Layers))
	}
	cur := x
	for i := range r.Layers {
		l := &r.Layers[i]
		out := shapes[i]
		var y []float32
		switch l.Kind {
		case Conv2d:
			y = ops.conv(l, in, out, cur)
		case BatchNorm2d:
			y = batchNormFloat(l, in, cur)
		case ReLU:
			y = reluFloat(cur)
		case MaxPool2d:
			y = maxPoolFloat(l, in, out, cur)
		case AdaptiveAvgPool2d:
			y = adaptiveAvgPoolFloat(in, out, cur)
		case Linear:
			y = ops.linear(l, cur)
		case SqueezeExcite:
			y = squeezeExciteFloat(l, in, cur)
		case Flatten, Dropout:
			// Flatten only changes the shape: CHW data is already the
			// flattened vector. Dropout is the identity at inference. Copy
			// anyway so no output aliases the caller's input or another
			// layer's trace.
			y = append([]float32(nil), cur...)
		default:
			// Resolve rejects unknown kinds; this guards future kinds added
			// to OutShape but not here.
			return nil, nil, &LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: errors.New("no float32 implementation")}
		}
		if trace {
			acts[i] = y
		}
		cur, in = y, out
	}
	return cur, acts, nil
}

// CheckRunnable reports, before any work, the first layer that cannot run:
// missing parameters (a model that is only costed), or BatchNorm statistics
// that would divide by zero. shapes are the resolved output shapes; the
// index arithmetic of every kernel must fit in an int (it matters on 32-bit
// ARM boards). The model file's loader runs it too (infer/vgm).
func (m *Model) CheckRunnable(shapes []Shape) error {
	if m.Input.Elems() > math.MaxInt {
		return fmt.Errorf("input %v: too large for this platform", m.Input)
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		var err error
		switch l.Kind {
		case Conv2d, Linear:
			switch {
			case l.Weight == nil:
				err = errors.New("no weights (the model carries only its architecture)")
			case l.Bias && l.BiasData == nil:
				err = errors.New("bias=true but no bias values")
			}
		case BatchNorm2d:
			err = checkBatchNorm(l)
		case SqueezeExcite:
			if l.Weight == nil || l.BiasData == nil || l.Weight2 == nil || l.Bias2 == nil {
				err = errors.New("no weights (the model carries only its architecture)")
			}
		}
		if err == nil && shapes[i].Elems() > math.MaxInt {
			err = fmt.Errorf("output %v: too large for this platform", shapes[i])
		}
		if err != nil {
			return &LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: err}
		}
	}
	return nil
}

// checkBatchNorm checks that a BatchNorm2d carries its four vectors and that
// var+eps is positive. PyTorch would silently produce Inf or NaN for a
// non-positive var+eps; no trained model has one, so it is reported as the
// bad weight file it is. Lengths are checked by Resolve.
func checkBatchNorm(l *Layer) error {
	for _, f := range []struct {
		name string
		v    []float32
	}{{"weight", l.Gamma}, {"bias", l.Beta}, {"running_mean", l.Mean}, {"running_var", l.Var}} {
		if f.v == nil {
			return fmt.Errorf("no %s values (the model carries only its architecture)", f.name)
		}
	}
	for c, v := range l.Var {
		if !(float64(v)+l.Eps > 0) { // also catches NaN
			return fmt.Errorf("running_var[%d] = %g with eps %g: var+eps must be positive", c, v, l.Eps)
		}
	}
	return nil
}

// conv2dFloat is PyTorch's Conv2d: cross-correlation (the kernel is not
// flipped), zero padding of Pad on every side, the same Stride along both
// axes, OIHW weights.
func conv2dFloat(l *Layer, in, out Shape, x []float32) []float32 {
	y := make([]float32, out.Elems())
	kh, kw := l.KH, l.KW
	for o := 0; o < out.C; o++ {
		for oy := 0; oy < out.H; oy++ {
			for ox := 0; ox < out.W; ox++ {
				var sum float64
				if l.Bias {
					sum = float64(l.BiasData[o])
				}
				for c := 0; c < in.C; c++ {
					for ky := 0; ky < kh; ky++ {
						iy := oy*l.Stride - l.Pad + ky
						if iy < 0 || iy >= in.H {
							continue // zero padding contributes nothing
						}
						for kx := 0; kx < kw; kx++ {
							ix := ox*l.Stride - l.Pad + kx
							if ix < 0 || ix >= in.W {
								continue
							}
							w := l.Weight[((o*in.C+c)*kh+ky)*kw+kx]
							sum += float64(w) * float64(x[(c*in.H+iy)*in.W+ix])
						}
					}
				}
				y[(o*out.H+oy)*out.W+ox] = float32(sum)
			}
		}
	}
	return y
}

// batchNormFloat is BatchNorm2d in eval mode, with the running statistics:
// y = (x − mean) / √(var + eps) · γ + β, per channel.
func batchNormFloat(l *Layer, in Shape, x []float32) []float32 {
	y := make([]float32, len(x))
	hw := in.H * in.W
	for c := 0; c < in.C; c++ {
		mean, gamma, beta := float64(l.Mean[c]), float64(l.Gamma[c]), float64(l.Beta[c])
		std := math.Sqrt(float64(l.Var[c]) + l.Eps)
		for i := c * hw; i < (c+1)*hw; i++ {
			y[i] = float32((float64(x[i])-mean)/std*gamma + beta)
		}
	}
	return y
}

// reluFloat is max(0, x). NaN stays NaN, as in PyTorch.
func reluFloat(x []float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
	return y
}

// maxPoolFloat is MaxPool2d with a square KH×KH window, ceil_mode=False
// (the output size from Resolve rounds down) and implicit −Inf padding, so
// padding never wins over a real value, negative ones included. A NaN in a
// window wins, as in PyTorch.
func maxPoolFloat(l *Layer, in, out Shape, x []float32) []float32 {
	y := make([]float32, out.Elems())
	k := l.KH
	for c := 0; c < out.C; c++ {
		for oy := 0; oy < out.H; oy++ {
			for ox := 0; ox < out.W; ox++ {
				best := float32(math.Inf(-1))
				for ky := 0; ky < k; ky++ {
					iy := oy*l.Stride - l.Pad + ky
					if iy < 0 || iy >= in.H {
						continue
					}
					for kx := 0; kx < k; kx++ {
						ix := ox*l.Stride - l.Pad + kx
						if ix < 0 || ix >= in.W {
							continue
						}
						v := x[(c*in.H+iy)*in.W+ix]
						if v > best || v != v {
							best = v
						}
					}
				}
				y[(c*out.H+oy)*out.W+ox] = best
			}
		}
	}
	return y
}

// adaptiveAvgPoolFloat is AdaptiveAvgPool2d: each output is the mean of its
// bin. The bins are PyTorch's, kernels.AdaptiveBin, the one definition the
// int8 kernel and the trainer use too: [floor(i·in/out), ceil((i+1)·in/out)),
// never empty, overlapping when in is not a multiple of out.
func adaptiveAvgPoolFloat(in, out Shape, x []float32) []float32 {
	y := make([]float32, out.Elems())
	for c := 0; c < out.C; c++ {
		for oy := 0; oy < out.H; oy++ {
			y0, y1 := kernels.AdaptiveBin(oy, in.H, out.H)
			for ox := 0; ox < out.W; ox++ {
				x0, x1 := kernels.AdaptiveBin(ox, in.W, out.W)
				var sum float64
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						sum += float64(x[(c*in.H+iy)*in.W+ix])
					}
				}
				y[(c*out.H+oy)*out.W+ox] = float32(sum / float64((y1-y0)*(x1-x0)))
			}
		}
	}
	return y
}

// linearFloat is y = W·x + b, with W [Out][In] row-major and x the CHW
// tensor read as a flat vector (torch.flatten order).
func linearFloat(l *Layer, x []float32) []float32 {
	y := make([]float32, l.Out)
	n := len(x)
	for o := 0; o < l.Out; o++ {
		var sum float64
		if l.Bias {
			sum = float64(l.BiasData[o])
		}
		row := l.Weight[o*n : (o+1)*n]
		for i, v := range x {
			sum += float64(row[i]) * float64(v)
		}
		y[o] = float32(sum)
	}
	return y
}
