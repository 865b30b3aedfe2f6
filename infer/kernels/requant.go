package kernels

import "math"

// Requantize computes round(acc · mult·2^(shift−31)) exactly as TFLite's
// MultiplyByQuantizedMultiplier: a saturating left shift for positive
// shifts, gemmlowp's SaturatingRoundingDoublingHighMul, then its
// RoundingDivideByPOT for negative shifts. shift must be in [−31, 30].
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
	return RoundingDivideByPOT(SRDHM(int32(x), mult), right)
}

// SRDHM is gemmlowp's SaturatingRoundingDoublingHighMul: (a·b + 2^30) / 2^31
// rounded half away from zero, saturating the one overflow (MinInt32²).
func SRDHM(a, b int32) int32 {
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

// RoundingDivideByPOT is gemmlowp's RoundingDivideByPOT: x / 2^exponent
// rounded to nearest, ties away from zero. exponent ≤ 0 returns x.
func RoundingDivideByPOT(x, exponent int32) int32 {
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

// RequantizeOut maps an accumulator to an int8 activation: the zero point
// added, clamped to int8, and to the zero point from below when ReLU is
// fused.
func RequantizeOut(acc, mult, shift, zero int32, relu bool) int8 {
	return clampOut(zero+Requantize(acc, mult, shift), reluFloor(zero, relu))
}

// reluFloor is the lowest output value: the zero point when ReLU is fused.
func reluFloor(zero int32, relu bool) int32 {
	if relu {
		return max(zero, -128)
	}
	return -128
}

func clampOut(v, lo int32) int8 { return int8(min(max(v, lo), 127)) }

// LogitScale is the per-channel factor of a float32 logits output:
// InScale·WScale[o] as one float32 multiplication. The logit is
// float32(acc) * LogitScale(inScale, wScale[o]).
func LogitScale(inScale, wScale float32) float32 { return inScale * wScale }
