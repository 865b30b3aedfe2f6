package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
)

// float is the element type of the layer code: float32 to train, float64
// to check gradients (the float GEMM's element types).
type float = kernels.Float

// mat is a GEMM operand: d row-major with leading dimension ld, read
// transposed when t.
func mat[T float](d []T, ld int, t bool) kernels.Matrix[T] {
	return kernels.Matrix[T]{Data: d, Stride: ld, Trans: t}
}

// net is a model prepared for training: per-layer shapes and parameters in
// T. Activations are batch-major: sample after sample, each C×H×W, as
// infer's CHW tensors are.
type net[T float] struct {
	in     infer.Shape
	layers []*layer[T]
}

type layer[T float] struct {
	kind    infer.Kind
	name    string
	in, out infer.Shape

	kh, kw, stride, pad int
	p                   float64 // dropout probability
	bias                bool

	w, b []T // parameters (Conv2d OIHW, Linear [out][in]); shared, read-only during a step

	// Conv2d: kdim = Cin·kh·kw and pix = Hout·Wout, the GEMM sizes; direct
	// when the convolution is 1x1 with stride 1 and no padding, so the
	// input already is its im2col matrix.
	kdim, pix int
	direct    bool
}

// newNet checks that every layer of m can be trained and lays out its
// shapes. Parameters are converted from m where present and left nil
// otherwise.
func newNet[T float](m *infer.Model) (*net[T], error) {
	if m == nil {
		return nil, errors.New("nil model")
	}
	r := m.Clone()
	shapes, err := r.Resolve()
	if err != nil {
		return nil, err
	}
	n := &net[T]{in: r.Input}
	in := r.Input
	for i := range r.Layers {
		l := &r.Layers[i]
		tl := &layer[T]{kind: l.Kind, name: l.Name, in: in, out: shapes[i],
			kh: l.KH, kw: l.KW, stride: l.Stride, pad: l.Pad, p: l.P, bias: l.Bias}
		switch l.Kind {
		case infer.Conv2d:
			tl.kdim, tl.pix = in.C*l.KH*l.KW, shapes[i].H*shapes[i].W
			tl.direct = l.KH == 1 && l.KW == 1 && l.Stride == 1 && l.Pad == 0
			tl.w, tl.b = convert[T](l.Weight), convert[T](l.BiasData)
		case infer.Linear:
			tl.w, tl.b = convert[T](l.Weight), convert[T](l.BiasData)
		case infer.MaxPool2d:
			tl.kw = tl.kh // square windows; Resolve checked KW
		case infer.ReLU, infer.Flatten, infer.Dropout, infer.AdaptiveAvgPool2d:
		case infer.BatchNorm2d:
			return nil, &infer.LayerError{Index: i, Name: l.Name, Kind: l.Kind,
				Err: errors.New("training BatchNorm2d is not supported: use an architecture without batch_norm")}
		default:
			return nil, &infer.LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: errors.New("no training implementation")}
		}
		if (l.Kind == infer.Conv2d || l.Kind == infer.Linear) && l.Bias != (l.BiasData != nil) && l.Weight != nil {
			return nil, &infer.LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: errors.New("bias=true but no bias values")}
		}
		if shapes[i].Elems() > 1<<28 {
			return nil, &infer.LayerError{Index: i, Name: l.Name, Kind: l.Kind, Err: fmt.Errorf("output %v: too large to train", shapes[i])}
		}
		n.layers = append(n.layers, tl)
		in = shapes[i]
	}
	return n, nil
}

func convert[T float](s []float32) []T {
	if s == nil {
		return nil
	}
	d := make([]T, len(s))
	for i, v := range s {
		d[i] = T(v)
	}
	return d
}

// initHe fills missing parameters: weights from N(0, 2/fan_in) (He et al.
// 2015, for layers followed by ReLU), biases zero. Each layer draws from
// its own PCG stream, so one layer's size does not shift another's values.
func (n *net[T]) initHe(seed uint64) {
	for i, l := range n.layers {
		var fanIn int
		switch l.kind {
		case infer.Conv2d:
			fanIn = l.kdim
		case infer.Linear:
			fanIn = int(l.in.Elems())
		default:
			continue
		}
		if l.w == nil {
			rng := rand.New(rand.NewPCG(seed, 0x1e17_0000+uint64(i)))
			std := math.Sqrt(2 / float64(fanIn))
			l.w = make([]T, l.out.C*fanIn)
			for j := range l.w {
				l.w[j] = T(rng.NormFloat64() * std)
			}
		}
		if l.bias && l.b == nil {
			l.b = make([]T, l.out.C)
		}
	}
}

func (n *net[T]) outShape() infer.Shape { return n.layers[len(n.layers)-1].out }

// shard is the working memory of one goroutine: activations and gradients
// for up to cap samples, and the parameter gradients it accumulates.
type shard[T float] struct {
	cap    int
	acts   [][]T     // acts[0] the input, acts[i+1] the output of layer i
	argmax [][]int32 // MaxPool2d: index in the input plane of each output's max
	mask   [][]T     // Dropout: 0 or 1/(1−p) per value
	gw, gb [][]T     // parameter gradients, summed over the shard's samples
	d0, d1 []T       // activation gradients, ping-pong
	col    []T       // im2col matrix of one sample
	dcol   []T
	gbuf   kernels.GemmBuffers[T]
	// inputGrad keeps the gradient with respect to the input in d0 after
	// backward (for the gradient tests; training does not need it).
	inputGrad bool
}

func newShard[T float](n *net[T], capacity int) *shard[T] {
	s := &shard[T]{cap: capacity}
	s.acts = append(s.acts, make([]T, capacity*int(n.in.Elems())))
	maxAct, maxCol := n.in.Elems(), 0
	s.argmax = make([][]int32, len(n.layers))
	s.mask = make([][]T, len(n.layers))
	s.gw = make([][]T, len(n.layers))
	s.gb = make([][]T, len(n.layers))
	for i, l := range n.layers {
		e := int(l.out.Elems())
		s.acts = append(s.acts, make([]T, capacity*e))
		maxAct = max(maxAct, int64(e))
		switch l.kind {
		case infer.MaxPool2d:
			s.argmax[i] = make([]int32, capacity*e)
		case infer.Dropout:
			s.mask[i] = make([]T, capacity*e)
		case infer.Conv2d:
			s.gw[i] = make([]T, l.out.C*l.kdim)
			if !l.direct {
				maxCol = max(maxCol, l.kdim*l.pix)
			}
		case infer.Linear:
			s.gw[i] = make([]T, l.out.C*int(l.in.Elems()))
		}
		if l.bias {
			s.gb[i] = make([]T, l.out.C)
		}
	}
	s.d0 = make([]T, capacity*int(maxAct))
	s.d1 = make([]T, capacity*int(maxAct))
	s.col = make([]T, maxCol)
	s.dcol = make([]T, maxCol)
	return s
}

func (s *shard[T]) zeroGrads() {
	for i := range s.gw {
		clear(s.gw[i])
		clear(s.gb[i])
	}
}

// forward runs bs samples of acts[0] through the net. With train set,
// Dropout draws its masks from rngs (one per sample); otherwise it is the
// identity. It returns the logits, bs × outputs.
func (n *net[T]) forward(s *shard[T], bs int, train bool, rngs []*rand.Rand) []T {
	for i, l := range n.layers {
		ie, oe := int(l.in.Elems()), int(l.out.Elems())
		x, y := s.acts[i][:bs*ie], s.acts[i+1][:bs*oe]
		switch l.kind {
		case infer.Conv2d:
			for b := 0; b < bs; b++ {
				n.convForward(s, l, x[b*ie:(b+1)*ie], y[b*oe:(b+1)*oe])
			}
		case infer.Linear:
			// Y[bs×out] = X[bs×in] · Wᵀ + b.
			for b := 0; b < bs; b++ {
				fillBias(y[b*oe:(b+1)*oe], l.b)
			}
			kernels.GemmFloat(bs, oe, ie, mat(x, ie, false), mat(l.w, ie, true), y, oe, true, &s.gbuf)
		case infer.ReLU:
			for j, v := range x {
				y[j] = max(v, 0)
			}
		case infer.MaxPool2d:
			maxPoolForward(l, x, y, s.argmax[i][:bs*oe], bs)
		case infer.AdaptiveAvgPool2d:
			avgPoolForward(l, x, y, bs)
		case infer.Flatten:
			copy(y, x)
		case infer.Dropout:
			if !train || l.p == 0 {
				copy(y, x)
				break
			}
			m := s.mask[i][:bs*oe]
			keep := T(0)
			if l.p < 1 {
				keep = T(1 / (1 - l.p))
			}
			for b := 0; b < bs; b++ {
				r := rngs[b]
				for j := b * oe; j < (b+1)*oe; j++ {
					if r.Float64() < l.p {
						m[j] = 0
					} else {
						m[j] = keep
					}
				}
			}
			for j := range y {
				y[j] = x[j] * m[j]
			}
		}
	}
	return s.acts[len(n.layers)][:bs*int(n.outShape().Elems())]
}

// fillBias sets each of the len(b) rows of y (of len(y)/len(b) values) to
// its bias, or y to zero when there is no bias.
func fillBias[T float](y, b []T) {
	if b == nil {
		clear(y)
		return
	}
	per := len(y) / len(b)
	for o, v := range b {
		row := y[o*per : (o+1)*per]
		for j := range row {
			row[j] = v
		}
	}
}

func (n *net[T]) convForward(s *shard[T], l *layer[T], x, y []T) {
	col := x
	if !l.direct {
		col = s.col[:l.kdim*l.pix]
		im2col(l, x, col)
	}
	// Y[out×pix] = W[out×kdim] · col[kdim×pix] + b.
	fillBias(y, l.b)
	kernels.GemmFloat(l.out.C, l.pix, l.kdim, mat(l.w, l.kdim, false), mat(col, l.pix, false), y, l.pix, true, &s.gbuf)
}

// backward takes the gradient of the loss with respect to the logits in
// s.d0 (bs × outputs) and adds the parameter gradients to s.gw and s.gb.
// The forward pass of the same samples must have run on s.
func (n *net[T]) backward(s *shard[T], bs int) {
	dy, dx := s.d0, s.d1
	for i := len(n.layers) - 1; i >= 0; i-- {
		l := n.layers[i]
		ie, oe := int(l.in.Elems()), int(l.out.Elems())
		needDX := i > 0 || s.inputGrad
		x, y := s.acts[i][:bs*ie], s.acts[i+1][:bs*oe]
		g, gx := dy[:bs*oe], dx[:bs*ie]
		switch l.kind {
		case infer.Conv2d:
			for b := 0; b < bs; b++ {
				n.convBackward(s, i, l, x[b*ie:(b+1)*ie], g[b*oe:(b+1)*oe], gx[b*ie:(b+1)*ie], needDX)
			}
		case infer.Linear:
			// dW[out×in] += dYᵀ · X; db += Σ_b dY; dX = dY · W.
			kernels.GemmFloat(oe, ie, bs, mat(g, oe, true), mat(x, ie, false), s.gw[i], ie, true, &s.gbuf)
			if l.bias {
				for b := 0; b < bs; b++ {
					for o, v := range g[b*oe : (b+1)*oe] {
						s.gb[i][o] += v
					}
				}
			}
			if needDX {
				kernels.GemmFloat(bs, ie, oe, mat(g, oe, false), mat(l.w, ie, false), gx, ie, false, &s.gbuf)
			}
		case infer.ReLU:
			// The gradient is zero where the output is (x ≤ 0), as PyTorch.
			for j, v := range y {
				if v > 0 {
					gx[j] = g[j]
				} else {
					gx[j] = 0
				}
			}
		case infer.MaxPool2d:
			clear(gx)
			am := s.argmax[i][:bs*oe]
			plane := l.in.H * l.in.W
			for b := 0; b < bs; b++ {
				for c := 0; c < l.out.C; c++ {
					base := b*ie + c*plane
					off := b*oe + c*l.out.H*l.out.W
					for j := off; j < off+l.out.H*l.out.W; j++ {
						gx[base+int(am[j])] += g[j]
					}
				}
			}
		case infer.AdaptiveAvgPool2d:
			avgPoolBackward(l, g, gx, bs)
		case infer.Flatten:
			copy(gx, g)
		case infer.Dropout:
			if s.mask[i] == nil || l.p == 0 {
				copy(gx, g)
				break
			}
			m := s.mask[i][:bs*oe]
			for j := range gx {
				gx[j] = g[j] * m[j]
			}
		}
		dy, dx = dx, dy
	}
	if s.inputGrad && len(n.layers)%2 == 1 {
		// The input gradient ended in d1; tests read it from d0.
		copy(s.d0, s.d1[:bs*int(n.in.Elems())])
	}
}

func (n *net[T]) convBackward(s *shard[T], i int, l *layer[T], x, dy, dx []T, needDX bool) {
	col := x
	if !l.direct {
		col = s.col[:l.kdim*l.pix]
		im2col(l, x, col)
	}
	// dW[out×kdim] += dY[out×pix] · colᵀ.
	kernels.GemmFloat(l.out.C, l.kdim, l.pix, mat(dy, l.pix, false), mat(col, l.pix, true), s.gw[i], l.kdim, true, &s.gbuf)
	if l.bias {
		for o := range l.out.C {
			var sum T
			for _, v := range dy[o*l.pix : (o+1)*l.pix] {
				sum += v
			}
			s.gb[i][o] += sum
		}
	}
	if !needDX {
		return
	}
	// dcol[kdim×pix] = Wᵀ · dY, then scattered back onto the input.
	if l.direct {
		kernels.GemmFloat(l.kdim, l.pix, l.out.C, mat(l.w, l.kdim, true), mat(dy, l.pix, false), dx, l.pix, false, &s.gbuf)
		return
	}
	dcol := s.dcol[:l.kdim*l.pix]
	kernels.GemmFloat(l.kdim, l.pix, l.out.C, mat(l.w, l.kdim, true), mat(dy, l.pix, false), dcol, l.pix, false, &s.gbuf)
	col2im(l, dcol, dx)
}

// im2col writes the kdim×pix matrix whose column p holds the input values
// under output pixel p's window, in OIHW weight order (c, ky, kx); zero
// where the window hangs over the padding.
func im2col[T float](l *layer[T], x, col []T) {
	in, oh, ow := l.in, l.out.H, l.out.W
	for c := 0; c < in.C; c++ {
		for ky := 0; ky < l.kh; ky++ {
			for kx := 0; kx < l.kw; kx++ {
				row := col[((c*l.kh+ky)*l.kw+kx)*l.pix:][:l.pix]
				for oy := 0; oy < oh; oy++ {
					dst := row[oy*ow : (oy+1)*ow]
					iy := oy*l.stride - l.pad + ky
					if iy < 0 || iy >= in.H {
						clear(dst)
						continue
					}
					src := x[(c*in.H+iy)*in.W : (c*in.H+iy+1)*in.W]
					if l.stride == 1 {
						// ix = ox − pad + kx is inside the row for ox in [lo, hi).
						lo, hi := clampRange(l.pad-kx, in.W+l.pad-kx, ow)
						clear(dst[:lo])
						if hi > lo {
							copy(dst[lo:hi], src[lo-l.pad+kx:])
						}
						clear(dst[hi:])
						continue
					}
					for ox := range dst {
						ix := ox*l.stride - l.pad + kx
						if ix < 0 || ix >= in.W {
							dst[ox] = 0
						} else {
							dst[ox] = src[ix]
						}
					}
				}
			}
		}
	}
}

// clampRange clips [lo, hi) to [0, n), empty (lo == hi) if they miss.
func clampRange(lo, hi, n int) (int, int) {
	lo, hi = max(lo, 0), min(hi, n)
	if hi < lo {
		hi = lo
	}
	if lo > n {
		lo, hi = n, n
	}
	return lo, hi
}

// col2im is im2col's adjoint: it sums each column entry back onto the input
// value it was copied from. dx is overwritten.
func col2im[T float](l *layer[T], dcol, dx []T) {
	in, oh, ow := l.in, l.out.H, l.out.W
	clear(dx)
	for c := 0; c < in.C; c++ {
		for ky := 0; ky < l.kh; ky++ {
			for kx := 0; kx < l.kw; kx++ {
				row := dcol[((c*l.kh+ky)*l.kw+kx)*l.pix:][:l.pix]
				for oy := 0; oy < oh; oy++ {
					iy := oy*l.stride - l.pad + ky
					if iy < 0 || iy >= in.H {
						continue
					}
					src := row[oy*ow : (oy+1)*ow]
					dst := dx[(c*in.H+iy)*in.W : (c*in.H+iy+1)*in.W]
					if l.stride == 1 {
						lo, hi := clampRange(l.pad-kx, in.W+l.pad-kx, ow)
						if hi > lo {
							d := dst[lo-l.pad+kx:]
							for j, v := range src[lo:hi] {
								d[j] += v
							}
						}
						continue
					}
					for ox, v := range src {
						ix := ox*l.stride - l.pad + kx
						if ix >= 0 && ix < in.W {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}

// maxPoolForward is infer's max-pool (implicit −Inf padding, the first
// maximum wins, NaN wins) that also records where each maximum came from.
func maxPoolForward[T float](l *layer[T], x, y []T, argmax []int32, bs int) {
	in, out := l.in, l.out
	ninf := T(math.Inf(-1))
	for b := 0; b < bs; b++ {
		for c := 0; c < in.C; c++ {
			plane := x[(b*in.C+c)*in.H*in.W:][:in.H*in.W]
			o := (b*out.C + c) * out.H * out.W
			for oy := 0; oy < out.H; oy++ {
				for ox := 0; ox < out.W; ox++ {
					best, at := ninf, -1
					for ky := 0; ky < l.kh; ky++ {
						iy := oy*l.stride - l.pad + ky
						if iy < 0 || iy >= in.H {
							continue
						}
						for kx := 0; kx < l.kh; kx++ {
							ix := ox*l.stride - l.pad + kx
							if ix < 0 || ix >= in.W {
								continue
							}
							if v := plane[iy*in.W+ix]; v > best || v != v || at < 0 {
								best, at = v, iy*in.W+ix
							}
						}
					}
					y[o] = best
					argmax[o] = int32(at)
					o++
				}
			}
		}
	}
}

func avgPoolForward[T float](l *layer[T], x, y []T, bs int) {
	in, out := l.in, l.out
	for bc := 0; bc < bs*in.C; bc++ {
		plane := x[bc*in.H*in.W:][:in.H*in.W]
		for oy := 0; oy < out.H; oy++ {
			y0, y1 := kernels.AdaptiveBin(oy, in.H, out.H)
			for ox := 0; ox < out.W; ox++ {
				x0, x1 := kernels.AdaptiveBin(ox, in.W, out.W)
				var sum float64
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						sum += float64(plane[iy*in.W+ix])
					}
				}
				y[(bc*out.H+oy)*out.W+ox] = T(sum / float64((y1-y0)*(x1-x0)))
			}
		}
	}
}

func avgPoolBackward[T float](l *layer[T], dy, dx []T, bs int) {
	in, out := l.in, l.out
	clear(dx)
	for bc := 0; bc < bs*in.C; bc++ {
		plane := dx[bc*in.H*in.W:][:in.H*in.W]
		for oy := 0; oy < out.H; oy++ {
			y0, y1 := kernels.AdaptiveBin(oy, in.H, out.H)
			for ox := 0; ox < out.W; ox++ {
				x0, x1 := kernels.AdaptiveBin(ox, in.W, out.W)
				g := dy[(bc*out.H+oy)*out.W+ox] / T((y1-y0)*(x1-x0))
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						plane[iy*in.W+ix] += g
					}
				}
			}
		}
	}
}

// softmaxCE computes the mean softmax cross-entropy of bs rows of logits
// against labels, writes its gradient, scaled by scale, to dz, and returns
// the summed loss (float64) and the number of rows whose largest logit is
// the label.
func softmaxCE[T float](logits []T, labels []int, classes int, scale float64, dz []T) (loss float64, correct int) {
	for b, label := range labels {
		z := logits[b*classes : (b+1)*classes]
		top := 0
		for j, v := range z {
			if v > z[top] {
				top = j
			}
		}
		if top == label {
			correct++
		}
		m := float64(z[top])
		var sum float64
		for _, v := range z {
			sum += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(sum)
		loss += lse - float64(z[label])
		if dz == nil {
			continue
		}
		d := dz[b*classes : (b+1)*classes]
		for j, v := range z {
			p := math.Exp(float64(v) - lse)
			if j == label {
				p--
			}
			d[j] = T(p * scale)
		}
	}
	return loss, correct
}
