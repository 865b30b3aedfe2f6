package kernels

import (
	"errors"
	"fmt"
)

// Conv2dParams describes one int8 convolution: a CHW input of C×H×W, OIHW
// weights, an O×OH×OW output. Fields after Bias belong to one output form:
// Mult, Shift, OutZero and ReLU to int8 output, InScale and WScale to
// float32 logits.
type Conv2dParams struct {
	C, H, W     int // input channels, height, width
	O, KH, KW   int // output channels, kernel height and width
	Stride, Pad int // the same along both axes
	OH, OW      int // output height and width

	Weight   []int8  // O·C·KH·KW, OIHW
	Bias     []int32 // O, zero-point term folded in
	PadValue []int8  // C: what x reads outside the image

	Mult, Shift []int32 // O: Q31 multipliers and exponents
	OutZero     int32
	ReLU        bool

	InScale float32
	WScale  []float32 // O

	// RowsBegin and RowsEnd, when RowsEnd > 0, limit a call to output
	// rows [RowsBegin, RowsEnd): a Session's threads split a layer's rows
	// so that each builds only its own part of the im2row patch. The
	// output slice is still the whole O×OH×OW tensor.
	RowsBegin, RowsEnd int

	// Prepared, when not nil, is PrepareConv(p): the weights laid out
	// once for the kernel this CPU runs (packed for the SIMD kernel, or
	// the Winograd path's U). It is used only while it was made from this
	// Weight slice and shape for the kernel in use; without it the kernel
	// packs the weights on every call. Kernels only read it: the threads
	// of a Session share one.
	Prepared *PreparedConv
}

// Channels is p restricted to output channels [o0, o1): the same input,
// the weights, bias and output constants of those channels, and no
// Prepared (prepare the result itself). Its output is those channels'
// planes, O·OH·OW values from channel o0's.
func (p *Conv2dParams) Channels(o0, o1 int) Conv2dParams {
	q := *p
	t := p.Taps()
	q.O, q.Weight, q.Bias, q.Prepared = o1-o0, p.Weight[o0*t:o1*t], p.Bias[o0:o1], nil
	if p.Mult != nil {
		q.Mult, q.Shift = p.Mult[o0:o1], p.Shift[o0:o1]
	}
	if p.WScale != nil {
		q.WScale = p.WScale[o0:o1]
	}
	return q
}

// Taps is the accumulation length of one output: C·KH·KW.
func (p *Conv2dParams) Taps() int { return p.C * p.KH * p.KW }

// Check reports whether the parameters are consistent (sizes, output shape,
// slice lengths) for the int8 output, or for logits when logits is set.
// Kernels assume a checked p.
func (p *Conv2dParams) Check(logits bool) error {
	if p.C <= 0 || p.H <= 0 || p.W <= 0 || p.O <= 0 || p.KH <= 0 || p.KW <= 0 || p.Stride <= 0 || p.Pad < 0 {
		return fmt.Errorf("conv %dx%dx%d → %d, kernel %dx%d, stride %d, pad %d: sizes must be positive (pad not negative)",
			p.C, p.H, p.W, p.O, p.KH, p.KW, p.Stride, p.Pad)
	}
	if p.H+2*p.Pad < p.KH || p.W+2*p.Pad < p.KW ||
		p.OH != (p.H+2*p.Pad-p.KH)/p.Stride+1 || p.OW != (p.W+2*p.Pad-p.KW)/p.Stride+1 {
		return fmt.Errorf("conv output %dx%d does not match input %dx%d, kernel %dx%d, stride %d, pad %d",
			p.OH, p.OW, p.H, p.W, p.KH, p.KW, p.Stride, p.Pad)
	}
	if int64(len(p.Weight)) != int64(p.O)*int64(p.Taps()) {
		return fmt.Errorf("conv weight has %d values, want %d", len(p.Weight), int64(p.O)*int64(p.Taps()))
	}
	if len(p.PadValue) != p.C {
		return fmt.Errorf("conv pad values: %d, want %d", len(p.PadValue), p.C)
	}
	if p.RowsEnd != 0 && (p.RowsBegin < 0 || p.RowsBegin >= p.RowsEnd || p.RowsEnd > p.OH) {
		return fmt.Errorf("conv rows [%d, %d): want 0 ≤ begin < end ≤ %d", p.RowsBegin, p.RowsEnd, p.OH)
	}
	return checkOut(p.O, p.Bias, p.Mult, p.Shift, p.OutZero, p.WScale, logits)
}

// LinearParams describes one int8 Linear layer: y = W·x + Bias on a
// flattened input of In values, W [Out][In] row-major. The output fields
// are as in Conv2dParams.
type LinearParams struct {
	In, Out int

	Weight []int8  // Out·In
	Bias   []int32 // Out

	Mult, Shift []int32
	OutZero     int32
	ReLU        bool

	InScale float32
	WScale  []float32
}

// Check is Conv2dParams.Check for a Linear layer.
func (p *LinearParams) Check(logits bool) error {
	if p.In <= 0 || p.Out <= 0 {
		return fmt.Errorf("linear %d → %d: sizes must be positive", p.In, p.Out)
	}
	if int64(len(p.Weight)) != int64(p.In)*int64(p.Out) {
		return fmt.Errorf("linear weight has %d values, want %d", len(p.Weight), int64(p.In)*int64(p.Out))
	}
	return checkOut(p.Out, p.Bias, p.Mult, p.Shift, p.OutZero, p.WScale, logits)
}

func checkOut(n int, bias, mult, shift []int32, zero int32, wscale []float32, logits bool) error {
	if len(bias) != n {
		return fmt.Errorf("bias has %d values, want %d", len(bias), n)
	}
	if logits {
		if len(wscale) != n {
			return fmt.Errorf("w_scale has %d values, want %d", len(wscale), n)
		}
		return nil
	}
	if len(mult) != n || len(shift) != n {
		return fmt.Errorf("mult/shift have %d/%d values, want %d", len(mult), len(shift), n)
	}
	for o, s := range shift {
		if s < -31 || s > 30 {
			return fmt.Errorf("shift[%d] = %d: want [-31, 30]", o, s)
		}
	}
	if zero < -128 || zero > 127 {
		return fmt.Errorf("out zero %d: want [-128, 127]", zero)
	}
	return nil
}

// PoolParams describes a pooling layer on a C×H×W input with a C×OH×OW
// output. K, Stride and Pad are MaxPool2d's (a square window); the
// adaptive average pool uses only the sizes.
type PoolParams struct {
	C, H, W     int
	K           int
	Stride, Pad int
	OH, OW      int
}

// CheckMax reports whether p is a consistent max-pool.
func (p *PoolParams) CheckMax() error {
	if p.C <= 0 || p.H <= 0 || p.W <= 0 || p.K <= 0 || p.Stride <= 0 || p.Pad < 0 || 2*p.Pad > p.K {
		return fmt.Errorf("max-pool %dx%dx%d, window %d, stride %d, pad %d: sizes must be positive, pad at most half the window",
			p.C, p.H, p.W, p.K, p.Stride, p.Pad)
	}
	if p.H+2*p.Pad < p.K || p.W+2*p.Pad < p.K ||
		p.OH != (p.H+2*p.Pad-p.K)/p.Stride+1 || p.OW != (p.W+2*p.Pad-p.K)/p.Stride+1 {
		return fmt.Errorf("max-pool output %dx%d does not match input %dx%d, window %d, stride %d, pad %d",
			p.OH, p.OW, p.H, p.W, p.K, p.Stride, p.Pad)
	}
	return nil
}

// CheckAvg reports whether p is a consistent adaptive average pool.
func (p *PoolParams) CheckAvg() error {
	if p.C <= 0 || p.H <= 0 || p.W <= 0 || p.OH <= 0 || p.OW <= 0 {
		return errors.New("adaptive average pool: sizes must be positive")
	}
	return nil
}
