package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/vggedge/vggedge/infer/kernels"
)

// RandomQModel returns a valid int8 model of m's architecture with random
// weights, deterministic for a seed: for benchmarks (as ncnn's benchncnn
// runs zero weights) and tests. m's weights, if any, are ignored and m is
// not modified.
//
// BatchNorm2d and Dropout are dropped, a ReLU is fused into the
// convolution or Linear before it, the first layer reads u8 pixels (InScale
// 1, InZero −128, PadValue 0, the pixel 128), and the last layer, when it
// is a convolution or Linear without ReLU, writes logits.
//
// Scales are chosen so activations neither vanish nor saturate: each
// tensor's distribution is tracked as a sample of int8 values, each
// accumulator is modelled as a Gaussian of the variance its random weights
// give (taps·Var(w)·Var(x)), the bias cancels the input's mean, and the
// output scale puts one standard deviation of the accumulator at 64 q
// steps after a ReLU (zero point −128) or 32 without (zero point 0).
func RandomQModel(m *Model, seed uint64) (*QModel, error) {
	if m == nil {
		return nil, errors.New("random int8 model: nil model")
	}
	r := m.Clone()
	shapes, err := r.Resolve()
	if err != nil {
		return nil, fmt.Errorf("random int8 model %q: %w", m.Name, err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x76676765646765)) // "vggedge"
	q := &QModel{Name: m.Name, Input: m.Input, Meta: m.Meta}
	q.Meta.Labels = slices.Clone(m.Meta.Labels)
	q.Meta.Prov.Notes = fmt.Sprintf("random int8 weights, seed %d", seed)

	// The input: uniform u8 pixels, q = pixel − 128.
	dist := make([]int32, rqSamples)
	for i := range dist {
		dist[i] = int32(rng.IntN(256)) - 128
	}
	inScale, inZero := float32(1), int32(-128)
	in := m.Input
	fused := false // a ReLU ahead is fused into the last convolution or Linear
	for i := range r.Layers {
		l := &r.Layers[i]
		out := shapes[i]
		ql := QLayer{Name: l.Name, Kind: l.Kind, In: l.In, Out: l.Out, KH: l.KH, KW: l.KW, Stride: l.Stride,
			Pad: l.Pad, OutH: l.OutH, OutW: l.OutW, InScale: inScale, InZero: inZero, OutScale: inScale, OutZero: inZero}
		switch l.Kind {
		case BatchNorm2d, Dropout:
			in = out
			continue
		case ReLU:
			if fused {
				// Fused into the layer before, whose output range is
				// already a ReLU's.
				fused = false
				in = out
				continue
			}
			for j, v := range dist {
				dist[j] = max(v, inZero)
			}
		case Conv2d, Linear:
			relu := rqReLUFollows(r.Layers, i)
			fused = relu
			last := rqLastOp(r.Layers, i) && !relu
			dist = rqWeights(&ql, in, dist, relu, last, i == 0, rng)
		case MaxPool2d:
			dist = rqMaxPoolDist(dist, l.KH*l.KH, rng)
		case AdaptiveAvgPool2d:
			// Averaging keeps the mean and cannot widen the spread; how
			// much it narrows it depends on how alike neighbours are, so
			// keep the input's distribution (an upper bound: no clipping).
		case Flatten:
		default:
			return nil, fmt.Errorf("random int8 model %q: layer %d %s: no int8 kind for %s", m.Name, i, l.Name, l.Kind)
		}
		q.Layers = append(q.Layers, ql)
		inScale, inZero = ql.OutScale, ql.OutZero
		in = out
	}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("random int8 model %q: %w", m.Name, err)
	}
	return q, nil
}

const (
	rqSamples = 4096
	// The accumulator's standard deviation in output q steps: about 4σ
	// of headroom (255/64 after a ReLU, 127/32 without), as percentile
	// calibration gives.
	rqStdReLU = 64
	rqStd     = 32
)

// rqReLUFollows reports whether a ReLU follows layer i with only dropped
// layers (BatchNorm2d, Dropout) in between.
func rqReLUFollows(ls []Layer, i int) bool {
	for j := i + 1; j < len(ls); j++ {
		switch ls[j].Kind {
		case ReLU:
			return true
		case BatchNorm2d, Dropout:
		default:
			return false
		}
	}
	return false
}

// rqLastOp reports whether layer i is the last layer that is kept.
func rqLastOp(ls []Layer, i int) bool {
	for j := i + 1; j < len(ls); j++ {
		if k := ls[j].Kind; k != BatchNorm2d && k != Dropout {
			return false
		}
	}
	return true
}

// rqWeights fills a convolution or Linear with uniform weights in
// [−127, 127] and scales for an input distributed as dist; it returns the
// output's distribution.
func rqWeights(ql *QLayer, in Shape, dist []int32, relu, logits, first bool, rng *rand.Rand) []int32 {
	taps := int(in.Elems())
	if ql.Kind == Conv2d {
		taps = in.C * ql.KH * ql.KW
		ql.PadValue = make([]int8, in.C)
		if !first {
			rqFill(ql.PadValue, int8(ql.InZero)) // a real 0
		}
	}
	ql.Weight = make([]int8, taps*ql.Out)
	rqInt8s(ql.Weight, rng)
	mean, sd := rqMeanStd(dist)
	sd = max(sd, 0.5) // a constant input still gets a usable scale
	// Uniform integers in [−127, 127] have variance (255² − 1)/12.
	accStd := math.Sqrt(float64(taps)*(255*255-1)/12) * sd
	// He-initialised real weights, std √(2/taps), as q·w_scale.
	wScale := math.Sqrt(2/float64(taps)) / math.Sqrt((255*255-1)/12)
	target := float64(rqStd)
	zero := int32(0)
	if relu {
		target, zero = rqStdReLU, -128
	}
	outScale := float64(ql.InScale) * wScale * accStd / target
	ql.WScale = make([]float32, ql.Out)
	ql.Bias = make([]int32, ql.Out)
	for o := range ql.Out {
		ql.WScale[o] = float32(wScale * (0.75 + 0.5*rng.Float64()))
		var sum int64
		for _, w := range ql.Weight[o*taps : (o+1)*taps] {
			sum += int64(w)
		}
		// Cancel the input's mean, then a real bias of ±0.25σ.
		b := -mean*float64(sum) + (rng.Float64()-0.5)*0.5*accStd
		ql.Bias[o] = int32(math.Round(b))
	}
	ql.ReLU = relu
	if logits {
		ql.Logits, ql.ReLU = true, false
		ql.OutScale, ql.OutZero = 0, 0
		return dist
	}
	ql.OutScale, ql.OutZero = float32(outScale), zero
	ql.Mult = make([]int32, ql.Out)
	ql.Shift = make([]int32, ql.Out)
	for o := range ql.Out {
		ql.Mult[o], ql.Shift[o] = QuantizeMultiplier(float64(ql.InScale) * float64(ql.WScale[o]) / float64(ql.OutScale))
	}
	// The output distribution of a typical channel.
	mult, shift := QuantizeMultiplier(float64(ql.InScale) * wScale / float64(ql.OutScale))
	outDist := make([]int32, len(dist))
	for j := range outDist {
		acc := int32(math.Round(rng.NormFloat64() * accStd))
		outDist[j] = int32(kernels.RequantizeOut(acc, mult, shift, zero, relu))
	}
	return outDist
}

// rqInt8s fills w with uniform values in [−127, 127], eight per PCG draw.
func rqInt8s(w []int8, rng *rand.Rand) {
	for i := 0; i < len(w); i += 8 {
		u := rng.Uint64()
		for j := i; j < min(i+8, len(w)); j++ {
			// (b·255)>>8 maps a byte onto 0…254 almost uniformly.
			w[j] = int8(int32(uint32(u&0xff)*255>>8) - 127)
			u >>= 8
		}
	}
}

func rqFill(d []int8, v int8) {
	for i := range d {
		d[i] = v
	}
}

func rqMeanStd(d []int32) (mean, sd float64) {
	for _, v := range d {
		mean += float64(v)
	}
	mean /= float64(len(d))
	for _, v := range d {
		sd += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(sd / float64(len(d)))
}

// rqMaxPoolDist is the distribution of the maximum of window values drawn
// from d (treating neighbours as independent).
func rqMaxPoolDist(d []int32, window int, rng *rand.Rand) []int32 {
	out := make([]int32, len(d))
	for j := range out {
		best := int32(-128)
		for range window {
			best = max(best, d[rng.IntN(len(d))])
		}
		out[j] = best
	}
	return out
}
