package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/vggedge/vggedge/infer"
)

// Config says how to train. Start from DefaultConfig: every field is used
// as given, zero included.
type Config struct {
	Epochs int // passes over the training set
	Batch  int // samples per optimizer step

	// SGD with momentum (PyTorch's form: v = μ·v + g + λ·w; w −= lr·v).
	// Weight decay λ applies to weights, not biases.
	LR          float64 // peak learning rate
	Momentum    float64
	WeightDecay float64
	// Warmup is the number of epochs (fractions allowed) over which the
	// learning rate rises linearly to LR; it then follows a half cosine to
	// zero at the end of the last epoch. Without BatchNorm, a full learning
	// rate on freshly initialised weights can diverge in the first steps.
	Warmup float64

	// Shift translates each training image by up to Shift pixels in x and
	// y (uniformly, independently), filling with pixel value 0: cheap
	// augmentation for centred subjects such as MNIST digits.
	Shift int

	Seed uint64
	// Shards is how many parts each batch is split into and run in
	// parallel. Gradients are summed in shard order, so results depend on
	// Shards but not on GOMAXPROCS or scheduling.
	Shards int
}

// DefaultConfig is a setting that trains small VGG-style models on
// MNIST-sized data well.
func DefaultConfig() Config {
	return Config{Epochs: 10, Batch: 64, LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Warmup: 0.5, Shards: 2}
}

// Limits keep configurations sane; beyond them something is mistyped.
const (
	MaxBatch  = 1 << 16
	MaxShards = 64
	MaxShift  = 64
)

func (c *Config) validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Epochs <= 0 || c.Epochs > 1e6:
		return fmt.Errorf("epochs %d: must be in 1..1000000", c.Epochs)
	case c.Batch <= 0 || c.Batch > MaxBatch:
		return fmt.Errorf("batch %d: must be in 1..%d", c.Batch, MaxBatch)
	case !finite(c.LR) || c.LR <= 0:
		return fmt.Errorf("learning rate %g: must be positive", c.LR)
	case !finite(c.Momentum) || c.Momentum < 0 || c.Momentum >= 1:
		return fmt.Errorf("momentum %g: must be in [0, 1)", c.Momentum)
	case !finite(c.WeightDecay) || c.WeightDecay < 0:
		return fmt.Errorf("weight decay %g: must not be negative", c.WeightDecay)
	case !finite(c.Warmup) || c.Warmup < 0 || c.Warmup > float64(c.Epochs):
		return fmt.Errorf("warm-up %g epochs: must be in [0, %d] (the epochs)", c.Warmup, c.Epochs)
	case c.Shift < 0 || c.Shift > MaxShift:
		return fmt.Errorf("shift %d: must be in 0..%d", c.Shift, MaxShift)
	case c.Shards <= 0 || c.Shards > MaxShards:
		return fmt.Errorf("shards %d: must be in 1..%d", c.Shards, MaxShards)
	}
	return nil
}

// Dataset is a labelled set of u8 images, each Shape (C×H×W, CHW order).
// The model's InputSpec turns pixels into its input, as at inference.
type Dataset struct {
	Shape  infer.Shape
	Pixels []byte // Len()·Shape.Elems() values, image after image
	Labels []int  // class indices
}

// Len is the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

func (d *Dataset) check(what string, in infer.Shape, classes int) error {
	if d == nil {
		return fmt.Errorf("%s set: none given", what)
	}
	if d.Shape != in {
		return fmt.Errorf("%s set: images are %v, the model's input is %v", what, d.Shape, in)
	}
	if d.Len() == 0 {
		return fmt.Errorf("%s set: no images", what)
	}
	if int64(len(d.Pixels)) != int64(d.Len())*in.Elems() {
		return fmt.Errorf("%s set: %d pixel values for %d images of %v, want %d", what, len(d.Pixels), d.Len(), in, int64(d.Len())*in.Elems())
	}
	for i, l := range d.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("%s set: image %d has label %d, but the model has %d classes (0..%d)", what, i, l, classes, classes-1)
		}
	}
	return nil
}

// Trainer trains one model. It is not safe for concurrent use (it runs its
// own goroutines).
type Trainer struct {
	cfg     Config
	model   *infer.Model
	net     *net[float32]
	shards  []*shard[float32]
	params  []param
	grad    [][]float32 // the batch's gradient, per param
	train   *Dataset
	classes int
	lut     [256]float32 // pixel → normalised input, as InputSpec.Normalize
	fill    []float32    // per channel: the input value of pixel 0

	epoch, step, stepsPerEpoch int
}

// param is one weight or bias tensor of the net, with its momentum.
type param struct {
	layer int
	bias  bool
	w, v  []float32
	decay bool
}

// EpochStats describes one epoch of training.
type EpochStats struct {
	Epoch    int     // 1-based
	Loss     float64 // mean training loss, with augmentation and dropout
	Accuracy float64 // training top-1 on the same batches, before each step
	LR       float64 // learning rate of the last step
	Samples  int
}

// Result is a model's loss and top-1 accuracy on a data set.
type Result struct {
	Loss     float64
	Accuracy float64
	Correct  int
	Samples  int
}

// New prepares to train m on train. m needs a valid Meta.Spec (it
// normalises the pixels) and one output per class. Layers without weights
// are He-initialised from cfg.Seed; layers with weights start from them.
// m itself is never modified: Model returns the trained copy.
func New(m *infer.Model, train *Dataset, cfg Config) (*Trainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, err := newNet[float32](m)
	if err != nil {
		return nil, err
	}
	spec := m.Meta.Spec
	if err := spec.Validate(n.in); err != nil {
		return nil, fmt.Errorf("input spec: %w", err)
	}
	out := n.outShape()
	if out.H != 1 || out.W != 1 {
		return nil, fmt.Errorf("the model's output is %v: want one logit per class (end with a Linear layer)", out)
	}
	t := &Trainer{cfg: cfg, model: m.Clone(), net: n, train: train, classes: out.C}
	if err := train.check("training", n.in, t.classes); err != nil {
		return nil, err
	}
	if len(m.Meta.Labels) != 0 && len(m.Meta.Labels) != t.classes {
		return nil, fmt.Errorf("the model has %d labels but %d outputs", len(m.Meta.Labels), t.classes)
	}
	if n.in.C > 1 {
		// One lookup table serves every channel only if they share mean
		// and std; otherwise normalise per channel.
		for c := 1; c < n.in.C; c++ {
			if spec.Mean[c] != spec.Mean[0] || spec.Std[c] != spec.Std[0] {
				return nil, errors.New("training needs the same mean and std on every channel (not yet per channel)")
			}
		}
	}
	var pix [256]byte
	for i := range pix {
		pix[i] = byte(i)
	}
	spec1 := infer.InputSpec{Mean: spec.Mean[:1], Std: spec.Std[:1]}
	spec1.Normalize(t.lut[:], pix[:], infer.Shape{C: 1, H: 1, W: 256})
	t.fill = make([]float32, n.in.C)
	for c := range t.fill {
		t.fill[c] = t.lut[0]
	}

	n.initHe(cfg.Seed)
	for i, l := range n.layers {
		if l.w == nil {
			continue
		}
		t.params = append(t.params, param{layer: i, w: l.w, v: make([]float32, len(l.w)), decay: true})
		if l.b != nil {
			t.params = append(t.params, param{layer: i, bias: true, w: l.b, v: make([]float32, len(l.b))})
		}
	}
	for _, p := range t.params {
		t.grad = append(t.grad, make([]float32, len(p.w)))
	}
	per := (cfg.Batch + cfg.Shards - 1) / cfg.Shards
	for range cfg.Shards {
		t.shards = append(t.shards, newShard(n, per))
	}
	t.stepsPerEpoch = (train.Len() + cfg.Batch - 1) / cfg.Batch
	return t, nil
}

// lr is the learning rate of a step: linear warm-up, then a half cosine.
func (t *Trainer) lr(step int) float64 {
	total := t.cfg.Epochs * t.stepsPerEpoch
	warm := int(t.cfg.Warmup * float64(t.stepsPerEpoch))
	if step < warm {
		return t.cfg.LR * float64(step+1) / float64(warm)
	}
	p := float64(step-warm) / float64(max(total-warm, 1))
	return t.cfg.LR * 0.5 * (1 + math.Cos(math.Pi*p))
}

// Random streams: PCG(seed^salt, index) per purpose, so that adding a draw
// to one purpose does not shift another.
const (
	saltShuffle = 0x5348_5546_464c_4531 // "SHUFFLE1"
	saltSample  = 0x5341_4d50_4c45_3031 // "SAMPLE01"
)

// Epoch trains one pass over the training set in a seeded random order.
// progress, if not nil, is called after every step with the samples done,
// the total and the mean loss so far.
func (t *Trainer) Epoch(progress func(done, total int, loss float64)) (EpochStats, error) {
	if t.epoch >= t.cfg.Epochs {
		return EpochStats{}, fmt.Errorf("all %d epochs are done", t.cfg.Epochs)
	}
	t.epoch++
	n := t.train.Len()
	order := rand.New(rand.NewPCG(t.cfg.Seed^saltShuffle, uint64(t.epoch))).Perm(n)
	st := EpochStats{Epoch: t.epoch}
	var lossSum float64
	correct := 0
	for start := 0; start < n; start += t.cfg.Batch {
		idx := order[start:min(start+t.cfg.Batch, n)]
		st.LR = t.lr(t.step)
		loss, c := t.runStep(idx, st.LR)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return st, fmt.Errorf("epoch %d, step %d: the loss is %v: training diverged (lower the learning rate)", t.epoch, t.step, loss)
		}
		lossSum += loss
		correct += c
		st.Samples += len(idx)
		if progress != nil {
			progress(st.Samples, n, lossSum/float64(st.Samples))
		}
	}
	st.Loss = lossSum / float64(st.Samples)
	st.Accuracy = float64(correct) / float64(st.Samples)
	return st, nil
}

// runStep trains on the samples idx: forward and backward in parallel
// shards, gradients summed in shard order, one SGD update. It returns the
// summed loss and the number of correct predictions.
func (t *Trainer) runStep(idx []int, lr float64) (float64, int) {
	bs, ns := len(idx), len(t.shards)
	losses := make([]float64, ns)
	corrects := make([]int, ns)
	var wg sync.WaitGroup
	for s, sh := range t.shards {
		lo, hi := s*bs/ns, (s+1)*bs/ns
		if lo == hi {
			continue
		}
		wg.Go(func() {
			losses[s], corrects[s] = t.shardStep(sh, idx[lo:hi], lo, 1/float64(bs))
		})
	}
	wg.Wait()

	var loss float64
	correct := 0
	for i := range t.grad {
		clear(t.grad[i])
	}
	for s, sh := range t.shards {
		lo, hi := s*bs/ns, (s+1)*bs/ns
		if lo == hi {
			continue
		}
		loss += losses[s]
		correct += corrects[s]
		for i, p := range t.params {
			src := sh.gw[p.layer]
			if p.bias {
				src = sh.gb[p.layer]
			}
			g := t.grad[i]
			for j, v := range src {
				g[j] += v
			}
		}
	}

	mu, wd, rate := float32(t.cfg.Momentum), float32(t.cfg.WeightDecay), float32(lr)
	for i, p := range t.params {
		g := t.grad[i]
		for j, w := range p.w {
			d := g[j]
			if p.decay {
				d += wd * w
			}
			p.v[j] = mu*p.v[j] + d
			p.w[j] = w - rate*p.v[j]
		}
	}
	t.step++
	return loss, correct
}

// shardStep runs forward and backward for the samples idx (at offset off
// in the batch) on sh. The loss gradient is scaled by scale (1/batch), so
// the summed shard gradients are the batch mean's.
func (t *Trainer) shardStep(sh *shard[float32], idx []int, off int, scale float64) (float64, int) {
	sh.zeroGrads()
	rngs := make([]*rand.Rand, len(idx))
	labels := make([]int, len(idx))
	e := int(t.net.in.Elems())
	for b, j := range idx {
		rngs[b] = rand.New(rand.NewPCG(t.cfg.Seed^saltSample, uint64(t.step)<<20|uint64(off+b)))
		labels[b] = t.train.Labels[j]
		t.input(sh.acts[0][b*e:(b+1)*e], t.train, j, rngs[b], t.cfg.Shift)
	}
	logits := t.net.forward(sh, len(idx), true, rngs)
	loss, correct := softmaxCE(logits, labels, t.classes, scale, sh.d0)
	t.net.backward(sh, len(idx))
	return loss, correct
}

// input writes image j of ds, normalised, translated by up to shift pixels
// drawn from rng, into dst.
func (t *Trainer) input(dst []float32, ds *Dataset, j int, rng *rand.Rand, shift int) {
	in := ds.Shape
	e := int(in.Elems())
	src := ds.Pixels[j*e : (j+1)*e]
	if shift == 0 {
		for i, p := range src {
			dst[i] = t.lut[p]
		}
		return
	}
	dy, dx := rng.IntN(2*shift+1)-shift, rng.IntN(2*shift+1)-shift
	for c := 0; c < in.C; c++ {
		for y := 0; y < in.H; y++ {
			row := dst[(c*in.H+y)*in.W : (c*in.H+y+1)*in.W]
			sy := y - dy
			if sy < 0 || sy >= in.H {
				for i := range row {
					row[i] = t.fill[c]
				}
				continue
			}
			srow := src[(c*in.H+sy)*in.W : (c*in.H+sy+1)*in.W]
			for x := range row {
				if sx := x - dx; sx >= 0 && sx < in.W {
					row[x] = t.lut[srow[sx]]
				} else {
					row[x] = t.fill[c]
				}
			}
		}
	}
}

// Evaluate runs the current weights (Dropout off, no augmentation) over ds.
func (t *Trainer) Evaluate(ds *Dataset) (Result, error) {
	if err := ds.check("evaluation", t.net.in, t.classes); err != nil {
		return Result{}, err
	}
	n, ns, per := ds.Len(), len(t.shards), t.shards[0].cap
	e := int(t.net.in.Elems())
	losses := make([]float64, ns)
	corrects := make([]int, ns)
	for start := 0; start < n; start += ns * per {
		var wg sync.WaitGroup
		for s, sh := range t.shards {
			lo, hi := start+s*per, min(start+(s+1)*per, n)
			if lo >= hi {
				break
			}
			wg.Go(func() {
				for b := 0; b < hi-lo; b++ {
					t.input(sh.acts[0][b*e:(b+1)*e], ds, lo+b, nil, 0)
				}
				logits := t.net.forward(sh, hi-lo, false, nil)
				l, c := softmaxCE(logits, ds.Labels[lo:hi], t.classes, 0, nil)
				losses[s] += l
				corrects[s] += c
			})
		}
		wg.Wait()
	}
	r := Result{Samples: n}
	for s := range ns {
		r.Loss += losses[s]
		r.Correct += corrects[s]
	}
	r.Loss /= float64(n)
	r.Accuracy = float64(r.Correct) / float64(n)
	return r, nil
}

// Model returns a copy of the model with the current weights.
func (t *Trainer) Model() *infer.Model {
	m := t.model.Clone()
	for i, l := range t.net.layers {
		if l.w == nil {
			continue
		}
		m.Layers[i].Weight = append([]float32(nil), l.w...)
		m.Layers[i].BiasData = nil
		if l.b != nil {
			m.Layers[i].BiasData = append([]float32(nil), l.b...)
		}
	}
	return m
}
