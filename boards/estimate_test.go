package boards

import (
	"math"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

func vgg16Cost(t *testing.T, p infer.Precision) *infer.Cost {
	t.Helper()
	m, err := infer.VGG("vgg16", infer.DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Cost(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The estimate for VGG16 int8 at 3x224x224 must give back the published
// all-core figure each profile was seeded from.
func TestVGG16Int8EstimateMatchesPublished(t *testing.T) {
	c := vgg16Cost(t, infer.Int8)
	tests := []struct {
		board     string
		published float64 // ms
		tol       float64 // fraction
		source    string
	}{
		// ncnn benchncnn VGG16 int8, Tencent/ncnn benchmark/README.md
		// (boards/SOURCES.md).
		{"rpi4-4g", 394, 0.05, "Raspberry Pi 4, 4 threads"},
		{"rpi5-8g", 107, 0.05, "Raspberry Pi 5, 4 threads"},
		{"jetson-nano", 294, 0.05, "Jetson Nano, 4 threads"},
		{"orin-nano", 108, 0.05, "Jetson Orin Nano, 6 threads"},
		// ANCHORS.md §1, measured on the development host class: ncnn int8,
		// 2 threads, 87-94 ms.
		{"x86-64", 90.5, 0.05, "2-core EPYC Zen 3, 2 threads"},
		// Scaled figures (not measurements): 4x A53 2.0 GHz 367 ms, of which
		// 131.45 MB ÷ 2 GB/s = 65.7 ms is memory; the rest scales with the
		// clock: 301.3·2.0/1.4 + 65.7 = 496 ms, 301.3·2.0/1.0 + 65.7 = 668 ms.
		{"rpi3bplus", 496, 0.01, "A53 figure scaled to 1.4 GHz"},
		{"rpi-zero2w", 668, 0.01, "A53 figure scaled to 1.0 GHz"},
		// AGX Xavier 76 ms, 8 threads; memory 131.45 MB ÷ 20 GB/s = 6.6 ms;
		// 69.4·(8·2.26)/(6·1.9) + 6.6 = 116.7 ms.
		{"xavier-nx", 116.7, 0.01, "AGX Xavier figure scaled to 6 cores at 1.9 GHz"},
	}
	for _, tt := range tests {
		t.Run(tt.board, func(t *testing.T) {
			b, err := ByID(tt.board)
			if err != nil {
				t.Fatal(err)
			}
			e := EstimateLatency(c, b)
			if rel := math.Abs(e.TotalMs-tt.published) / tt.published; rel > tt.tol {
				t.Errorf("VGG16 int8 on %s: estimated %.1f ms, published %.1f ms (%s): %.1f%% off, want ≤ %.0f%%",
					tt.board, e.TotalMs, tt.published, tt.source, 100*rel, 100*tt.tol)
			}
		})
	}
}

// ANCHORS.md §1: ncnn fp32 with 2 threads, 114-128 ms on the host class.
func TestVGG16FP32EstimateMatchesPublishedOnX86(t *testing.T) {
	b, err := ByID("x86-64")
	if err != nil {
		t.Fatal(err)
	}
	e := EstimateLatency(vgg16Cost(t, infer.FP32), b)
	if e.TotalMs < 114 || e.TotalMs > 128 {
		t.Errorf("VGG16 fp32 on x86-64: estimated %.1f ms, published 114-128 ms", e.TotalMs)
	}
}

func TestFP32SlowerThanInt8(t *testing.T) {
	c8, c32 := vgg16Cost(t, infer.Int8), vgg16Cost(t, infer.FP32)
	for _, b := range All() {
		e8, e32 := EstimateLatency(c8, b), EstimateLatency(c32, b)
		if !(e32.TotalMs > e8.TotalMs) {
			t.Errorf("%s: fp32 %.1f ms not slower than int8 %.1f ms", b.ID, e32.TotalMs, e8.TotalMs)
		}
	}
}

// Per layer on VGG16: convolutions compute-bound, Linear layers memory-bound
// (a GEMV reads each weight once), pools memory-bound, ReLU fused; the
// layers add up to the total.
func TestVGG16LayerBounds(t *testing.T) {
	c := vgg16Cost(t, infer.Int8)
	for _, id := range []string{"rpi-zero2w", "rpi4-4g", "rpi5-8g", "jetson-nano", "xavier-nx", "orin-nano", "x86-64"} {
		b, err := ByID(id)
		if err != nil {
			t.Fatal(err)
		}
		e := EstimateLatency(c, b)
		if len(e.Layers) != len(c.Layers) {
			t.Fatalf("%s: %d layer estimates for %d layers", id, len(e.Layers), len(c.Layers))
		}
		want := map[string]string{"conv3x3": BoundCompute, "linear": BoundMemory, "pool": BoundMemory, "none": BoundFused}
		var sum float64
		for i, l := range e.Layers {
			if l.Name != c.Layers[i].Name || l.Op != c.Layers[i].Op {
				t.Errorf("%s: layer %d is %s/%s, cost says %s/%s", id, i, l.Name, l.Op, c.Layers[i].Name, c.Layers[i].Op)
			}
			if l.Bound != want[l.Op] {
				t.Errorf("%s: %s (%s) is %s-bound, want %s", id, l.Name, l.Op, l.Bound, want[l.Op])
			}
			if l.Bound == BoundFused && l.Ms != 0 {
				t.Errorf("%s: fused %s costs %g ms", id, l.Name, l.Ms)
			}
			if l.Bound != BoundFused && !(l.Ms > 0) {
				t.Errorf("%s: %s costs %g ms", id, l.Name, l.Ms)
			}
			sum += l.Ms
		}
		if math.Abs(sum-e.TotalMs) > 1e-9*e.TotalMs {
			t.Errorf("%s: layers sum to %g ms, total %g ms", id, sum, e.TotalMs)
		}
	}
}

// The formula on hand-made layers with round numbers.
func TestEstimateFormula(t *testing.T) {
	b := &Board{
		ID:                   "test",
		BandwidthBytesPerSec: 1e9, // 1 byte per ns
		Int8:                 Throughput{Conv3x3: 10, Conv1x1: 5, Conv: 2, Linear: 1},
		FP32:                 Throughput{Conv3x3: 4, Conv1x1: 2, Conv: 1, Linear: 0.5},
	}
	c := &infer.Cost{Precision: infer.Int8, Layers: []infer.LayerCost{
		// 1e9 MACs at 10 GMAC/s = 100 ms; 1e6 bytes = 1 ms.
		{Name: "c3", Op: "conv3x3", MACs: 1e9, InputBytes: 5e5, OutputBytes: 5e5},
		{Name: "relu", Op: "none", InputBytes: 5e5},
		// 1e8 MACs at 5 GMAC/s = 20 ms; 3e7 bytes = 30 ms.
		{Name: "c1", Op: "conv1x1", MACs: 1e8, InputBytes: 2e7, OutputBytes: 1e7},
		{Name: "pool", Op: "pool", InputBytes: 4e6, OutputBytes: 1e6},
		// 1e8 MACs at 2 GMAC/s (the generic conv rate) = 50 ms.
		{Name: "c5", Op: "conv", MACs: 1e8, InputBytes: 1e6},
		{Name: "odd", Op: "deconv", MACs: 1e8},
		// 1e7 MACs at 1 GMAC/s = 10 ms; 1.1e7 bytes = 11 ms.
		{Name: "fc", Op: "linear", MACs: 1e7, InputBytes: 1e7 + 1e6},
		// A "none" layer that writes an output is costed by its bytes.
		{Name: "copy", Op: "none", InputBytes: 2e6, OutputBytes: 2e6},
	}}
	want := []struct {
		ms    float64
		bound string
	}{
		{100, BoundCompute}, {0, BoundFused}, {30, BoundMemory}, {5, BoundMemory},
		{50, BoundCompute}, {50, BoundCompute}, {11, BoundMemory}, {4, BoundMemory},
	}
	e := EstimateLatency(c, b)
	if len(e.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(e.Layers), len(want))
	}
	var total float64
	for i, w := range want {
		l := e.Layers[i]
		if math.Abs(l.Ms-w.ms) > 1e-9 || l.Bound != w.bound {
			t.Errorf("%s: %g ms %s-bound, want %g ms %s", l.Name, l.Ms, l.Bound, w.ms, w.bound)
		}
		total += w.ms
	}
	if math.Abs(e.TotalMs-total) > 1e-9 {
		t.Errorf("total %g ms, want %g", e.TotalMs, total)
	}
	if e.ErrorBand != UncalibratedErrorBand || e.Calibrated {
		t.Errorf("band %g calibrated %v, want %g false", e.ErrorBand, e.Calibrated, UncalibratedErrorBand)
	}

	// The same layers at fp32 use the FP32 rates: c3 at 4 GMAC/s = 250 ms.
	c.Precision = infer.FP32
	if got := EstimateLatency(c, b).Layers[0].Ms; math.Abs(got-250) > 1e-9 {
		t.Errorf("fp32 c3: %g ms, want 250", got)
	}

	b.Calibrated = true
	if e := EstimateLatency(c, b); e.ErrorBand != CalibratedErrorBand || !e.Calibrated {
		t.Errorf("calibrated board: band %g calibrated %v", e.ErrorBand, e.Calibrated)
	}
}

// Bad input gives an empty or partial estimate, never a panic, a negative
// time or a division by zero.
func TestEstimateBadInput(t *testing.T) {
	b, err := ByID("rpi4-4g")
	if err != nil {
		t.Fatal(err)
	}
	if e := EstimateLatency(nil, b); e.TotalMs != 0 || e.Layers != nil || e.ErrorBand != UncalibratedErrorBand {
		t.Errorf("nil cost: %+v", e)
	}
	if e := EstimateLatency(vgg16Cost(t, infer.Int8), nil); e.TotalMs != 0 || e.Layers != nil {
		t.Errorf("nil board: %+v", e)
	}
	zero := &Board{ID: "zero"}
	c := &infer.Cost{Layers: []infer.LayerCost{
		{Name: "c", Op: "conv3x3", MACs: 1e9, InputBytes: 1e6},
		{Name: "neg", Op: "pool", InputBytes: -5, OutputBytes: -5},
	}}
	e := EstimateLatency(c, zero)
	if e.TotalMs != 0 || math.IsNaN(e.TotalMs) {
		t.Errorf("zero-rate board: total %g, want 0", e.TotalMs)
	}
	b.BandwidthBytesPerSec = 1e9
	if e := EstimateLatency(c, b); e.Layers[1].Ms != 0 {
		t.Errorf("negative bytes: %g ms, want 0", e.Layers[1].Ms)
	}
}

// Unknown precisions fall back to int8.
func TestThroughputPrecision(t *testing.T) {
	b, err := ByID("orin-nano")
	if err != nil {
		t.Fatal(err)
	}
	if b.Throughput(infer.FP32) != b.FP32 || b.Throughput(infer.Int8) != b.Int8 || b.Throughput("") != b.Int8 {
		t.Error("Throughput does not pick FP32 for fp32 and Int8 otherwise")
	}
	tp := Throughput{Conv3x3: 1, Conv1x1: 2, Conv: 3, Linear: 4}
	for op, want := range map[string]float64{"conv3x3": 1, "conv1x1": 2, "conv": 3, "linear": 4, "pool": 0, "none": 0, "depthwise": 3} {
		if got := tp.Rate(op); got != want {
			t.Errorf("Rate(%q) = %g, want %g", op, got, want)
		}
	}
}
