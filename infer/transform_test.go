package infer

import "testing"

func TestWithReduction(t *testing.T) {
	m, err := VGG("vgg16", DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r, err := WithReduction(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(138_357_544 - (25088*4096 + 4096) + (512*64 + 64) + (64*49*4096 + 4096))
	if c.Params != want {
		t.Errorf("params = %d, want %d", c.Params, want)
	}
	// The same as the README's architecture file.
	f, err := Build("testdata/vgg16-r64.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc, _ := f.Cost(Int8)
	if fc.Params != c.Params || fc.MACs != c.MACs || len(f.Layers) != len(r.Layers) {
		t.Errorf("WithReduction differs from the architecture file: %d/%d params, %d/%d MACs", c.Params, fc.Params, c.MACs, fc.MACs)
	}
	if m.Layers[31].Kind != AdaptiveAvgPool2d {
		t.Error("WithReduction modified its input model")
	}
	if _, err := WithReduction(m, 0); err == nil {
		t.Error("width 0: no error")
	}
}

func TestWithInput(t *testing.T) {
	m, _ := VGG("vgg11", DefaultInput, 1000)
	s, err := WithInput(m, Shape{3, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Cost(Int8)
	c0, _ := m.Cost(Int8)
	if c.Params != c0.Params || c.MACs >= c0.MACs {
		t.Errorf("64x64: params %d (want %d), MACs %d (want < %d)", c.Params, c0.Params, c.MACs, c0.MACs)
	}
	if _, err := WithInput(m, Shape{3, 16, 16}); err == nil {
		t.Error("16x16 VGG11: no error")
	}
}
