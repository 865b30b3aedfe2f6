package infer

import (
	"math"

	"github.com/vggedge/vggedge/infer/kernels"
)

// QuantizeMultiplier turns a real multiplier into TFLite's Q31 fixed-point
// multiplier and exponent: real ≈ mult·2^(shift−31). A multiplier of 0 (or
// one too small to represent) gives (0, 0).
func QuantizeMultiplier(real float64) (mult, shift int32) {
	if real <= 0 || math.IsNaN(real) || math.IsInf(real, 0) {
		return 0, 0
	}
	frac, exp := math.Frexp(real) // real = frac·2^exp, frac in [0.5, 1)
	q := int64(math.Round(frac * (1 << 31)))
	if q == 1<<31 {
		q /= 2
		exp++
	}
	if exp < -31 {
		return 0, 0
	}
	if exp > 30 {
		return math.MaxInt32, 30
	}
	return int32(q), int32(exp)
}

// Requantize computes round(acc · mult·2^(shift−31)) exactly as TFLite's
// MultiplyByQuantizedMultiplier (gemmlowp's saturating rounding doubling
// high multiply, then a rounding right shift). The kernels own the
// arithmetic; these names keep infer's API readable.
func Requantize(acc, mult, shift int32) int32 { return kernels.Requantize(acc, mult, shift) }

// RequantizeOut maps an accumulator to an output activation: the zero point
// added, clamped to int8, and to the zero point from below when ReLU is
// fused.
func RequantizeOut(acc, mult, shift, zero int32, relu bool) int8 {
	return kernels.RequantizeOut(acc, mult, shift, zero, relu)
}

func srdhm(a, b int32) int32 { return kernels.SRDHM(a, b) }

func roundingDivideByPOT(x, exponent int32) int32 { return kernels.RoundingDivideByPOT(x, exponent) }
