package infer

import (
	"errors"
	"fmt"
	"sync"
	"time"

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

	// Threads: workers[0] is the goroutine calling Run; the others are
	// started once by NewSessionThreads and wait on their channel for the
	// index of the step to run their part of.
	workers []*sessWorker
	wg      sync.WaitGroup

	// se holds the squeeze-excite gates, computed by the calling
	// goroutine before the workers scale their channels.
	se seScratch

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
	sessSE
)

// sessStep is one layer's kernel call, with its buffers resolved, split
// into one part per worker.
type sessStep struct {
	op      sessOp
	layer   int   // index in the model's layers
	in, out int   // buffer indices
	n       int   // output values
	shape   Shape // input shape (squeeze-excite)
	parts   []sessPart
}

// sessPart is one worker's share of a step: a contiguous block of output
// channels (features), which is a contiguous block of the CHW output.
type sessPart struct {
	conv   kernels.Conv2dParams
	linear kernels.LinearParams
	pool   kernels.PoolParams
	zero   int8 // ReLU
	x0, x1 int  // input range the part reads (pools, ReLU); conv and Linear read all of it
	y0, y1 int  // output range it writes
	empty  bool // more workers than channels
}

type sessWorker struct {
	scr  kernels.Scratch
	step chan int // step index to run; closed by Close
}

// NewSession validates m and plans the Session's buffers and kernel calls,
// for one thread (the caller's).
func NewSession(m *QModel) (*Session, error) { return NewSessionThreads(m, 1) }

// NewSessionThreads is NewSession with a fixed pool of threads workers:
// each layer's output channels are split between them, the caller's
// goroutine taking the first share. threads−1 goroutines are started once
// here, not per layer or per frame; Close stops them.
func NewSessionThreads(m *QModel, threads int) (*Session, error) {
	if m == nil {
		return nil, errors.New("new session: nil model")
	}
	if threads < 1 || threads > 256 {
		return nil, fmt.Errorf("new session: %d threads: want 1..256", threads)
	}
	shapes, err := m.Shapes()
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("new session for %q: %w", m.Name, err)
	}
	s := &Session{m: m}
	for range threads {
		s.workers = append(s.workers, &sessWorker{})
	}
	if err := s.plan(shapes); err != nil {
		return nil, fmt.Errorf("new session for %q: %w", m.Name, err)
	}
	for i, w := range s.workers[1:] {
		w.step = make(chan int)
		go s.work(i+1, w.step)
	}
	return s, nil
}

// Threads is the number of workers, the caller's goroutine included.
func (s *Session) Threads() int { return len(s.workers) }

// Close stops the worker goroutines. The Session must not be used after.
func (s *Session) Close() {
	for _, w := range s.workers[1:] {
		if w.step != nil {
			close(w.step)
			w.step = nil
		}
	}
}

func (s *Session) work(wi int, steps <-chan int) {
	for i := range steps {
		s.runPart(&s.steps[i], wi)
		s.wg.Done()
	}
}

func (s *Session) plan(shapes []Shape) error {
	m := s.m
	if first := m.Layers[0]; first.InZero != -128 {
		return &LayerError{Index: 0, Name: first.Name, Kind: first.Kind,
			Err: fmt.Errorf("in_zero %d: the first layer reads u8 pixels as q = pixel − 128, so in_zero must be −128", first.InZero)}
	}
	nw := len(s.workers)
	size := [2]int{int(m.Input.Elems()), 0}
	cur := 0
	in := m.Input
	for i := range m.Layers {
		l := &m.Layers[i]
		out := shapes[i]
		st := sessStep{layer: i, in: cur, out: 1 - cur, n: int(out.Elems())}
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
			full := kernels.Conv2dParams{C: in.C, H: in.H, W: in.W, O: l.Out, KH: l.KH, KW: l.KW,
				Stride: l.Stride, Pad: l.Pad, OH: out.H, OW: out.W,
				Weight: l.Weight, Bias: l.Bias, PadValue: l.PadValue,
				Mult: l.Mult, Shift: l.Shift, OutZero: l.OutZero, ReLU: l.ReLU,
				InScale: l.InScale, WScale: l.WScale}
			if err := full.Check(l.Logits); err != nil {
				return lerr(err)
			}
			// Weights in the kernel's own layout (packed for the SIMD
			// kernel, or Winograd's U), made once here, not every frame;
			// the workers share it read-only.
			if nw > 1 && kernels.SplitChannels(&full, nw) {
				// The kernel would rather have each thread take some
				// output channels (F(4,3) layers with few tile rows or
				// large weights: each thread would otherwise transform
				// all of U and pad its own rows to whole tiles).
				hw := out.H * out.W
				for w, r := range splitRange(l.Out, nw, 8) {
					p := sessPart{empty: r[0] == r[1], y0: r[0] * hw, y1: r[1] * hw}
					if !p.empty {
						p.conv = full.Channels(r[0], r[1])
						p.conv.Prepared = kernels.PrepareConv(&p.conv)
						s.workers[w].scr.Reserve(&p.conv)
					}
					st.parts = append(st.parts, p)
				}
				break
			}
			full.Prepared = kernels.PrepareConv(&full)
			// Threads split the output rows: each builds only its rows'
			// im2row patch (splitting channels made every thread build
			// the whole patch).
			for w, r := range splitRange(out.H, nw, 1) {
				p := sessPart{empty: r[0] == r[1], y0: 0, y1: st.n}
				if !p.empty {
					p.conv = full
					if nw > 1 {
						p.conv.RowsBegin, p.conv.RowsEnd = r[0], r[1]
					}
					s.workers[w].scr.Reserve(&p.conv)
				}
				st.parts = append(st.parts, p)
			}
		case Linear:
			st.op = sessLinear
			if l.Logits {
				st.op = sessLinearLogits
			}
			full := kernels.LinearParams{In: int(in.Elems()), Out: l.Out, Weight: l.Weight, Bias: l.Bias,
				Mult: l.Mult, Shift: l.Shift, OutZero: l.OutZero, ReLU: l.ReLU,
				InScale: l.InScale, WScale: l.WScale}
			if err := full.Check(l.Logits); err != nil {
				return lerr(err)
			}
			for _, r := range splitRange(l.Out, nw, 8) {
				p := sessPart{empty: r[0] == r[1], y0: r[0], y1: r[1]}
				if !p.empty {
					p.linear = full
					p.linear.Out = r[1] - r[0]
					p.linear.Weight = l.Weight[r[0]*full.In : r[1]*full.In]
					p.linear.Bias, p.linear.WScale = l.Bias[r[0]:r[1]], l.WScale[r[0]:r[1]]
					if !l.Logits {
						p.linear.Mult, p.linear.Shift = l.Mult[r[0]:r[1]], l.Shift[r[0]:r[1]]
					}
				}
				st.parts = append(st.parts, p)
			}
		case MaxPool2d:
			st.op = sessMaxPool
			full := kernels.PoolParams{C: in.C, H: in.H, W: in.W, K: l.KH, Stride: l.Stride, Pad: l.Pad, OH: out.H, OW: out.W}
			if err := full.CheckMax(); err != nil {
				return lerr(err)
			}
			st.parts = poolParts(full, nw)
		case AdaptiveAvgPool2d:
			if in == out {
				// The identity: nothing to run, the tensor stays put.
				in = out
				continue
			}
			st.op = sessAvgPool
			full := kernels.PoolParams{C: in.C, H: in.H, W: in.W, OH: out.H, OW: out.W}
			if err := full.CheckAvg(); err != nil {
				return lerr(err)
			}
			st.parts = poolParts(full, nw)
		case ReLU:
			if l.InScale != l.OutScale || l.InZero != l.OutZero {
				return lerr(errors.New("an unfused ReLU must keep scale and zero point"))
			}
			st.op, st.out = sessReLU, cur
			for _, r := range splitRange(st.n, nw, 8) {
				st.parts = append(st.parts, sessPart{zero: int8(l.InZero), empty: r[0] == r[1], x0: r[0], x1: r[1], y0: r[0], y1: r[1]})
			}
		case SqueezeExcite:
			// In place: the gates come from the whole input, then each
			// worker scales its channels.
			st.op, st.out, st.shape = sessSE, cur, in
			hw := in.H * in.W
			for _, r := range splitRange(in.C, nw, 1) {
				st.parts = append(st.parts, sessPart{empty: r[0] == r[1], x0: r[0], x1: r[1], y0: r[0] * hw, y1: r[1] * hw})
			}
			if len(s.se.mean) < in.C {
				s.se.mean, s.se.gates, s.se.mult = make([]float64, in.C), make([]float64, in.C), make([]int32, in.C)
			}
			if len(s.se.hidden) < l.Out {
				s.se.hidden = make([]float64, l.Out)
			}
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
		s.runStep(i)
	}
	return s.finish(), nil
}

// RunTimed is Run that also records each step's wall time in times
// (len(times) ≥ Steps()); it allocates nothing either.
func (s *Session) RunTimed(times []time.Duration) ([]float32, error) {
	if len(times) < len(s.steps) {
		return nil, fmt.Errorf("run timed: %d durations for %d steps", len(times), len(s.steps))
	}
	for i := range s.steps {
		t0 := time.Now()
		s.runStep(i)
		times[i] = time.Since(t0)
	}
	return s.finish(), nil
}

// Steps is the number of kernel calls a Run makes; StepLayer maps step i to
// the index of its layer in the model (fused and in-place layers have no
// step of their own).
func (s *Session) Steps() int { return len(s.steps) }

// StepLayer returns the model layer index of step i.
func (s *Session) StepLayer(i int) int { return s.steps[i].layer }

// runStep hands every worker its part of step i and runs the first part on
// the calling goroutine.
func (s *Session) runStep(i int) {
	st := &s.steps[i]
	if st.op == sessSE {
		seGatesInt8(&s.m.Layers[st.layer], st.shape, s.buf[st.in], &s.se)
	}
	n := 0
	for w := 1; w < len(st.parts); w++ {
		if !st.parts[w].empty {
			n++
		}
	}
	s.wg.Add(n)
	for w := 1; w < len(st.parts); w++ {
		if !st.parts[w].empty {
			s.workers[w].step <- i
		}
	}
	s.runPart(st, 0)
	s.wg.Wait()
}

// runPart runs worker wi's part of a step.
func (s *Session) runPart(st *sessStep, wi int) {
	p, w := &st.parts[wi], s.workers[wi]
	if p.empty {
		return
	}
	x, y := s.buf[st.in], s.buf[st.out]
	switch st.op {
	case sessConv:
		kernels.Conv2dInt8(&p.conv, x, y[p.y0:p.y1], &w.scr)
	case sessConvLogits:
		kernels.Conv2dLogits(&p.conv, x, s.logits[p.y0:p.y1], &w.scr)
	case sessLinear:
		kernels.LinearInt8(&p.linear, x, y[p.y0:p.y1])
	case sessLinearLogits:
		kernels.LinearLogits(&p.linear, x, s.logits[p.y0:p.y1])
	case sessMaxPool:
		kernels.MaxPool2d(&p.pool, x[p.x0:p.x1], y[p.y0:p.y1])
	case sessAvgPool:
		kernels.AdaptiveAvgPool2d(&p.pool, x[p.x0:p.x1], y[p.y0:p.y1])
	case sessReLU:
		kernels.ReLU(y[p.y0:p.y1], x[p.x0:p.x1], p.zero)
	case sessSE:
		hw := st.shape.H * st.shape.W
		seScaleInt8(x[p.y0:p.y1], y[p.y0:p.y1], s.se.mult[p.x0:p.x1], s.m.Layers[st.layer].InZero, hw)
	}
}

// splitRange splits [0, n) into parts contiguous ranges, in multiples of
// block where there is enough to split (8 suits the SIMD kernels' output
// tiles), so that no part is much larger than the others.
func splitRange(n, parts, block int) [][2]int {
	if n < block*parts {
		block = 1
	}
	blocks := (n + block - 1) / block
	rs := make([][2]int, parts)
	for i := range rs {
		rs[i] = [2]int{min(n, i*blocks/parts*block), min(n, (i+1)*blocks/parts*block)}
	}
	return rs
}

// poolParts splits a pool's channels between workers.
func poolParts(full kernels.PoolParams, nw int) []sessPart {
	var ps []sessPart
	in, out := full.H*full.W, full.OH*full.OW
	for _, r := range splitRange(full.C, nw, 1) {
		p := sessPart{empty: r[0] == r[1], x0: r[0] * in, x1: r[1] * in, y0: r[0] * out, y1: r[1] * out}
		p.pool = full
		p.pool.C = r[1] - r[0]
		ps = append(ps, p)
	}
	return ps
}

// finish dequantizes a last layer that is not Logits and returns the
// logits buffer.
func (s *Session) finish() []float32 {
	if !s.m.Layers[len(s.m.Layers)-1].Logits {
		q := s.buf[s.final][:len(s.logits)]
		for i, v := range q {
			s.logits[i] = float32(int32(v)-s.deqZero) * s.deqScale
		}
	}
	return s.logits
}
