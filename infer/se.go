package infer

import "math"

// Squeeze-and-excitation (Hu, Shen, Sun, "Squeeze-and-Excitation
// Networks", CVPR 2018): each channel c of the input is multiplied by a gate
//
//	g[c] = sigmoid(b2[c] + Σ_j W2[c][j] · relu(b1[j] + Σ_k W1[j][k] · mean(x[k])))
//
// The float and int8 engines share the excitation (seGates): it is 2·C·r
// multiply-adds, tiny next to the convolutions, so the int8 engine runs it
// in float64 from the exact integer channel sums and only the final
// per-channel scaling runs on int8 (seScaleInt8).
//
// Determinism: every product is converted to float64 before it is added
// (an explicit conversion forbids the compiler from fusing it into a
// multiply-add, which arm64 would otherwise do), and the gates are computed
// once per Run by the calling goroutine, so thread counts cannot change
// them. math.Exp may differ in its last bit between architectures; the int8
// gate is rounded to 15 bits, so such a difference shows only when a gate
// lies within 1e-16 of a rounding boundary.

// seGateBits is the fixed-point precision of an int8 gate: m = round(g·2^15).
const seGateBits = 15

// seGates computes gates[c] from the channel means. hidden has len r.
func seGates(w1, b1, w2, b2 []float32, mean, hidden, gates []float64) {
	c, r := len(mean), len(hidden)
	for j := 0; j < r; j++ {
		s := float64(b1[j])
		row := w1[j*c : (j+1)*c]
		for k, m := range mean {
			s += float64(float64(row[k]) * m)
		}
		hidden[j] = max(s, 0)
	}
	for k := 0; k < c; k++ {
		s := float64(b2[k])
		row := w2[k*r : (k+1)*r]
		for j, h := range hidden {
			s += float64(float64(row[j]) * h)
		}
		gates[k] = 1 / (1 + math.Exp(-s))
	}
}

// squeezeExciteFloat is the float reference: y = x · g[c].
func squeezeExciteFloat(l *Layer, in Shape, x []float32) []float32 {
	hw := in.H * in.W
	mean := make([]float64, in.C)
	for c := range mean {
		var s float64
		for _, v := range x[c*hw : (c+1)*hw] {
			s += float64(v)
		}
		mean[c] = s / float64(hw)
	}
	gates := make([]float64, in.C)
	seGates(l.Weight, l.BiasData, l.Weight2, l.Bias2, mean, make([]float64, l.Out), gates)
	y := make([]float32, len(x))
	for c, g := range gates {
		for i := c * hw; i < (c+1)*hw; i++ {
			y[i] = float32(float64(x[i]) * g)
		}
	}
	return y
}

// seScratch is what an int8 SqueezeExcite needs per Run, planned once.
type seScratch struct {
	mean, hidden, gates []float64
	mult                []int32
}

// seGatesInt8 computes the fixed-point gates of an int8 SqueezeExcite on
// the int8 tensor x (scale and zero point of l's input): the channel means
// are exact integer sums dequantized once.
func seGatesInt8(l *QLayer, in Shape, x []int8, s *seScratch) {
	hw := in.H * in.W
	mean, gates, mult := s.mean[:in.C], s.gates[:in.C], s.mult[:in.C]
	for c := range mean {
		var sum int64
		for _, v := range x[c*hw : (c+1)*hw] {
			sum += int64(v)
		}
		sum -= int64(l.InZero) * int64(hw)
		mean[c] = float64(sum) * float64(l.InScale) / float64(hw)
	}
	seGates(l.SEWeight, l.SEBias, l.SEWeight2, l.SEBias2, mean, s.hidden[:l.Out], gates)
	for c, g := range gates {
		mult[c] = int32(math.Round(g * (1 << seGateBits)))
	}
}

// seScaleInt8 writes y = zero + round((x − zero)·mult[c] / 2^15) for the
// channels [c0, c1) (x and y hold those channels only; they may alias).
// Rounding is half up, in integers, so it is the same everywhere. A gate
// is at most 1, so the result stays between zero and x: no clamping needed.
func seScaleInt8(x, y []int8, mult []int32, zero int32, hw int) {
	const half = 1 << (seGateBits - 1)
	for c, m := range mult {
		xs, ys := x[c*hw:(c+1)*hw], y[c*hw:(c+1)*hw]
		for i, v := range xs {
			ys[i] = int8(zero + ((int32(v)-zero)*m+half)>>seGateBits)
		}
	}
}
