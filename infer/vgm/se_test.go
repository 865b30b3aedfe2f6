package vgm

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// A model with squeeze-excite, stride-2 1x1 and inserted-layer roles
// survives the model file, float and int8, field for field; and the
// loader names bad squeeze-excite fields and roles.
func TestModelFileSqueezeExciteAndRoles(t *testing.T) {
	m := seNet(3)
	m.Layers[2].Role = infer.RoleRestore
	m.Layers[5].Role = infer.RoleReduce
	q, err := infer.RandomQModel(&infer.Model{Input: m.Input, Layers: []infer.Layer{m.Layers[0], m.Layers[1], m.Layers[2], m.Layers[3], m.Layers[5], m.Layers[6], m.Layers[9], m.Layers[10]}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Splice an int8 squeeze-excite after the expansion (it keeps scale
	// and zero point, so the chain stays valid).
	prev := q.Layers[1]
	se := infer.QLayer{Name: "features.4", Kind: infer.SqueezeExcite, In: 24, Out: 6, InScale: prev.OutScale, OutScale: prev.OutScale,
		InZero: prev.OutZero, OutZero: prev.OutZero, SEWeight: m.Layers[4].Weight, SEBias: m.Layers[4].BiasData,
		SEWeight2: m.Layers[4].Weight2, SEBias2: m.Layers[4].Bias2, Role: infer.RoleLowRank}
	q.Layers = append(q.Layers[:2], append([]infer.QLayer{se}, q.Layers[2:]...)...)
	q.Name, q.Meta = m.Name, m.Meta
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	data := encode(t, &File{Float: m, Int8: q})
	got, err := Decode(data, "se.vgm")
	if err != nil {
		t.Fatal(err)
	}
	want := resolved(t, m)
	if !reflect.DeepEqual(got.Float.Layers, want.Layers) {
		t.Errorf("float layers differ after the round trip")
	}
	if !reflect.DeepEqual(got.Int8.Layers, q.Layers) {
		t.Errorf("int8 layers differ after the round trip")
	}
	if !bytes.Equal(encode(t, got), data) {
		t.Error("re-encoding the decoded file gives other bytes")
	}

	for _, tc := range []struct {
		name, want string
		mut        func(f *File)
	}{
		{"short se_weight2", "int8 layer 2 features.4: se_weight2 has 143 values, want 144", func(f *File) { f.Int8.Layers[2].SEWeight2 = f.Int8.Layers[2].SEWeight2[:143] }},
		{"NaN se_bias", "int8 layer 2 features.4: se_bias[0] NaN: must be finite", func(f *File) {
			f.Int8.Layers[2].SEBias = append([]float32{float32(math.NaN())}, f.Int8.Layers[2].SEBias[1:]...)
		}},
		{"se weights on a conv", "int8 layer 0 features.0: has squeeze-excite weights, but its kind takes none", func(f *File) { f.Int8.Layers[0].SEBias = []float32{1} }},
		{"float short weight2", "float layer 4 features.4: weight2 has 10 values, want 144", func(f *File) { f.Float.Layers[4].Weight2 = make([]float32, 10) }},
		{"weight2 on a conv", "float layer 0 features.0: weight2: a conv2d layer has no such parameter", func(f *File) { f.Float.Layers[0].Weight2 = []float32{1} }},
		{"unknown role", "float layer 2 features.2: role prune: want one of", func(f *File) { f.Float.Layers[2].Role = "prune" }},
		{"int8 unknown role", "int8 layer 2 features.4: role x: want one of", func(f *File) { f.Int8.Layers[2].Role = "x" }},
		{"se scale change", "int8 layer 2 features.4: pooling, ReLU, flatten and squeeze-excite keep scale and zero point", func(f *File) { f.Int8.Layers[2].OutScale *= 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm := *m
			fm.Layers = append([]infer.Layer(nil), m.Layers...)
			qm := *q
			qm.Layers = append([]infer.QLayer(nil), q.Layers...)
			f := &File{Float: &fm, Int8: &qm}
			tc.mut(f)
			checkLoadErr(t, rawEncode(t, f), tc.want)
		})
	}
}
