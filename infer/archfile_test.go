package infer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArchFileReproducesBuiltins(t *testing.T) {
	for _, tt := range []struct {
		file, arch string
	}{
		{`{"features": ["vgg16"], "avgpool": [7, 7], "classifier": [4096, 4096, 1000]}`, "vgg16"},
		{`{"batch_norm": true, "features": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
		   "avgpool": 7, "classifier": [4096, 4096, 1000]}`, "vgg11_bn"},
		{`{"input": [3, 64, 96], "num_classes": 10, "features": ["vgg13"], "avgpool": [7, 7], "classifier": [4096, 4096, 5]}`, "vgg13"},
	} {
		got, err := ParseArch([]byte(tt.file), "t.json", Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.arch, err)
		}
		want, err := VGG(tt.arch, got.Input, got.Layers[len(got.Layers)-1].Out)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Layers) != len(want.Layers) {
			t.Fatalf("%s: %d layers, want %d", tt.arch, len(got.Layers), len(want.Layers))
		}
		for i := range want.Layers {
			if got.Layers[i].Name != want.Layers[i].Name || got.Layers[i].Kind != want.Layers[i].Kind ||
				got.Layers[i].Out != want.Layers[i].Out || got.Layers[i].In != want.Layers[i].In {
				t.Errorf("%s layer %d: got %+v, want %+v", tt.arch, i, got.Layers[i], want.Layers[i])
			}
		}
	}
}

// The README's example: VGG16 with a 1x1 reduction (512→64) before the
// classifier.
func TestArchFileReduction(t *testing.T) {
	m, err := Build(filepath.Join("testdata", "vgg16-r64.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	// vgg16 - first Linear (25088·4096 + 4096) + 1x1 conv (512·64 + 64)
	// + new first Linear (64·49·4096 + 4096).
	want := int64(138_357_544 - (25088*4096 + 4096) + (512*64 + 64) + (64*49*4096 + 4096))
	if c.Params != want {
		t.Errorf("params = %d, want %d", c.Params, want)
	}
	l := m.Layers[31]
	if l.Name != "features.31" || l.Kind != Conv2d || l.In != 512 || l.Out != 64 || l.KH != 1 || l.Pad != 0 {
		t.Errorf("features.31 = %+v, want Conv2d(512, 64, 1x1)", l)
	}
}

func TestArchFileOverrides(t *testing.T) {
	m, err := Build(filepath.Join("testdata", "vgg16-r64.json"), Options{Input: Shape{1, 64, 64}, NumClasses: 10})
	if err != nil {
		t.Fatal(err)
	}
	if m.Input != (Shape{1, 64, 64}) || m.Layers[0].In != 1 || m.Layers[len(m.Layers)-1].Out != 10 {
		t.Errorf("overrides not applied: input %v, first In %d, classes %d", m.Input, m.Layers[0].In, m.Layers[len(m.Layers)-1].Out)
	}
}

func TestArchFileAllLayerKinds(t *testing.T) {
	src := `{
  "class": "Net",
  "input": [1, 32, 32],
  "features": [
    {"type": "conv2d", "out": 8, "kernel": [3, 3], "padding": 1},
    {"type": "batchnorm2d", "eps": 0.001},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1},
    {"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false},
    {"type": "squeezeexcite", "squeeze": 4},
    {"type": "adaptiveavgpool2d", "output_size": 2},
    {"type": "flatten"},
    {"type": "dropout", "p": 0.2},
    {"type": "linear", "out": 3}
  ]
}`
	m, err := ParseArch([]byte(src), "all.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := m.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := []Shape{{8, 32, 32}, {8, 32, 32}, {8, 32, 32}, {8, 16, 16}, {16, 8, 8}, {16, 8, 8}, {16, 2, 2}, {64, 1, 1}, {64, 1, 1}, {3, 1, 1}}
	for i := range want {
		if shapes[i] != want[i] {
			t.Errorf("layer %d (%s): shape %v, want %v", i, m.Layers[i].Kind, shapes[i], want[i])
		}
	}
	if m.Layers[4].Bias || m.Layers[1].Eps != 0.001 || m.Layers[8].P != 0.2 || m.Layers[5].Out != 4 {
		t.Errorf("fields not parsed: %+v", m.Layers)
	}
	// SE on 16 channels squeezed to 4, by hand: 16·4 + 4 + 4·16 + 16 = 148
	// params, 2·16·4 = 128 MACs (the per-pixel gate multiplies are not MACs).
	c, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	if se := c.Layers[5]; se.Params != 148 || se.MACs != 128 {
		t.Errorf("squeezeexcite 16→4: params %d, MACs %d; want 148, 128", se.Params, se.MACs)
	}
}

func TestArchFileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"not json", `{"features": [64, "M",`, []string{"bad.json:1:", "end of file"}},
		{"syntax", "{\n  \"features\": [64 64]\n}", []string{"bad.json:2:", "invalid JSON"}},
		{"unknown top field", "{\n  \"featurez\": []\n}", []string{"bad.json:2:3", "featurez", "unknown field"}},
		{"unknown layer field", "{\"features\": [\n  64,\n  {\"type\": \"conv2d\", \"out\": 8, \"kernal\": 3}\n]}", []string{"bad.json:3:3", "features[1]", "kernal"}},
		{"unknown type", `{"features": [{"type": "conv3d", "out": 8}]}`, []string{"features[0].type", "conv3d", "known: conv2d"}},
		{"missing type", `{"features": [{"out": 8}]}`, []string{"features[0].type", "missing"}},
		{"negative width", `{"features": [64], "classifier": [-5]}`, []string{"classifier[0]", "-5", "positive"}},
		{"zero channels", `{"features": [0]}`, []string{"features[0]", "positive"}},
		{"negative out", `{"features": [{"type": "conv2d", "out": -3, "kernel": 3}]}`, []string{"features[0].out", "-3"}},
		{"se without squeeze", `{"features": [8, {"type": "squeezeexcite"}]}`, []string{"features[1].squeeze", "required"}},
		{"se zero squeeze", `{"features": [8, {"type": "squeezeexcite", "squeeze": 0}]}`, []string{"features[1].squeeze", "positive"}},
		{"missing kernel", `{"features": [{"type": "conv2d", "out": 3}]}`, []string{"features[0].kernel", "required"}},
		{"wrong type", `{"input": "3x224x224", "features": [64]}`, []string{"input", "list of integers"}},
		{"bad input", `{"input": [3, 224], "features": [64]}`, []string{"input", "[C, H, W]"}},
		{"too small", "{\"input\": [3, 8, 8],\n \"features\": [\"vgg16\"]}", []string{"bad.json:2:", "features[0]", "smaller"}},
		{"linear mismatch", `{"features": [{"type": "linear", "out": 3, "bias": true}, {"type": "conv2d", "out": 2, "kernel": 3}]}`, []string{"features[1]", "smaller"}},
		{"no layers", `{}`, []string{"no layers"}},
		{"trailing", `{"features": [64]} {}`, []string{"after"}},
		{"unknown cfg", `{"features": ["vgg17"]}`, []string{"features[0]", "vgg17"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseArch([]byte(tt.src), "bad.json", Options{})
			if err == nil {
				t.Fatal("no error")
			}
			var ae *ArchError
			if !errors.As(err, &ae) {
				t.Errorf("error %T is not an *ArchError: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestBuildNames(t *testing.T) {
	if _, err := Build("vgg16_bn", Options{}); err != nil {
		t.Error(err)
	}
	_, err := Build("vgg99", Options{})
	if err == nil || !strings.Contains(err.Error(), "vgg16_bn") {
		t.Errorf("unknown arch error should list the built-ins, got %v", err)
	}
	_, err = Build(filepath.Join(t.TempDir(), "missing.json"), Options{})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file error should name the file, got %v", err)
	}
}
