package infer

import (
	"errors"
	"fmt"

	"github.com/vggedge/vggedge/infer/kernels"
)

// Session runs one QModel on int8 kernels. Its buffers are planned once by
// NewSession, so Run allocates nothing. A Session is for one goroutine;
// any number of Sessions may share one QModel, which they only read.
//
// Activations live in two ping-pong buffers, as in Cost's plan: the input
// is tensor 0 in buffer 0, every layer that does not work in place writes
// the other buffer. Run therefore overwrites the input: fill it again
// (SetPixels or Input) before every Run.
type Session struct {
	m      *QModel
	steps  []sessStep
	buf    [2][]int8
	logits []float32
	final  int // buffer holding the last int8 tensor, when the model does not end in logits
	scr    kernels.Scratch

	// The dequantization of a last layer that is not Logits.
	deqScale float32
	deqZero  int32
}

type sessOp int

const (
	sessConv sessOp = iota
	sessConvLogits
	sessLinear
	sessLinearLogits
	sessMaxPool
	sessAvgPool
	sessReLU
)

// sessStep is one layer's kernel call, with its buffers resolved.
type sessStep struct {
	op      sessOp
	conv    kernels.Conv2dParams
	linear  kernels.LinearParams
	pool    kernels.PoolParams
	zero    int8 // ReLU
	in, out int  // buffer indices
	n       int  // output values
}

// NewSession validates m and plans the Session's buffers and kernel calls.
func NewSession(m *QModel) (*Session, error) {
	if m == nil {
		return nil, errors.New("new session: nil model")
	}
	shapes, err := m.Shapes()
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("new session for %q: %w", m.Name, err)
	}
	s := &Session{m: m}
	if err := s.plan(shapes); err != nil {
		return nil, fmt.Errorf("new session for %q: %w", m.Name, err)
	}
	return s, nil
}

func (s *Session) plan(shapes []Shape) error {
	m := s.m
	if first := m.Layers[0]; first.InZero != -128 {
		return &LayerError{Index: 0, Name: first.Name, Kind: first.Kind,
			Err: fmt.Errorf("in_zero %d: the first layer reads u8 pixels as q = pixel − 128, so in_zero must be −128", first.InZero)}
	}
	size := [2]int{int(m.Input.Elems()), 0}
	cur := 0
	in := m.Input
	for i := range m.Layers {
		l := &m.Layers[i]
		out := shapes[i]
		st := sessStep{in: cur, out: 1 - cur, n: int(out.Elems())}
		lerr := func(err error) error { return &LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: err} }
		if l.Logits && l.Kind != Conv2d && l.Kind != Linear {
			return lerr(errors.New("logits: only a convolution or Linear layer writes logits"))
		}
		switch l.Kind {
		case Conv2d:
			st.op = sessConv
			if l.Logits {
				st.op = sessConvLogits
			}
			st.conv = kernels.Conv2dParams{C: in.C, H: in.H, W: in.W, O: l.Out, KH: l.KH, KW: l.KW,
				Stride: l.Stride, Pad: l.Pad, OH: out.H, OW: out.W,
				Weight: l.Weight, Bias: l.Bias, PadValue: l.PadValue,
				Mult: l.Mult, Shift: l.Shift, OutZero: l.OutZero, ReLU: l.ReLU,
				InScale: l.InScale, WScale: l.WScale}
			if err := st.conv.Check(l.Logits); err != nil {
				return lerr(err)
			}
			s.scr.Reserve(&st.conv)
		case Linear:
			st.op = sessLinear
			if l.Logits {
				st.op = sessLinearLogits
			}
			st.linear = kernels.LinearParams{In: int(in.Elems()), Out: l.Out, Weight: l.Weight, Bias: l.Bias,
				Mult: l.Mult, Shift: l.Shift, OutZero: l.OutZero, ReLU: l.ReLU,
				InScale: l.InScale, WScale: l.WScale}
			if err := st.linear.Check(l.Logits); err != nil {
				return lerr(err)
			}
		case MaxPool2d:
			st.op = sessMaxPool
			st.pool = kernels.PoolParams{C: in.C, H: in.H, W: in.W, K: l.KH, Stride: l.Stride, Pad: l.Pad, OH: out.H, OW: out.W}
			if err := st.pool.CheckMax(); err != nil {
				return lerr(err)
			}
		case AdaptiveAvgPool2d:
			if in == out {
				// The identity: nothing to run, the tensor stays put.
				in = out
				continue
			}
			st.op = sessAvgPool
			st.pool = kernels.PoolParams{C: in.C, H: in.H, W: in.W, OH: out.H, OW: out.W}
			if err := st.pool.CheckAvg(); err != nil {
				return lerr(err)
			}
		case ReLU:
			if l.InScale != l.OutScale || l.InZero != l.OutZero {
				return lerr(errors.New("an unfused ReLU must keep scale and zero point"))
			}
			st.op, st.out, st.zero = sessReLU, cur, int8(l.InZero)
		case Flatten:
			// CHW data is already the flattened vector.
			in = out
			continue
		default:
			return lerr(fmt.Errorf("no int8 kernel for %s", l.Kind))
		}
		if !l.Logits && st.out != cur {
			size[st.out] = max(size[st.out], st.n)
			cur = st.out
		}
		s.steps = append(s.steps, st)
		in = out
	}
	last := &m.Layers[len(m.Layers)-1]
	s.final = cur
	s.logits = make([]float32, shapes[len(shapes)-1].Elems())
	switch {
	case last.Logits:
	case last.Kind == Conv2d || last.Kind == Linear:
		s.deqScale, s.deqZero = last.OutScale, last.OutZero
	default:
		// Pools, ReLU and Flatten keep their input's scale and zero point.
		s.deqScale, s.deqZero = last.InScale, last.InZero
	}
	s.buf[0] = make([]int8, size[0])
	s.buf[1] = make([]int8, size[1])
	return nil
}

// Model returns the model the Session runs.
func (s *Session) Model() *QModel { return s.m }

// Input is the CHW int8 input tensor (Input.Elems() values): q = pixel −
// 128 for u8 pixels. Run overwrites it.
func (s *Session) Input() []int8 { return s.buf[0][:s.m.Input.Elems()] }

// SetPixels fills the input from CHW u8 pixels: q = pixel − 128.
func (s *Session) SetPixels(pix []byte) error {
	in := s.Input()
	if len(pix) != len(in) {
		return fmt.Errorf("set pixels: %d values, want %v = %d", len(pix), s.m.Input, len(in))
	}
	for i, p := range pix {
		in[i] = int8(p ^ 0x80) // p − 128 in two's complement
	}
	return nil
}

// ActivationBytes is the size of the two int8 ping-pong buffers.
func (s *Session) ActivationBytes() int64 { return int64(len(s.buf[0]) + len(s.buf[1])) }

// Run runs every layer on the input and returns the logits: float32,
// owned by the Session and valid until the next Run. A model whose last
// layer writes int8 gets that tensor dequantized: float32(q − zero)·scale.
// Run allocates nothing.
func (s *Session) Run() ([]float32, error) {
	for i := range s.steps {
		st := &s.steps[i]
		x, y := s.buf[st.in], s.buf[st.out]
		switch st.op {
		case sessConv:
			kernels.Conv2dInt8(&st.conv, x, y, &s.scr)
		case sessConvLogits:
			kernels.Conv2dLogits(&st.conv, x, s.logits, &s.scr)
		case sessLinear:
			kernels.LinearInt8(&st.linear, x, y)
		case sessLinearLogits:
			kernels.LinearLogits(&st.linear, x, s.logits)
		case sessMaxPool:
			kernels.MaxPool2d(&st.pool, x, y)
		case sessAvgPool:
			kernels.AdaptiveAvgPool2d(&st.pool, x, y)
		case sessReLU:
			kernels.ReLU(y[:st.n], x[:st.n], st.zero)
		}
	}
	if !s.m.Layers[len(s.m.Layers)-1].Logits {
		q := s.buf[s.final][:len(s.logits)]
		for i, v := range q {
			s.logits[i] = float32(int32(v)-s.deqZero) * s.deqScale
		}
	}
	return s.logits, nil
}
