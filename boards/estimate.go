package boards

import (
	"github.com/vggedge/vggedge/infer"
)

// Error bands of a latency estimate, as a fraction of TotalMs.
const (
	// UncalibratedErrorBand applies to profiles seeded from published
	// whole-network figures (every built-in profile today). A MACs ÷
	// throughput estimate is exact only for the network it was seeded
	// from; other layer mixes inherit the judgement in the conv1x1/linear
	// ratios and the bandwidth estimates.
	UncalibratedErrorBand = 0.25
	// CalibratedErrorBand applies once a board's throughputs are fitted to
	// vggedge's own per-layer benchmarks (Board.Calibrated); per-kernel
	// predictors such as nn-Meter reach ±10% on mobile CPUs.
	CalibratedErrorBand = 0.10

	// UncalibratedNote is a sentence for the CLI to print with an
	// uncalibrated estimate.
	UncalibratedNote = "uncalibrated estimate from published ncnn figures: expect ±25% on VGG-like models, worse on others"
)

// Values of LayerEstimate.Bound.
const (
	BoundCompute = "compute" // MACs ÷ throughput took longer than the bytes
	BoundMemory  = "memory"  // bytes ÷ bandwidth took longer (or the layer has no MACs)
	BoundFused   = "fused"   // in-place layer folded into its producer: 0 ms
)

// LayerEstimate is one layer's share of an estimate.
type LayerEstimate struct {
	Name  string
	Op    string  // infer.LayerCost.Op
	Ms    float64 // estimated milliseconds
	Bound string  // BoundCompute, BoundMemory or BoundFused
}

// Estimate is a whole-model latency estimate on one board, all cores.
type Estimate struct {
	// Layers parallels infer.Cost.Layers, one entry per layer.
	Layers  []LayerEstimate
	TotalMs float64
	// ErrorBand is the expected relative error of TotalMs, e.g. 0.25 for
	// ±25%.
	ErrorBand  float64
	Calibrated bool
}

// Throughput returns the board's rates at precision p: FP32 for infer.FP32,
// Int8 for anything else (int8 is what vggedge runs by default).
func (b *Board) Throughput(p infer.Precision) Throughput {
	if p == infer.FP32 {
		return b.FP32
	}
	return b.Int8
}

// Rate returns the throughput, GMAC/s, for a kind of work
// (infer.LayerCost.Op). "pool" and "none" have no MACs: 0. An Op this
// package does not know gets the generic convolution rate, the most
// conservative of the MAC-carrying ones.
func (t Throughput) Rate(op string) float64 {
	switch op {
	case "conv3x3":
		return t.Conv3x3
	case "conv1x1":
		return t.Conv1x1
	case "linear":
		return t.Linear
	case "pool", "none":
		return 0
	}
	return t.Conv
}

// EstimateLatency estimates how long one inference of the costed model takes
// on b with all cores, at c.Precision. Each layer takes
//
//	max(MACs ÷ (rate for its Op · 1e9), (InputBytes + OutputBytes) ÷ bandwidth)
//
// seconds: the slower of computing and streaming its data, which assumes
// the two overlap. "pool" layers, and "none" layers that write an output,
// are costed by bytes alone. "none" layers that work in place (ReLU,
// BatchNorm2d, Dropout, Flatten: OutputBytes 0) cost 0 ms, because vggedge
// fuses them into the layer before (ReLU into the requantize step, BatchNorm
// folded into the weights, Dropout and Flatten do nothing at inference).
// A rate or bandwidth of 0 drops that term rather than dividing by it.
//
// ErrorBand is UncalibratedErrorBand unless b.Calibrated. Nil arguments give
// an empty estimate.
func EstimateLatency(c *infer.Cost, b *Board) Estimate {
	e := Estimate{ErrorBand: UncalibratedErrorBand}
	if b == nil {
		return e
	}
	if b.Calibrated {
		e.ErrorBand, e.Calibrated = CalibratedErrorBand, true
	}
	if c == nil {
		return e
	}
	t := b.Throughput(c.Precision)
	e.Layers = make([]LayerEstimate, len(c.Layers))
	for i := range c.Layers {
		l := &c.Layers[i]
		le := LayerEstimate{Name: l.Name, Op: l.Op, Bound: BoundMemory}
		if l.Op == "none" && l.OutputBytes == 0 {
			le.Bound = BoundFused
			e.Layers[i] = le
			continue
		}
		var memS, compS float64
		if bytes := max(0, l.InputBytes) + max(0, l.OutputBytes); b.BandwidthBytesPerSec > 0 {
			memS = float64(bytes) / b.BandwidthBytesPerSec
		}
		if rate := t.Rate(l.Op); rate > 0 && l.MACs > 0 {
			compS = float64(l.MACs) / (rate * 1e9)
		}
		if compS > memS {
			le.Bound = BoundCompute
		}
		le.Ms = max(compS, memS) * 1e3
		e.TotalMs += le.Ms
		e.Layers[i] = le
	}
	return e
}
