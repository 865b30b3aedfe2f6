package quant

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Method is how an activation range is chosen from calibration data.
type Method string

// Calibration methods.
const (
	// MinMax takes the observed range: no clipping, coarse steps when a
	// few outliers are large.
	MinMax Method = "minmax"
	// Percentile clips at a percentile of |x| (default 99.99).
	Percentile Method = "percentile"
	// Entropy clips where the KL divergence between the float histogram
	// and its int8 quantization is smallest (TensorRT's and ncnn's
	// calibrator).
	Entropy Method = "entropy"
)

// ParseMethod accepts minmax, percentile or entropy.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MinMax, Percentile, Entropy:
		return m, nil
	}
	return "", fmt.Errorf("unknown calibration method %q (want minmax, percentile or entropy)", s)
}

// histBins is the resolution of the |x| histograms (TensorRT uses 2048).
const histBins = 2048

// Observer accumulates the statistics of one activation tensor over the
// calibration images: min, max and a histogram of |x| whose range doubles
// (merging bin pairs) when a larger value arrives, so one pass suffices.
type Observer struct {
	Min, Max float64
	n        int64
	zeros    int64   // exact zeros (most ReLU outputs), kept out of hist
	width    float64 // bin width; the histogram covers [0, width·histBins)
	hist     [histBins]int64
}

// NewObserver returns an empty observer.
func NewObserver() *Observer { return &Observer{Min: math.Inf(1), Max: math.Inf(-1)} }

// Add records values. NaN and ±Inf are rejected: they mean the float model
// itself is broken.
func (o *Observer) Add(xs []float32) error {
	for _, x := range xs {
		v := float64(x)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("activation is NaN or infinite: the float model or its input is broken")
		}
		o.Min, o.Max = min(o.Min, v), max(o.Max, v)
		a := math.Abs(v)
		o.n++
		if a == 0 {
			o.zeros++
			continue
		}
		if o.width == 0 {
			// Start with a range 2x the first non-zero value.
			o.width = 2 * a / histBins
		}
		for a >= o.width*histBins {
			o.grow()
		}
		o.hist[int(a/o.width)]++
	}
	return nil
}

// grow doubles the histogram's range, merging adjacent bins.
func (o *Observer) grow() {
	for i := 0; i < histBins/2; i++ {
		o.hist[i] = o.hist[2*i] + o.hist[2*i+1]
	}
	clear(o.hist[histBins/2:])
	o.width *= 2
}

// Threshold is the clipping point for |x| chosen by method.
func (o *Observer) Threshold(m Method, percentile float64) float64 {
	absMax := max(math.Abs(o.Min), math.Abs(o.Max))
	if o.n == 0 || o.width == 0 || absMax == 0 {
		return absMax
	}
	switch m {
	case Percentile:
		want := int64(math.Ceil(float64(o.n) * percentile / 100))
		seen := o.zeros
		for i, c := range o.hist {
			seen += c
			if seen >= want {
				return min(float64(i+1)*o.width, absMax)
			}
		}
		return absMax
	case Entropy:
		return min(o.entropyThreshold(), absMax)
	}
	return absMax
}

// entropyThreshold follows TensorRT's entropy calibration (Migacz, "8-bit
// Inference with TensorRT", GTC 2017): for each candidate threshold of i
// bins, P is the histogram clipped at i (outliers added to the last bin), Q
// is P quantized to `levels` groups and spread back over the non-zero bins;
// the threshold minimises KL(P‖Q).
//
// Two choices differ from a literal reading: the histogram holds only the
// non-zero values — ReLU's exact zeros are represented exactly whatever the
// threshold, and their mass would otherwise drown the divergence (with them,
// int8 logits of the test nets fell to cosine 0.94) — and a non-negative
// tensor is searched with 256 levels, since it is quantized with all 256
// int8 steps over [0, T]; a signed one with 128 a side. A third guards
// against spiky histograms: candidates start at the 99.9th percentile.
func (o *Observer) entropyThreshold() float64 {
	levels := 128
	if o.Min >= 0 {
		levels = 256
	}
	last := histBins
	for last > 0 && o.hist[last-1] == 0 {
		last--
	}
	if last <= levels {
		return float64(last) * o.width
	}
	// Never clip more than 0.1% of the values: a histogram dominated by
	// one spike (a first convolution over a uniform background, as in
	// MNIST) otherwise has its smallest divergence just past the spike,
	// and clipping everything else cost 7 points of top-1 on the digits
	// model calibrated on 300 images.
	var total, seen int64
	for _, c := range o.hist[:last] {
		total += c
	}
	start := levels
	for j, c := range o.hist[:last] {
		seen += c
		if float64(seen) >= 0.999*float64(total) {
			start = max(start, j+1)
			break
		}
	}
	best, bestKL := last, math.Inf(1)
	p := make([]float64, histBins)
	q := make([]float64, histBins)
	for i := start; i <= last; i++ {
		var outliers int64
		for _, c := range o.hist[i:] {
			outliers += c
		}
		for j := 0; j < i; j++ {
			p[j] = float64(o.hist[j])
		}
		p[i-1] += float64(outliers)
		// Quantize hist[0:i] into `levels` groups, spread each group's
		// total over its non-zero bins.
		for g := 0; g < levels; g++ {
			start := g * i / levels
			end := (g + 1) * i / levels
			var sum float64
			nonzero := 0
			for j := start; j < end; j++ {
				sum += float64(o.hist[j])
				if o.hist[j] != 0 {
					nonzero++
				}
			}
			for j := start; j < end; j++ {
				q[j] = 0
				if o.hist[j] != 0 {
					q[j] = sum / float64(nonzero)
				}
			}
		}
		if kl := klDivergence(p[:i], q[:i]); kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return (float64(best) + 0.5) * o.width
}

// klDivergence of normalised p and q; bins where p is 0 contribute 0, bins
// where only q is 0 are smoothed as TensorRT does.
func klDivergence(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	var kl float64
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi := p[i] / sp
		qi := q[i] / sq
		if qi == 0 {
			qi = 1e-12
		}
		kl += pi * math.Log(pi/qi)
	}
	return kl
}

// Range is the float range an int8 activation tensor must cover.
type Range struct{ Lo, Hi float64 }

// Range returns the range to quantize for: [0, T] for non-negative tensors
// (after ReLU), the observed range clipped to ±T otherwise; it always
// contains 0, so real zero is exactly representable.
func (o *Observer) Range(m Method, percentile float64) Range {
	t := o.Threshold(m, percentile)
	lo, hi := max(o.Min, -t), min(o.Max, t)
	return Range{Lo: min(lo, 0), Hi: max(hi, 0)}
}

// ObservedLayers says which layer outputs of a model are quantized tensors
// that need a range (the output of each convolution or Linear after its
// fused ReLU); see Quantize.
func observedLayers(groups []group) []int {
	var idx []int
	for _, g := range groups {
		if g.op >= 0 {
			idx = append(idx, g.last)
		}
	}
	return slices.Compact(idx)
}
