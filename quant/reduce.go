package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
)

// Channel reduction with 1x1 convolutions, fitted on calibration images
// without retraining:
//
//   - before the classifier: a 1x1 convolution C→r onto the principal
//     subspace of the last feature map, and the first Linear re-projected
//     onto it (its input shrinks from C·S to r·S values);
//   - inside the convolution stack: conv(Cin→Cout) becomes conv(Cin→r)
//     followed by 1x1(r→Cout), the rank-r reconstruction of the layer's
//     responses (Zhang, Zou, He, Sun, "Accelerating Very Deep Convolutional
//     Networks for Classification and Detection", TPAMI 2016 — the linear,
//     asymmetric variant: least squares, no SGD).
//
// Layers are fitted in order, each on the inputs the already-reduced
// network gives it and against the responses of the original, so errors do
// not compound. Ranks come from a budget: Zhang et al.'s greedy selection
// removes, one at a time, the principal direction whose loss of PCA energy
// (log of the kept fraction, summed over layers) per MAC saved is smallest.

// ReduceOptions choose how far to reduce. Rank, KeepMACs and Fits combine:
// Rank fixes the classifier's reduction, the others pick the remaining
// ranks.
type ReduceOptions struct {
	// Rank is the width of the 1x1 reduction before the classifier; 0
	// leaves it to the budget.
	Rank int
	// KeepMACs keeps at most this fraction of the model's MACs (0: none).
	KeepMACs float64
	// Fits, when set, checks a candidate architecture (no weights) against
	// a board budget; reduction stops at the first that fits.
	Fits func(arch *infer.Model) FitVerdict
	// Threads for the float passes (0: every CPU).
	Threads int
	// MaxPositions per tensor and image used for statistics (0: 4096).
	MaxPositions int
	// Progress, when set, is told what is being fitted.
	Progress func(msg string)
}

// FitVerdict is a board check's answer for a candidate architecture.
type FitVerdict struct {
	Fits, MemoryFits bool
	// Why says why it does not fit.
	Why string
}

// ReducedLayer is one reduction in the result.
type ReducedLayer struct {
	// Name is the reduced convolution, or the layer the classifier
	// reduction follows.
	Name       string
	Classifier bool
	From, Rank int // channels before and kept
	// MACsBefore and MACsAfter are the layer's MACs (for the classifier
	// reduction: the first Linear's, and after, the 1x1's plus the
	// re-projected Linear's).
	MACsBefore, MACsAfter int64
	// Energy is the fraction of the original responses' variance that the
	// leading Rank principal components hold (what ranks were chosen by).
	Energy float64
	// RelErr is the relative squared error of the fitted reconstruction on
	// the calibration images, fed by the reduced network.
	RelErr float64
}

// ReduceReport says what Reduce kept.
type ReduceReport struct {
	MACsBefore, MACsAfter     int64
	ParamsBefore, ParamsAfter int64
	Images                    int
	Layers                    []ReducedLayer
}

// candidate is a layer that can be reduced.
type candidate struct {
	layer      int // index in the folded model
	classifier bool
	from       int   // Cout (conv) or C (classifier)
	maxRank    int   // the largest rank that saves MACs
	full       int64 // MACs unreduced
	perRank    int64 // MACs per kept channel
	fixed      int64 // MACs independent of the rank
	energy     []float64
}

// macs is the candidate's cost at rank r (0: unreduced).
func (c *candidate) macs(r int) int64 {
	if r == 0 {
		return c.full
	}
	return c.fixed + int64(r)*c.perRank
}

// Reduce returns m with 1x1 channel-reduction layers fitted on images
// (normalised CHW inputs, as ForwardFloat takes them). m must carry
// weights; BatchNorm is folded first.
func Reduce(m *infer.Model, images [][]float32, opt ReduceOptions) (*infer.Model, *ReduceReport, error) {
	if !m.HasWeights() {
		return nil, nil, errors.New("model has no weights to reduce (give a float model)")
	}
	if opt.Rank == 0 && opt.KeepMACs == 0 && opt.Fits == nil {
		return nil, nil, errors.New("nothing asked: give a rank, a MAC budget or a board budget")
	}
	if opt.KeepMACs < 0 || opt.KeepMACs > 1 || math.IsNaN(opt.KeepMACs) {
		return nil, nil, fmt.Errorf("keep-macs %g: want a fraction in (0, 1]", opt.KeepMACs)
	}
	if opt.Rank < 0 {
		return nil, nil, fmt.Errorf("rank %d: must be positive", opt.Rank)
	}
	if len(images) == 0 {
		return nil, nil, errors.New("no calibration images")
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.NumCPU()
	}
	if opt.MaxPositions <= 0 {
		opt.MaxPositions = 4096
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(string) {}
	}
	f, err := infer.FoldBatchNorm(m)
	if err != nil {
		return nil, nil, err
	}
	shapes, err := f.Resolve()
	if err != nil {
		return nil, nil, err
	}
	for i, x := range images {
		if int64(len(x)) != f.Input.Elems() {
			return nil, nil, fmt.Errorf("calibration image %d has %d values, want %v", i, len(x), f.Input)
		}
	}
	cands, cls := candidates(f, shapes)
	if opt.Rank > 0 {
		if cls == nil {
			return nil, nil, errors.New("rank: the model has no features section followed by a Linear classifier (through pooling, flatten and dropout only) to reduce before")
		}
		if opt.Rank >= cls.from {
			return nil, nil, fmt.Errorf("rank %d: the last feature map has %d channels; a reduction must keep fewer", opt.Rank, cls.from)
		}
	}
	cost0, err := f.Cost(infer.FP32)
	if err != nil {
		return nil, nil, err
	}
	ranks := make([]int, len(f.Layers)) // 0: unreduced
	byLayer := map[int]*candidate{}
	for _, c := range cands {
		byLayer[c.layer] = c
	}
	if opt.Rank > 0 {
		ranks[cls.layer] = opt.Rank
	}

	if opt.KeepMACs > 0 || opt.Fits != nil {
		progress("measuring the responses of every layer")
		if err := measureSpectra(f, images, cands, opt); err != nil {
			return nil, nil, err
		}
		if ranks, err = chooseRanks(f, shapes, cands, ranks, cost0.MACs, opt); err != nil {
			return nil, nil, err
		}
	}

	out, rep, err := fitReduction(f, shapes, images, ranks, byLayer, opt, progress)
	if err != nil {
		return nil, nil, err
	}
	c1, err := out.Cost(infer.FP32)
	if err != nil {
		return nil, nil, fmt.Errorf("reduced model: %w", err)
	}
	rep.MACsBefore, rep.MACsAfter = cost0.MACs, c1.MACs
	rep.ParamsBefore, rep.ParamsAfter = cost0.Params, c1.Params
	rep.Images = len(images)
	return out, rep, nil
}

// candidates lists the reducible layers of the folded model: every
// convolution whose low-rank form can save MACs, and the classifier's
// input (returned also as cls) when the last feature layer reaches the
// first Linear through pooling, flatten and dropout only.
func candidates(f *infer.Model, shapes []infer.Shape) (cands []*candidate, cls *candidate) {
	in := f.Input
	for i := range f.Layers {
		l := &f.Layers[i]
		if l.Kind == infer.Conv2d && l.Role == "" {
			out := shapes[i]
			P := int64(out.H) * int64(out.W)
			taps := int64(in.C) * int64(l.KH) * int64(l.KW)
			c := &candidate{layer: i, from: l.Out, full: taps * int64(l.Out) * P, perRank: (taps + int64(l.Out)) * P}
			for r := 1; r < l.Out && c.macs(r) < c.full; r++ {
				c.maxRank = r
			}
			if c.maxRank > 0 {
				cands = append(cands, c)
			}
		}
		in = shapes[i]
	}
	at := classifierAt(f)
	if at <= 0 {
		return cands, nil
	}
	j := at
	for j < len(f.Layers) && f.Layers[j].Kind != infer.Linear {
		switch f.Layers[j].Kind {
		case infer.AdaptiveAvgPool2d, infer.Flatten, infer.Dropout:
		default:
			return cands, nil
		}
		j++
	}
	if j == len(f.Layers) {
		return cands, nil
	}
	feat := shapes[at-1]
	lin := &f.Layers[j]
	S := int64(lin.In) / int64(feat.C)
	hw := int64(feat.H) * int64(feat.W)
	cls = &candidate{layer: at, classifier: true, from: feat.C,
		full: int64(lin.In) * int64(lin.Out), perRank: int64(feat.C)*hw + S*int64(lin.Out)}
	for r := 1; r < feat.C && cls.macs(r) < cls.full; r++ {
		cls.maxRank = r
	}
	if cls.maxRank == 0 {
		cls.maxRank = feat.C - 1 // memory may still call for it (--rank, --fit)
	}
	return append(cands, cls), cls
}

// classifierAt is the index after the last "features." layer (where the
// classifier reduction goes), or -1.
func classifierAt(f *infer.Model) int {
	at := -1
	for i := range f.Layers {
		if strings.HasPrefix(f.Layers[i].Name, "features.") {
			at = i + 1
		}
	}
	if at == len(f.Layers) {
		return -1
	}
	return at
}

// measureSpectra runs the original model on the images and records, for
// every candidate, the eigenvalues of its responses' covariance (a
// convolution's output before ReLU; the last feature map for the
// classifier) as cumulative energy fractions.
func measureSpectra(f *infer.Model, images [][]float32, cands []*candidate, opt ReduceOptions) error {
	stats := make([]*covStats, len(cands))
	for k, c := range cands {
		stats[k] = newCovStats(c.from, 0, true, opt.MaxPositions)
	}
	shapes, _ := f.Resolve()
	for i, x := range images {
		_, acts, err := f.ForwardFastTrace(x, opt.Threads)
		if err != nil {
			return fmt.Errorf("calibration image %d: %w", i, err)
		}
		for k, c := range cands {
			li := c.layer
			if c.classifier {
				li = c.layer - 1
			}
			s := shapes[li]
			stats[k].add(acts[li], nil, s.H*s.W, opt.Threads)
		}
	}
	for k, c := range cands {
		vals := stats[k].spectrum()
		var total float64
		for _, v := range vals {
			total += v
		}
		c.energy = make([]float64, len(vals)+1)
		var cum float64
		for r, v := range vals {
			cum += v
			if total > 0 {
				c.energy[r+1] = cum / total
			} else {
				c.energy[r+1] = 1
			}
		}
		c.energy[0] = 0
	}
	return nil
}

// logEnergy is the log of the energy kept at rank r (0: unreduced, all of
// it).
func (c *candidate) logEnergy(r int) float64 {
	if r == 0 {
		return 0
	}
	return math.Log(max(c.energy[r], 1e-300))
}

// chooseRanks walks Zhang et al.'s greedy path from the unreduced model
// (ranks already fixed stay) and returns the first state that meets the
// budget.
func chooseRanks(f *infer.Model, shapes []infer.Shape, cands []*candidate, fixed []int, macs0 int64, opt ReduceOptions) ([]int, error) {
	ranks := append([]int(nil), fixed...)
	free := []*candidate{}
	for _, c := range cands {
		if fixed[c.layer] == 0 {
			free = append(free, c)
		}
	}
	total := macs0
	for _, c := range cands {
		total += c.macs(ranks[c.layer]) - c.full
	}
	archFits := func(rs []int) FitVerdict {
		a, err := reducedArch(f, rs)
		if err != nil {
			return FitVerdict{Why: err.Error()}
		}
		return opt.Fits(a)
	}
	// --fit: memory first. The classifier's weights are where the memory
	// is (VGG16: 103 M of 138 M parameters), so when the model does not
	// fit as it is, take the widest classifier reduction that does, if
	// one does; the rest of the budget is then spent by the greedy path.
	if opt.Fits != nil {
		if v := archFits(ranks); v.Fits && opt.KeepMACs == 0 {
			return ranks, nil
		}
		var cls *candidate
		for _, c := range free {
			if c.classifier {
				cls = c
			}
		}
		if cls != nil {
			try := func(r int) bool {
				rs := append([]int(nil), ranks...)
				rs[cls.layer] = r
				return archFits(rs).MemoryFits
			}
			if !archFits(ranks).MemoryFits && try(1) {
				lo, hi := 1, cls.from-1
				for lo < hi {
					if mid := (lo + hi + 1) / 2; try(mid) {
						lo = mid
					} else {
						hi = mid - 1
					}
				}
				ranks[cls.layer] = lo
				total += cls.macs(lo) - cls.full
				free = without(free, cls)
			}
		}
	}
	meets := func() (bool, string) {
		if opt.KeepMACs > 0 && float64(total) > opt.KeepMACs*float64(macs0) {
			return false, fmt.Sprintf("%d MACs is more than %.4g of %d", total, opt.KeepMACs, macs0)
		}
		if opt.Fits != nil {
			v := archFits(ranks)
			return v.Fits, v.Why
		}
		return true, ""
	}
	for {
		ok, why := meets()
		if ok {
			return ranks, nil
		}
		// The move with the least energy lost per MAC saved.
		var best *candidate
		bestR, bestRatio := 0, math.Inf(1)
		for _, c := range free {
			cur := ranks[c.layer]
			top := c.maxRank
			if cur > 0 {
				top = cur - 1
			}
			for r := top; r >= 1; r-- {
				saved := c.macs(cur) - c.macs(r)
				if saved <= 0 {
					continue
				}
				ratio := (c.logEnergy(cur) - c.logEnergy(r)) / float64(saved)
				if ratio < bestRatio {
					best, bestR, bestRatio = c, r, ratio
				}
			}
		}
		if best == nil {
			return nil, fmt.Errorf("cannot meet the budget even with every reducible layer at rank 1: %s", why)
		}
		total += best.macs(bestR) - best.macs(ranks[best.layer])
		ranks[best.layer] = bestR
	}
}

func without(cs []*candidate, c *candidate) []*candidate {
	var out []*candidate
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// reducedArch is the architecture (no weights) of the folded model f with
// the given ranks: the layer structure fitReduction builds.
func reducedArch(f *infer.Model, ranks []int) (*infer.Model, error) {
	a := f.Architecture()
	layers, err := reducedLayers(a, ranks)
	if err != nil {
		return nil, err
	}
	a.Layers = layers
	if _, err := a.Resolve(); err != nil {
		return nil, err
	}
	return a, nil
}

// reducedLayers lays out the reduced model's layers from f's (weights are
// filled in by fitReduction): a reduced convolution i becomes "name.0"
// (low-rank, rank[i] filters) and "name.1" (1x1 restore); a rank at the
// classifier point inserts a 1x1 "features.N" before it and lets the
// following layers re-learn their input size.
func reducedLayers(f *infer.Model, ranks []int) ([]infer.Layer, error) {
	var out []infer.Layer
	at := classifierAt(f)
	nFeat := 0
	for i := range f.Layers {
		if strings.HasPrefix(f.Layers[i].Name, "features.") {
			nFeat++
		}
	}
	relearn := false
	for i := range f.Layers {
		l := f.Layers[i]
		if i == at && ranks[i] > 0 {
			out = append(out, infer.Layer{Name: fmt.Sprintf("features.%d", nFeat), Kind: infer.Conv2d, Out: ranks[i],
				KH: 1, KW: 1, Stride: 1, Bias: true, Role: infer.RoleReduce})
			relearn = true
		}
		if relearn && (l.Kind == infer.Linear || l.Kind == infer.Conv2d) {
			l.In = 0
			relearn = l.Kind != infer.Linear
		}
		if l.Kind == infer.Conv2d && ranks[i] > 0 && i != at {
			lo := l
			lo.Name, lo.Out, lo.Bias, lo.Role = l.Name+".0", ranks[i], true, infer.RoleLowRank
			lo.Weight, lo.BiasData = nil, nil
			re := infer.Layer{Name: l.Name + ".1", Kind: infer.Conv2d, In: ranks[i], Out: l.Out, KH: 1, KW: 1, Stride: 1,
				Bias: true, Role: infer.RoleRestore}
			out = append(out, lo, re)
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// runLayer applies one layer to a CHW tensor of shape in.
func runLayer(l infer.Layer, in infer.Shape, x []float32, threads int) ([]float32, infer.Shape, error) {
	l.In = 0
	one := &infer.Model{Input: in, Layers: []infer.Layer{l}}
	shapes, err := one.Resolve()
	if err != nil {
		return nil, infer.Shape{}, fmt.Errorf("layer %s: %w", l.Name, err)
	}
	y, err := one.ForwardFast(x, threads)
	return y, shapes[0], err
}

// fitReduction builds the reduced model layer by layer, fitting each
// reduction on the reduced network's own activations (red) against the
// original network's (orig).
func fitReduction(f *infer.Model, shapes []infer.Shape, images [][]float32, ranks []int, byLayer map[int]*candidate,
	opt ReduceOptions, progress func(string)) (*infer.Model, *ReduceReport, error) {
	layout, err := reducedLayers(f, ranks)
	if err != nil {
		return nil, nil, err
	}
	out := f.Clone()
	out.Layers = nil
	rep := &ReduceReport{}
	last := -1 // the last layer index with a reduction: activations are needed up to it
	for i, r := range ranks {
		if r > 0 {
			last = i
		}
	}
	at := classifierAt(f)
	orig := make([][]float32, len(images))
	red := make([][]float32, len(images))
	for k, x := range images {
		orig[k], red[k] = x, x
	}
	in := f.Input
	next := 0 // index into layout
	take := func() infer.Layer { l := layout[next]; next++; return l }
	for i := 0; i < len(f.Layers); i++ {
		l := f.Layers[i]
		if i == at && ranks[i] > 0 {
			lin, err := fitClassifier(f, i, in, orig, red, ranks[i], layout[next:], opt, progress, rep, byLayer[i])
			if err != nil {
				return nil, nil, err
			}
			out.Layers = append(out.Layers, lin...)
			break
		}
		if l.Kind == infer.Conv2d && ranks[i] > 0 {
			lo, re := take(), take()
			progress(fmt.Sprintf("fitting %s: %d → %d channels", l.Name, l.Out, ranks[i]))
			if err := fitConv(&l, in, shapes[i], orig, red, &lo, &re, opt, rep, byLayer[i]); err != nil {
				return nil, nil, fmt.Errorf("layer %s: %w", l.Name, err)
			}
			out.Layers = append(out.Layers, lo, re)
		} else {
			out.Layers = append(out.Layers, take())
			if i < last {
				for k := range images {
					same := sameTensor(orig[k], red[k]) // no reduction yet: one pass serves both
					if orig[k], _, err = runLayer(l, in, orig[k], opt.Threads); err != nil {
						return nil, nil, err
					}
					if same {
						red[k] = orig[k]
					} else if red[k], _, err = runLayer(l, in, red[k], opt.Threads); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		in = shapes[i]
	}
	if _, err := out.Resolve(); err != nil {
		return nil, nil, fmt.Errorf("reduced model: %w", err)
	}
	return out, rep, nil
}

// fitConv fits conv l (input shape in, output shape outS) as lo (Cin→r)
// then re (1x1 r→Cout), and advances orig and red past it.
func fitConv(l *infer.Layer, in, outS infer.Shape, orig, red [][]float32, lo, re *infer.Layer, opt ReduceOptions,
	rep *ReduceReport, c *candidate) error {
	cout, r := l.Out, lo.Out
	P := outS.H * outS.W
	st := newCovStats(cout, cout, false, opt.MaxPositions)
	redIn := append([][]float32(nil), red...)
	for k := range orig {
		y, _, err := runLayer(*l, in, orig[k], opt.Threads)
		if err != nil {
			return err
		}
		yh := y
		if !sameTensor(orig[k], redIn[k]) {
			if yh, _, err = runLayer(*l, in, redIn[k], opt.Threads); err != nil {
				return err
			}
		}
		st.add(y, yh, P, opt.Threads)
		orig[k] = y
	}
	meanX, meanY, cxx, cyx, trYY := st.centered()
	Pm, PtZ, relErr, err := reducedRankFit(cxx, cyx, trYY, cout, cout, r)
	if err != nil {
		return err
	}
	// Low-rank conv: W' = PᵀZ·W, b' = PᵀZ·(b − mean(ŷ)).
	taps := len(l.Weight) / cout
	w := make([]float32, r*taps)
	b := make([]float32, r)
	for k := 0; k < r; k++ {
		acc := make([]float64, taps)
		var bias float64
		for o := 0; o < cout; o++ {
			z := PtZ[k*cout+o]
			if z == 0 {
				continue
			}
			bo := -meanX[o]
			if l.Bias {
				bo += float64(l.BiasData[o])
			}
			bias += z * bo
			for t, v := range l.Weight[o*taps : (o+1)*taps] {
				acc[t] += z * float64(v)
			}
		}
		for t, v := range acc {
			w[k*taps+t] = float32(v)
		}
		b[k] = float32(bias)
	}
	lo.Weight, lo.BiasData = w, b
	// Restore: y = P·z + mean(y).
	rw := make([]float32, cout*r)
	rb := make([]float32, cout)
	for o := 0; o < cout; o++ {
		for k := 0; k < r; k++ {
			rw[o*r+k] = float32(Pm[o*r+k])
		}
		rb[o] = float32(meanY[o])
	}
	re.Weight, re.BiasData = rw, rb
	// The reduced network's activations continue through the new layers.
	for k := range red {
		z, zs, err := runLayer(*lo, in, redIn[k], opt.Threads)
		if err != nil {
			return err
		}
		if red[k], _, err = runLayer(*re, zs, z, opt.Threads); err != nil {
			return err
		}
	}
	rep.Layers = append(rep.Layers, ReducedLayer{Name: l.Name, From: cout, Rank: r, MACsBefore: c.full, MACsAfter: c.macs(r),
		Energy: c.energyAt(r), RelErr: relErr})
	return nil
}

func (c *candidate) energyAt(r int) float64 {
	if c == nil || c.energy == nil || r >= len(c.energy) {
		return math.NaN()
	}
	return c.energy[r]
}

// fitClassifier fits the 1x1 reduction (rest[0]) on the last feature map
// (shape in; orig and red hold it) and re-projects the first Linear after
// it. rest is the reduced layout from the reduction on; it returns those
// layers with their weights.
func fitClassifier(f *infer.Model, at int, in infer.Shape, orig, red [][]float32, r int, rest []infer.Layer,
	opt ReduceOptions, progress func(string), rep *ReduceReport, c *candidate) ([]infer.Layer, error) {
	C := in.C
	progress(fmt.Sprintf("fitting the 1x1 reduction before the classifier: %d → %d channels", C, r))
	st := newCovStats(C, C, false, opt.MaxPositions)
	for k := range orig {
		st.add(orig[k], red[k], in.H*in.W, opt.Threads)
	}
	meanX, meanY, cxx, cyx, trYY := st.centered()
	Pm, PtZ, relErr, err := reducedRankFit(cxx, cyx, trYY, C, C, r)
	if err != nil {
		return nil, fmt.Errorf("classifier reduction: %w", err)
	}
	layers := append([]infer.Layer(nil), rest...)
	red1 := &layers[0]
	red1.Weight = make([]float32, r*C)
	red1.BiasData = make([]float32, r)
	for k := 0; k < r; k++ {
		var bias float64
		for ch := 0; ch < C; ch++ {
			z := PtZ[k*C+ch]
			red1.Weight[k*C+ch] = float32(z)
			bias -= z * meanX[ch]
		}
		red1.BiasData[k] = float32(bias)
	}
	j := 1
	for j < len(layers) && layers[j].Kind != infer.Linear {
		j++
	}
	if j == len(layers) {
		return nil, errors.New("classifier reduction: no Linear after the features")
	}
	lin := &layers[j]
	orig0 := &f.Layers[at+j-1]
	S := len(orig0.Weight) / orig0.Out / C
	// Re-project the first Linear through P: row o's C×S weights W_o
	// become Pᵀ·W_o (r×S), one float32 GEMM per row (kernels.GemmFloat,
	// Pᵀ packed once); the weights are float32 and |P| ≤ 1, so float32
	// sums over C terms stay far inside the fit's own error. The bias
	// absorbs the centering: b + Σ_ch ȳ[ch]·Σ_s W_o[ch, s], in float64.
	w := make([]float32, lin.Out*r*S)
	b := make([]float32, lin.Out)
	pt := make([]float32, C*r)
	for i, v := range Pm {
		pt[i] = float32(v)
	}
	var pa kernels.PackedA[float32]
	pa.PackA(r, C, kernels.Matrix[float32]{Data: pt, Stride: r, Trans: true}, opt.Threads)
	threads := max(1, min(opt.Threads, lin.Out))
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf kernels.GemmBuffers[float32]
			for o := t; o < lin.Out; o += threads {
				row := orig0.Weight[o*C*S : (o+1)*C*S]
				var bias float64
				if orig0.Bias {
					bias = float64(orig0.BiasData[o])
				}
				for ch := 0; ch < C; ch++ {
					var sum float64
					for _, v := range row[ch*S : (ch+1)*S] {
						sum += float64(v)
					}
					bias += meanY[ch] * sum
				}
				b[o] = float32(bias)
				kernels.GemmFloatPacked(&pa, S, kernels.Matrix[float32]{Data: row, Stride: S}, w[o*r*S:(o+1)*r*S], S, false, &buf)
			}
		}()
	}
	wg.Wait()
	lin.Weight, lin.BiasData, lin.Bias, lin.In = w, b, true, 0
	e := ReducedLayer{Name: f.Layers[at-1].Name, Classifier: true, From: C, Rank: r, RelErr: relErr, Energy: math.NaN()}
	if c != nil {
		e.MACsBefore, e.MACsAfter, e.Energy = c.full, c.macs(r), c.energyAt(r)
	}
	rep.Layers = append(rep.Layers, e)
	return layers, nil
}

// sameTensor reports whether a and b are the same slice (the reduced
// network's activation is still the original's).
func sameTensor(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
