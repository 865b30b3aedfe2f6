package infer

import (
	"errors"
	"strings"
	"testing"
)

func TestFoldBatchNormValues(t *testing.T) {
	// A 1x1 conv, 1 in → 2 out, then BN with eps 0.25:
	//	γ = [2, −1], β = [0.5, 0], mean = [1, 2], var = [0.75, 3.75]
	//	s = γ/√(var+eps) = [2/1, −1/2] = [2, −0.5]
	bn := Layer{Name: "features.1", Kind: BatchNorm2d, Eps: 0.25,
		Gamma: []float32{2, -1}, Beta: []float32{0.5, 0},
		Mean: []float32{1, 2}, Var: []float32{0.75, 3.75}}
	tests := []struct {
		name      string
		conv      Layer
		wantW     []float32
		wantB     []float32
		origWantB bool
	}{
		{
			name: "conv with bias",
			conv: Layer{Name: "features.0", Kind: Conv2d, Out: 2, KH: 1, KW: 1, Stride: 1, Bias: true,
				Weight: []float32{1, -2}, BiasData: []float32{3, -1}},
			// w' = [1·2, −2·−0.5] = [2, 1]
			// b' = [(3−1)·2+0.5, (−1−2)·−0.5+0] = [4.5, 1.5]
			wantW: []float32{2, 1}, wantB: []float32{4.5, 1.5}, origWantB: true,
		},
		{
			name: "conv without bias",
			conv: Layer{Name: "features.0", Kind: Conv2d, Out: 2, KH: 1, KW: 1, Stride: 1,
				Weight: []float32{1, -2}},
			// b = 0: b' = [(0−1)·2+0.5, (0−2)·−0.5+0] = [−1.5, 1]
			wantW: []float32{2, 1}, wantB: []float32{-1.5, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Model{Name: "m", Input: Shape{1, 1, 2}, Layers: []Layer{tt.conv, bn, {Name: "features.2", Kind: ReLU}}}
			origW := append([]float32(nil), tt.conv.Weight...)
			f, err := FoldBatchNorm(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Layers) != 2 || f.Layers[0].Name != "features.0" || f.Layers[1].Name != "features.2" {
				t.Fatalf("folded layers = %v, want features.0, features.2", layerNames(f))
			}
			c := f.Layers[0]
			if !c.Bias {
				t.Errorf("folded conv has Bias=false")
			}
			assertClose(t, c.Weight, tt.wantW, 0)
			assertClose(t, c.BiasData, tt.wantB, 0)

			// The input model is untouched.
			if len(m.Layers) != 3 || m.Layers[1].Kind != BatchNorm2d {
				t.Errorf("input model's layers changed: %v", layerNames(m))
			}
			assertClose(t, m.Layers[0].Weight, origW, 0)
			if m.Layers[0].Bias != tt.origWantB || (m.Layers[0].BiasData != nil) != tt.origWantB {
				t.Errorf("input conv's bias changed")
			}
			if m.Layers[0].In != 0 {
				t.Errorf("input model was resolved in place")
			}
		})
	}
}

func layerNames(m *Model) []string {
	var n []string
	for _, l := range m.Layers {
		n = append(n, l.Name)
	}
	return n
}

func TestFoldBatchNormTinyModel(t *testing.T) {
	m, x := tinyModel()
	f, err := FoldBatchNorm(m)
	if err != nil {
		t.Fatal(err)
	}
	// ch 0: s = 0.5/√4 = 0.25: w' = 0.25·[1 0 0 1], b' = (0−2)·0.25+1 = 0.5
	// ch 1: s = 2/√1 = 2:      w' = 2·[0 1 −1 0],   b' = (0+1)·2−1 = 1
	assertClose(t, f.Layers[0].Weight, []float32{0.25, 0, 0, 0.25, 0, 2, -2, 0}, 0)
	assertClose(t, f.Layers[0].BiasData, []float32{0.5, 1}, 0)
	want := []string{"features.0", "features.2", "features.3", "avgpool", "flatten", "classifier.0"}
	if got := layerNames(f); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("folded layers = %v, want %v", got, want)
	}

	ref, err := m.ForwardFloat(x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ForwardFloat(x)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, got, ref, 1e-5)
	assertClose(t, got, []float32{5, -3.125}, 1e-5)
}

// TestFoldBatchNormRandom folds a random conv-BN stack with several
// channels, with and without conv bias, where the rounding of the folded
// weights is not exact.
func TestFoldBatchNormRandom(t *testing.T) {
	for _, bias := range []bool{true, false} {
		conv := func(name string, out int) Layer {
			return Layer{Name: name, Kind: Conv2d, Out: out, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: bias}
		}
		bn := func(name string) Layer { return Layer{Name: name, Kind: BatchNorm2d, Eps: 1e-5} }
		m := &Model{Name: "r", Input: Shape{3, 8, 8}, Layers: []Layer{
			conv("features.0", 8), bn("features.1"), {Name: "features.2", Kind: ReLU},
			{Name: "features.3", Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2},
			conv("features.4", 16), bn("features.5"), {Name: "features.6", Kind: ReLU},
			conv("features.7", 16), bn("features.8"),
		}}
		heInit(t, m, 7)
		x := make([]float32, m.Input.Elems())
		for i := range x {
			x[i] = float32(i%11)/5 - 1
		}
		f, err := FoldBatchNorm(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range f.Layers {
			if l.Kind == BatchNorm2d {
				t.Fatalf("bias=%v: %s not folded", bias, l.Name)
			}
		}
		ref, err := m.ForwardFloat(x)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.ForwardFloat(x)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, got, ref, 1e-5)
	}
}

// A model without weights folds structurally: vgg11_bn becomes vgg11, the
// same parameter count and MACs as torchvision's vgg11.
func TestFoldBatchNormStructural(t *testing.T) {
	m, err := VGG("vgg11_bn", DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f, err := FoldBatchNorm(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Layers) != len(m.Layers)-8 {
		t.Errorf("folded model has %d layers, want %d", len(f.Layers), len(m.Layers)-8)
	}
	c, err := f.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	if c.Params != 132_863_336 || c.MACs != 7_609_090_048 {
		t.Errorf("folded vgg11_bn: %d params, %d MACs; want vgg11's 132863336, 7609090048", c.Params, c.MACs)
	}
}

func TestFoldBatchNormErrors(t *testing.T) {
	one := []float32{1}
	bn := func(name string) Layer {
		return Layer{Name: name, Kind: BatchNorm2d, Gamma: one, Beta: one, Mean: one, Var: one}
	}
	conv := Layer{Name: "features.0", Kind: Conv2d, Out: 1, KH: 1, KW: 1, Stride: 1, Weight: one}
	tests := []struct {
		name   string
		m      *Model
		want   string
		wantLE string
	}{
		{
			name:   "bn after relu",
			m:      &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv, {Name: "features.1", Kind: ReLU}, bn("features.2")}},
			want:   "follows features.1 (relu)",
			wantLE: "features.2",
		},
		{
			name:   "bn first",
			m:      &Model{Input: Shape{1, 2, 2}, Layers: []Layer{bn("features.0")}},
			want:   "first layer",
			wantLE: "features.0",
		},
		{
			name:   "bn after bn",
			m:      &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv, bn("features.1"), bn("features.2")}},
			want:   "follows features.1 (batchnorm2d)",
			wantLE: "features.2",
		},
		{
			name: "bn without parameters after a conv with weights",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv,
				{Name: "features.1", Kind: BatchNorm2d}}},
			want:   "no weight values",
			wantLE: "features.1",
		},
		{
			name: "conv without weights before a bn with parameters",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{
				{Name: "features.0", Kind: Conv2d, Out: 1, KH: 1, KW: 1, Stride: 1}, bn("features.1")}},
			want:   "no weights",
			wantLE: "features.0",
		},
		{
			name: "var+eps not positive",
			m: &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv,
				{Name: "features.1", Kind: BatchNorm2d, Gamma: one, Beta: one, Mean: one, Var: []float32{-1}}}},
			want:   "var+eps must be positive",
			wantLE: "features.1",
		},
		{
			name:   "invalid model",
			m:      &Model{Input: Shape{1, 2, 2}, Layers: []Layer{conv, {Name: "features.1", Kind: BatchNorm2d, Gamma: []float32{1, 2}}}},
			want:   "weight has 2 values, want 1",
			wantLE: "features.1",
		},
		{
			name: "nil model",
			want: "nil model",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := FoldBatchNorm(tt.m)
			if err == nil {
				t.Fatalf("no error; folded layers %v", layerNames(f))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.wantLE != "" {
				var le *LayerError
				if !errors.As(err, &le) || le.Name != tt.wantLE {
					t.Errorf("error %v is not a *LayerError for %s", err, tt.wantLE)
				}
				if !strings.Contains(err.Error(), tt.wantLE) {
					t.Errorf("error %q does not name %s", err, tt.wantLE)
				}
			}
		})
	}
}
