package infer

import (
	"fmt"
	"math"
	"reflect"
	"testing"
)

// A random model follows its architecture: BatchNorm and Dropout dropped,
// ReLUs fused, the first layer on u8 pixels, the last Linear writing
// logits.
func TestRandomQModelStructure(t *testing.T) {
	if testing.Short() {
		t.Skip("VGG11 weights (133M) in -short mode")
	}
	m, err := VGG("vgg11_bn", Shape{3, 32, 32}, 10)
	if err != nil {
		t.Fatal(err)
	}
	before := m.Clone()
	q, err := RandomQModel(m, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, before) {
		t.Error("RandomQModel modified its architecture")
	}
	var kinds []Kind
	for _, l := range q.Layers {
		kinds = append(kinds, l.Kind)
		if (l.Kind == Conv2d || l.Kind == Linear) && l.ReLU == l.Logits {
			t.Errorf("%s: relu %v, logits %v: every layer but the logits has a ReLU in VGG", l.Name, l.ReLU, l.Logits)
		}
	}
	C, P, A, F, L := Conv2d, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear
	want := []Kind{C, P, C, P, C, C, P, C, C, P, C, C, P, A, F, L, L, L}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	first, last := q.Layers[0], q.Layers[len(q.Layers)-1]
	if first.InScale != 1 || first.InZero != -128 || first.Name != "features.0" {
		t.Errorf("first layer %s: in scale %g zero %d, want u8 pixels (1, −128)", first.Name, first.InScale, first.InZero)
	}
	for c, v := range first.PadValue {
		if v != 0 {
			t.Errorf("first layer pad value[%d] = %d, want 0 (pixel 128)", c, v)
		}
	}
	if q.Layers[2].PadValue[0] != int8(q.Layers[2].InZero) {
		t.Errorf("features.4 pads with %d, want its input's zero point %d", q.Layers[2].PadValue[0], q.Layers[2].InZero)
	}
	if !last.Logits || last.Out != 10 {
		t.Errorf("last layer %s: logits %v, %d outputs; want 10 logits", last.Name, last.Logits, last.Out)
	}

}

// The same seed gives the same model, another seed other weights.
func TestRandomQModelDeterministic(t *testing.T) {
	m := sessStack(t)
	q, err := RandomQModel(m, 5)
	if err != nil {
		t.Fatal(err)
	}
	again, err := RandomQModel(m, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q, again) {
		t.Error("the same seed gave a different model")
	}
	other, err := RandomQModel(m, 6)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(q.Layers[0].Weight, other.Layers[0].Weight) {
		t.Error("seeds 5 and 6 gave the same weights")
	}
}

// Activations neither vanish nor saturate: after every convolution or
// Linear, few values clip at 127 (or −128 without ReLU), a ReLU zeroes a
// fair share but not all, and the rest spread over many q steps.
func TestRandomQModelActivations(t *testing.T) {
	for _, m := range append(sessTinyModels(t), sessStack(t)) {
		q, err := RandomQModel(m, 11)
		if err != nil {
			t.Fatal(err)
		}
		acts, _ := sessRef(q, sessPixels(2, q.Input.Elems()))
		for i, a := range acts {
			l := &q.Layers[i]
			if a == nil || (l.Kind != Conv2d && l.Kind != Linear) {
				continue
			}
			var hi, lo, atZero int
			var mean, sd float64
			for _, v := range a {
				hi += b2i(v == 127)
				lo += b2i(v == -128)
				atZero += b2i(int32(v) == l.OutZero)
				mean += float64(v)
			}
			mean /= float64(len(a))
			for _, v := range a {
				sd += (float64(v) - mean) * (float64(v) - mean)
			}
			sd = math.Sqrt(sd / float64(len(a)))
			n := float64(len(a))
			clipped := float64(hi) / n
			if !l.ReLU {
				clipped += float64(lo) / n
			}
			if clipped > 0.03 || sd < 8 || (l.ReLU && (float64(atZero)/n < 0.15 || float64(atZero)/n > 0.85)) {
				t.Errorf("%s %s: %.1f%% clipped, %.0f%% at the zero point, sd %.1f q steps", m.Name, l.Name,
					100*clipped, 100*float64(atZero)/n, sd)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sessStack is a small VGG-like stack: deep enough that a scale error
// would compound.
func sessStack(t testing.TB) *Model {
	m := &Model{Name: "stack", Input: Shape{3, 32, 32}}
	for _, w := range []int{16, 16, -1, 32, 32, -1, 48, 48, 48, -1} {
		if w < 0 {
			m.Layers = append(m.Layers, Layer{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2})
			continue
		}
		m.Layers = append(m.Layers, Layer{Kind: Conv2d, Out: w, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true}, Layer{Kind: ReLU})
	}
	m.Layers = append(m.Layers, Layer{Kind: AdaptiveAvgPool2d, OutH: 2, OutW: 2}, Layer{Kind: Flatten},
		Layer{Kind: Linear, Out: 64, Bias: true}, Layer{Kind: ReLU}, Layer{Kind: Linear, Out: 10, Bias: true})
	for i := range m.Layers {
		m.Layers[i].Name = fmt.Sprintf("l%d", i)
	}
	if _, err := m.Resolve(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRandomQModelErrors(t *testing.T) {
	if _, err := RandomQModel(nil, 1); err == nil {
		t.Error("nil model accepted")
	}
	bad := &Model{Name: "bad", Input: Shape{3, 8, 8}, Layers: []Layer{{Kind: Linear, In: 5, Out: 2}}}
	if _, err := RandomQModel(bad, 1); err == nil {
		t.Error("a model whose shapes do not chain was accepted")
	}
}

// BenchmarkRandomQModelVGG16 is the set-up cost of a VGG16 benchmark
// (138M random weights).
func BenchmarkRandomQModelVGG16(b *testing.B) {
	m, err := VGG("vgg16", DefaultInput, 1000)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if _, err := RandomQModel(m, 1); err != nil {
			b.Fatal(err)
		}
	}
}
