package infer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Values worked by hand from gemmlowp's definitions
// (fixedpoint/fixedpoint.h: SaturatingRoundingDoublingHighMul,
// RoundingDivideByPOT) and TFLite's QuantizeMultiplier.
func TestRequantizePrimitives(t *testing.T) {
	for _, tt := range []struct{ a, b, want int32 }{
		{1 << 30, 1 << 30, 1 << 29},                   // 2^60/2^31 = 2^29 (+0.5 nudge truncated)
		{math.MinInt32, math.MinInt32, math.MaxInt32}, // the one saturating case
		{100, 1 << 30, 50},                            // (100·2^30 + 2^30)/2^31 = 50.5 → 50
		{-100, 1 << 30, -50},                          // (−100·2^30 + 1 − 2^30)/2^31 → −50
		{3, 1 << 30, 2},                               // 1.5 + 0.5 → 2
		{-3, 1 << 30, -1},                             // (−3·2^30 + 1 − 2^30)/2^31 = −1.99… → −1
	} {
		if got := srdhm(tt.a, tt.b); got != tt.want {
			t.Errorf("srdhm(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	for _, tt := range []struct{ x, e, want int32 }{
		{5, 1, 3}, {-5, 1, -3}, {4, 1, 2}, {-3, 1, -2}, {7, 2, 2}, {-7, 2, -2}, {6, 2, 2}, {-6, 2, -2}, {9, 0, 9},
	} {
		if got := roundingDivideByPOT(tt.x, tt.e); got != tt.want {
			t.Errorf("roundingDivideByPOT(%d, %d) = %d, want %d", tt.x, tt.e, got, tt.want)
		}
	}
	for _, tt := range []struct {
		real        float64
		mult, shift int32
	}{
		{0.5, 1 << 30, 0}, {1, 1 << 30, 1}, {0.75, 3 << 29, 0}, {0.25, 1 << 30, -1}, {0, 0, 0}, {math.NaN(), 0, 0},
	} {
		m, s := QuantizeMultiplier(tt.real)
		if m != tt.mult || s != tt.shift {
			t.Errorf("QuantizeMultiplier(%g) = %d, %d; want %d, %d", tt.real, m, s, tt.mult, tt.shift)
		}
	}
}

// Requantize is round(acc·real) to within one unit for multipliers in the
// range quantized models use.
func TestRequantizeMatchesReal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		real := math.Exp(r.Float64()*16 - 14) // 8e-7 … 7
		acc := int32(r.IntN(1<<24) - 1<<23)
		m, s := QuantizeMultiplier(real)
		got := Requantize(acc, m, s)
		want := math.Round(float64(acc) * real)
		if math.Abs(float64(got)-want) > 1 {
			t.Fatalf("Requantize(%d, %g) = %d, want ≈ %g", acc, real, got, want)
		}
	}
}

func TestRequantizeOut(t *testing.T) {
	m, s := QuantizeMultiplier(0.5)
	for _, tt := range []struct {
		acc, zero int32
		relu      bool
		want      int8
	}{
		{100, 0, false, 50}, {1000, 0, false, 127}, {-1000, 0, false, -128},
		{-100, -128, true, -128}, {-100, 10, true, 10}, {100, 10, true, 60}, {-100, 10, false, -40},
	} {
		if got := RequantizeOut(tt.acc, m, s, tt.zero, tt.relu); got != tt.want {
			t.Errorf("RequantizeOut(%d, zero %d, relu %v) = %d, want %d", tt.acc, tt.zero, tt.relu, got, tt.want)
		}
	}
}
