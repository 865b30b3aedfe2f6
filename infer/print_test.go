package infer

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// testdata/vgg16.torch.txt is print(torchvision.models.vgg16()) as shown in
// PyTorch's tutorial "Save and Load the Model" (pytorch/tutorials,
// beginner_source/basics/saveloadrun_tutorial.py, rendered output).
func TestPrintTorchVGG16(t *testing.T) {
	want, err := os.ReadFile("testdata/vgg16.torch.txt")
	if err != nil {
		t.Fatal(err)
	}
	m, err := VGG("vgg16", DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := m.PrintTorch(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("print differs from PyTorch's:\n%s", b.String())
	}
}

func TestModuleRepr(t *testing.T) {
	tests := []struct {
		l    Layer
		want string
	}{
		{Layer{Kind: BatchNorm2d, In: 64, Eps: 1e-5}, "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"},
		{Layer{Kind: Conv2d, In: 512, Out: 64, KH: 1, KW: 1, Stride: 2}, "Conv2d(512, 64, kernel_size=(1, 1), stride=(2, 2), bias=False)"},
		{Layer{Kind: Dropout, P: 0.2}, "Dropout(p=0.2, inplace=False)"},
		{Layer{Kind: Dropout, P: 1}, "Dropout(p=1.0, inplace=False)"},
		{Layer{Kind: Linear, In: 3136, Out: 10, Bias: false}, "Linear(in_features=3136, out_features=10, bias=False)"},
		{Layer{Kind: Flatten}, "Flatten(start_dim=1, end_dim=-1)"},
	}
	for _, tt := range tests {
		if got := tt.l.Module(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	m, err := VGG("vgg16_bn", DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := m.PrintTable(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"features.0 (Conv2d)", "[1, 64, 224, 224]", "1,792", "86,704,128",
		"features.1 (BatchNorm2d)", "classifier.6 (Linear)", "[1, 1000]", "4,097,000",
		"classifier.2 (Dropout)                   [1, 4096] ",
		"Total params: 138,365,992", "Total MACs: 15,470,264,320",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 138357544: "138,357,544", -1234: "-1,234"} {
		if got := Group(n); got != want {
			t.Errorf("Group(%d) = %s, want %s", n, got, want)
		}
	}
}

// An int8 model's fused ReLUs get back their torchvision module index, so
// summary of an int8-only file prints print(model)'s indices: the ReLUs of
// the int8 model's architecture are the float model's, name for name, for
// VGG (conv, ReLU), VGG_bn (conv, BatchNorm folded away, ReLU) and the
// classifier (Linear, ReLU, Dropout dropped).
func TestQModelArchitectureReLUIndices(t *testing.T) {
	for _, arch := range []string{"vgg11", "vgg11_bn", "vgg16"} {
		m, err := VGG(arch, Shape{C: 3, H: 32, W: 32}, 10)
		if err != nil {
			t.Fatal(err)
		}
		q, err := RandomQModel(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		a, err := q.Architecture()
		if err != nil {
			t.Fatal(err)
		}
		relus := func(m *Model) []string {
			var names []string
			for _, l := range m.Layers {
				if l.Kind == ReLU {
					names = append(names, l.Name)
				}
			}
			return names
		}
		want, got := relus(m), relus(a)
		if !slices.Equal(got, want) {
			t.Errorf("%s: int8 ReLUs %v, want the float model's %v", arch, got, want)
		}
		for _, l := range a.Layers {
			if l.Kind == ReLU && l.Functional {
				t.Errorf("%s: %s is functional: print(model) would show it", arch, l.Name)
			}
		}
	}
}
