package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"

	"github.com/vggedge/vggedge/infer"
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
