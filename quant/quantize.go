package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vggedge/vggedge/infer"
)

// group is one int8 layer made of consecutive float layers: a convolution
// or Linear with the ReLU, Dropout and Flatten after it, a pool with the
// Dropout and Flatten after it, or a ReLU that follows no convolution.
type group struct {
	op   int // index of the layer doing the work; -1 for a group of no-ops
	kind infer.Kind
	relu bool
	last int // the last float layer in the group: its output is the group's tensor
}

// plan groups the layers of a model whose BatchNorm is already folded.
func plan(m *infer.Model) ([]group, error) {
	var gs []group
	ls := m.Layers
	passive := func(k infer.Kind) bool { return k == infer.Dropout || k == infer.Flatten }
	for i := 0; i < len(ls); {
		l := &ls[i]
		g := group{op: i, kind: l.Kind, last: i}
		switch l.Kind {
		case infer.Conv2d, infer.Linear:
			for g.last+1 < len(ls) && (passive(ls[g.last+1].Kind) || ls[g.last+1].Kind == infer.ReLU) {
				g.last++
				g.relu = g.relu || ls[g.last].Kind == infer.ReLU
			}
		case infer.MaxPool2d, infer.AdaptiveAvgPool2d, infer.ReLU, infer.SqueezeExcite:
			for g.last+1 < len(ls) && passive(ls[g.last+1].Kind) {
				g.last++
			}
		case infer.Dropout, infer.Flatten:
			g.op = -1
		case infer.BatchNorm2d:
			return nil, fmt.Errorf("layer %s: BatchNorm2d must be folded before quantizing", l.Name)
		default:
			return nil, fmt.Errorf("layer %s: cannot quantize %s", l.Name, l.Kind)
		}
		gs = append(gs, g)
		i = g.last + 1
	}
	return gs, nil
}

// Calibrator collects activation statistics of a float model over
// calibration images, then quantizes it.
type Calibrator struct {
	m       *infer.Model // BatchNorm folded
	groups  []group
	obs     map[int]*Observer // by float layer index
	samples int
}

// NewCalibrator prepares m (which must carry weights and an input spec)
// for calibration. BatchNorm is folded first, as at inference.
func NewCalibrator(m *infer.Model) (*Calibrator, error) {
	if !m.HasWeights() {
		return nil, errors.New("model has no weights to quantize")
	}
	if err := m.Meta.Spec.Validate(m.Input); err != nil {
		return nil, fmt.Errorf("input spec: %w", err)
	}
	f, err := infer.FoldBatchNorm(m)
	if err != nil {
		return nil, err
	}
	gs, err := plan(f)
	if err != nil {
		return nil, err
	}
	c := &Calibrator{m: f, groups: gs, obs: map[int]*Observer{}}
	for _, i := range observedLayers(gs) {
		c.obs[i] = NewObserver()
	}
	return c, nil
}

// Model is the float model calibration runs (BatchNorm folded).
func (c *Calibrator) Model() *infer.Model { return c.m }

// Samples is the number of images observed.
func (c *Calibrator) Samples() int { return c.samples }

// Observe records one image's activations: acts[i] is the output of
// Model().Layers[i], as ForwardFloatTrace returns them. The layers' observers
// are independent, so they run on every CPU, each fed by one goroutine in
// the same order as before: the ranges do not depend on the CPU count. An
// error names the first failing layer in layer order.
func (c *Calibrator) Observe(acts [][]float32) error {
	if len(acts) != len(c.m.Layers) {
		return fmt.Errorf("%d activations for %d layers", len(acts), len(c.m.Layers))
	}
	layers := make([]int, 0, len(c.obs))
	for i := range c.obs {
		layers = append(layers, i)
	}
	slices.Sort(layers)
	errs := make([]error, len(layers))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(layers)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := int(next.Add(1) - 1); j < len(layers); j = int(next.Add(1) - 1) {
				errs[j] = c.obs[layers[j]].Add(acts[layers[j]])
			}
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return fmt.Errorf("layer %s: %w", c.m.Layers[layers[j]].Name, err)
		}
	}
	c.samples++
	return nil
}

// ObserveImage runs the fast float forward pass on one normalised input
// and records its activations.
func (c *Calibrator) ObserveImage(x []float32) error {
	_, acts, err := c.m.ForwardFastTrace(x, runtime.NumCPU())
	if err != nil {
		return err
	}
	return c.Observe(acts)
}

// Options choose the calibration method.
type Options struct {
	Method     Method
	Percentile float64 // for Percentile; 0 means 99.99
}

// Quantize returns the int8 model: per-channel symmetric weights, int32
// biases, per-tensor activations from the observed ranges, ReLU fused into
// requantization, and the input's mean/std folded into the first layer so
// it reads u8 pixels (see infer.QModel for the exact arithmetic).
func (c *Calibrator) Quantize(opt Options) (*infer.QModel, error) {
	if c.samples == 0 {
		return nil, errors.New("no calibration images observed")
	}
	if opt.Method == "" {
		opt.Method = Percentile
	}
	if opt.Percentile == 0 {
		opt.Percentile = 99.99
	}
	if opt.Percentile <= 0 || opt.Percentile > 100 {
		return nil, fmt.Errorf("percentile %g: want (0, 100]", opt.Percentile)
	}
	m := c.m
	shapes, err := m.Resolve()
	if err != nil {
		return nil, err
	}
	q := &infer.QModel{Name: m.Name, Input: m.Input, Meta: m.Meta}
	q.Meta.Labels = append([]string(nil), m.Meta.Labels...)
	q.Meta.Prov.Calibration = string(opt.Method)
	q.Meta.Prov.Samples = c.samples
	if opt.Method == Percentile {
		q.Meta.Prov.Percentile = opt.Percentile
	}
	lastOp := -1
	for gi, g := range c.groups {
		if g.kind == infer.Conv2d || g.kind == infer.Linear {
			lastOp = gi
		}
	}
	if lastOp < 0 {
		return nil, errors.New("model has no convolution or Linear layer")
	}
	first := true
	inScale, inZero := float32(1), int32(-128)
	for gi, g := range c.groups {
		if g.op < 0 {
			continue
		}
		l := &m.Layers[g.op]
		ql := infer.QLayer{Name: l.Name, Kind: g.kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW,
			Stride: l.Stride, Pad: l.Pad, OutH: l.OutH, OutW: l.OutW, Role: l.Role,
			InScale: inScale, InZero: inZero, OutScale: inScale, OutZero: inZero}
		switch g.kind {
		case infer.Conv2d, infer.Linear:
			in := m.Input
			if g.op > 0 {
				in = shapes[g.op-1]
			}
			if err := quantizeWeights(&ql, l, in, first, m.Meta.Spec); err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Name, err)
			}
			first = false
			ql.ReLU = g.relu
			if gi == lastOp && gi == len(c.groups)-1 {
				ql.Logits = true
				ql.OutScale, ql.OutZero = 0, 0
				ql.ReLU = false
				if g.relu {
					return nil, fmt.Errorf("layer %s: the output layer has a ReLU; logits are taken before it", l.Name)
				}
				break
			}
			r := c.obs[g.last].Range(opt.Method, opt.Percentile)
			if g.relu {
				r.Lo = 0
			}
			ql.OutScale, ql.OutZero = activationParams(r)
			ql.Mult = make([]int32, ql.Out)
			ql.Shift = make([]int32, ql.Out)
			for o := range ql.Mult {
				ql.Mult[o], ql.Shift[o] = infer.QuantizeMultiplier(float64(ql.InScale) * float64(ql.WScale[o]) / float64(ql.OutScale))
			}
		case infer.MaxPool2d, infer.AdaptiveAvgPool2d, infer.ReLU, infer.SqueezeExcite:
			if first {
				return nil, fmt.Errorf("layer %s: the first layer must be a convolution or Linear (it folds the input's mean/std)", l.Name)
			}
			if g.kind == infer.SqueezeExcite {
				// Gates are in [0, 1]: the output fits the input's
				// range, so it keeps scale and zero point; the
				// excitation stays float (see infer/se.go).
				ql.SEWeight, ql.SEBias, ql.SEWeight2, ql.SEBias2 = l.Weight, l.BiasData, l.Weight2, l.Bias2
			}
		}
		q.Layers = append(q.Layers, ql)
		inScale, inZero = ql.OutScale, ql.OutZero
	}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("quantized model is invalid: %w", err)
	}
	return q, nil
}

// activationParams maps a float range containing 0 onto int8: 256 steps,
// with real 0 exactly representable.
func activationParams(r Range) (scale float32, zero int32) {
	span := r.Hi - r.Lo
	if span <= 0 || math.IsNaN(span) {
		return 1e-6, -128 // a tensor that is always 0
	}
	scale = float32(span / 255)
	z := math.Round(-128 - r.Lo/float64(scale))
	return scale, int32(min(max(z, -128), 127))
}

// quantizeWeights fills weights, scales, bias and pad values of a
// convolution or Linear layer reading a tensor of shape in. The first
// layer folds the input normalisation: it reads q = pixel − 128 with
// scale 1, so W' = W/(255·std[c]) and b' = b − Σ W·mean[c]/std[c].
func quantizeWeights(ql *infer.QLayer, l *infer.Layer, in infer.Shape, first bool, spec infer.InputSpec) error {
	taps := len(l.Weight) / l.Out
	plane := 1 // input values per channel that one weight row spans
	if l.Kind == infer.Linear {
		plane = int(in.H * in.W)
	} else {
		plane = l.KH * l.KW
	}
	w := make([]float64, len(l.Weight))
	b := make([]float64, l.Out)
	for i, v := range l.Weight {
		w[i] = float64(v)
	}
	if l.BiasData != nil {
		for o, v := range l.BiasData {
			b[o] = float64(v)
		}
	}
	if first {
		ql.InScale, ql.InZero = 1, -128
		for o := 0; o < l.Out; o++ {
			for t := 0; t < taps; t++ {
				c := t / plane
				mean, std := float64(spec.Mean[c]), float64(spec.Std[c])
				i := o*taps + t
				b[o] -= w[i] * mean / std
				w[i] /= 255 * std
			}
		}
	}
	if l.Kind == infer.Conv2d {
		ql.PadValue = make([]int8, l.In)
		for c := range ql.PadValue {
			if first {
				// The pixel that normalises to 0, as q = pixel − 128.
				ql.PadValue[c] = int8(min(max(math.Round(255*float64(spec.Mean[c]))-128, -128), 127))
			} else {
				ql.PadValue[c] = int8(ql.InZero)
			}
		}
	}
	ql.Weight = make([]int8, len(w))
	ql.WScale = make([]float32, l.Out)
	ql.Bias = make([]int32, l.Out)
	for o := 0; o < l.Out; o++ {
		row := w[o*taps : (o+1)*taps]
		var amax float64
		for _, v := range row {
			amax = max(amax, math.Abs(v))
		}
		s := float32(amax / 127)
		if s == 0 || amax == 0 {
			s = 1 // an all-zero filter: any scale represents it
		}
		ql.WScale[o] = s
		var sum int64
		for t, v := range row {
			qv := int8(min(max(math.Round(v/float64(s)), -127), 127))
			ql.Weight[o*taps+t] = qv
			sum += int64(qv)
		}
		bias := math.Round(b[o]/(float64(ql.InScale)*float64(s))) - float64(ql.InZero)*float64(sum)
		if math.Abs(bias) > math.MaxInt32/2 {
			return fmt.Errorf("output channel %d: bias %g does not fit int32 at scale %g", o, b[o], float64(ql.InScale)*float64(s))
		}
		ql.Bias[o] = int32(bias)
	}
	return nil
}
