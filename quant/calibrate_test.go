package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestObserverGrowKeepsCounts(t *testing.T) {
	o := NewObserver()
	xs := []float32{0, 0.001, 1, -2, 5, 1000, 3}
	if err := o.Add(xs); err != nil {
		t.Fatal(err)
	}
	n := o.zeros
	for _, c := range o.hist {
		n += c
	}
	if n != int64(len(xs)) || o.Min != -2 || o.Max != 1000 {
		t.Errorf("count %d min %g max %g, want %d -2 1000", n, o.Min, o.Max, len(xs))
	}
	if o.width*histBins <= 1000 {
		t.Errorf("histogram range %g does not cover 1000", o.width*histBins)
	}
	if err := o.Add([]float32{float32(math.NaN())}); err == nil {
		t.Error("NaN accepted")
	}
}

// One huge outlier among 100,000 values drawn from |N(0,1)|: min/max keeps
// it, the 99.99th percentile and the entropy threshold clip near the bulk.
func TestThresholdsClipOutliers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float32, 100_000)
	for i := range xs {
		xs[i] = float32(math.Abs(r.NormFloat64()))
	}
	xs[17] = 100
	o := NewObserver()
	if err := o.Add(xs); err != nil {
		t.Fatal(err)
	}
	if got := o.Threshold(MinMax, 0); got != 100 {
		t.Errorf("minmax threshold %g, want 100", got)
	}
	// |N(0,1)|'s 99.99th percentile is 3.89; the histogram bin is 100·2/2048 wide.
	if got := o.Threshold(Percentile, 99.99); got < 3.5 || got > 4.5 {
		t.Errorf("percentile threshold %g, want ≈ 3.9", got)
	}
	// The smallest entropy candidate is 256 bins (256 levels for a
	// non-negative tensor) of 100·2/2048: it must clip the outlier there.
	if got := o.Threshold(Entropy, 0); got < 1.5 || got > 20 {
		t.Errorf("entropy threshold %g, want the outlier clipped (1.5…20)", got)
	}
	rg := o.Range(Percentile, 99.99)
	if rg.Lo != 0 || rg.Hi > 4.5 {
		t.Errorf("range %+v", rg)
	}
}

func TestActivationParams(t *testing.T) {
	for _, tt := range []struct {
		r     Range
		scale float32
		zero  int32
	}{
		{Range{0, 2.55}, 0.01, -128},
		{Range{-1.28, 1.27}, 0.01, 0},
		{Range{-2.55, 0}, 0.01, 127},
		{Range{0, 0}, 1e-6, -128},
	} {
		s, z := activationParams(tt.r)
		if math.Abs(float64(s-tt.scale)) > 1e-7 || z != tt.zero {
			t.Errorf("activationParams(%+v) = %g, %d; want %g, %d", tt.r, s, z, tt.scale, tt.zero)
		}
		// Real 0 is exactly representable: it maps to the zero point.
		if tt.r.Hi > tt.r.Lo && (float64(z)+(0-tt.r.Lo)/float64(s) < -128.5 || float64(z) > 127) {
			t.Errorf("zero point %d outside int8", z)
		}
	}
}

func TestParseMethod(t *testing.T) {
	for _, s := range []string{"minmax", "percentile", "entropy"} {
		if _, err := ParseMethod(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseMethod("kl"); err == nil {
		t.Error("kl accepted")
	}
}

// A spike (most values equal, as a first convolution over a uniform
// background) must not pull the entropy threshold below the spread of the
// rest: it clips at most 0.1% of the non-zero values.
func TestEntropySpike(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	xs := make([]float32, 200_000)
	for i := range xs {
		if i%10 == 0 {
			xs[i] = float32(r.Float64() * 5)
		} else {
			xs[i] = 0.3
		}
	}
	o := NewObserver()
	if err := o.Add(xs); err != nil {
		t.Fatal(err)
	}
	// 99.9% of 200,000 lie below 0.3 + the 99% point of U(0,5) ≈ 4.95.
	if got := o.Threshold(Entropy, 0); got < 4.9 {
		t.Errorf("entropy threshold %g clips the spread above the spike (want ≥ 4.9)", got)
	}
}
