package infer

import "math"

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
// MultiplyByQuantizedMultiplier: a saturating rounding doubling high
// multiply (gemmlowp) followed by a rounding right shift.
func Requantize(acc, mult, shift int32) int32 {
	left, right := int32(0), -shift
	if shift > 0 {
		left, right = shift, 0
	}
	x := int64(acc) << left
	if x > math.MaxInt32 {
		x = math.MaxInt32
	} else if x < math.MinInt32 {
		x = math.MinInt32
	}
	return roundingDivideByPOT(srdhm(int32(x), mult), right)
}

// srdhm is gemmlowp's SaturatingRoundingDoublingHighMul.
func srdhm(a, b int32) int32 {
	if a == math.MinInt32 && b == math.MinInt32 {
		return math.MaxInt32
	}
	ab := int64(a) * int64(b)
	nudge := int64(1 << 30)
	if ab < 0 {
		nudge = 1 - (1 << 30)
	}
	// Go's division truncates toward zero, as gemmlowp's does.
	return int32((ab + nudge) / (1 << 31))
}

// roundingDivideByPOT is gemmlowp's RoundingDivideByPOT: x / 2^exponent
// rounded to nearest, ties away from zero.
func roundingDivideByPOT(x, exponent int32) int32 {
	if exponent <= 0 {
		return x
	}
	mask := int32(1)<<exponent - 1
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	r := x >> exponent
	if remainder > threshold {
		r++
	}
	return r
}

// RequantizeOut maps an accumulator to an output activation: the zero point
// added, clamped to int8, and to the zero point from below when ReLU is
// fused.
func RequantizeOut(acc, mult, shift, zero int32, relu bool) int8 {
	v := zero + Requantize(acc, mult, shift)
	lo := int32(-128)
	if relu {
		lo = max(zero, -128)
	}
	return int8(min(max(v, lo), 127))
}
