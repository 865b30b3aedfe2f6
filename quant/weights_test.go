package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/quant/internal/torchsave"
	"github.com/vggedge/vggedge/quant/torchio"
)

// torchvisionVGGState lists the state_dict of torchvision's VGG — names in
// state_dict order and shapes — written from torchvision/models/vgg.py
// (make_layers; classifier Linear(512·7·7, w0), ReLU, Dropout, Linear(w0,
// w1), ReLU, Dropout, Linear(w1, classes)) independently of LoadWeights, so
// the test checks LoadWeights' expectations rather than restating them.
func torchvisionVGGState(cfg []int, bn bool, w0, w1, classes int) ([]string, map[string][]int) {
	var names []string
	shapes := map[string][]int{}
	add := func(name string, shape ...int) {
		names = append(names, name)
		shapes[name] = shape
	}
	i, in := 0, 3
	for _, v := range cfg {
		if v < 0 {
			i++ // MaxPool2d
			continue
		}
		p := "features." + itoa(i)
		add(p+".weight", v, in, 3, 3)
		add(p+".bias", v)
		i++
		if bn {
			p = "features." + itoa(i)
			add(p+".weight", v)
			add(p+".bias", v)
			add(p+".running_mean", v)
			add(p+".running_var", v)
			add(p + ".num_batches_tracked")
			i++
		}
		i++ // ReLU
		in = v
	}
	add("classifier.0.weight", w0, 512*7*7)
	add("classifier.0.bias", w0)
	add("classifier.3.weight", w1, w0)
	add("classifier.3.bias", w1)
	add("classifier.6.weight", classes, w1)
	add("classifier.6.bias", classes)
	return names, shapes
}

func itoa(i int) string { return strconv.Itoa(i) }

var (
	cfgVGG11 = []int{64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1}
	cfgVGG16 = []int{64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1}
)

// narrowVGG is torchvision's vgg11_bn with a 32-wide classifier, so tests
// carry every layer name and BN field without 400 MB of FC weights.
func narrowVGG(t *testing.T, name string, classes int) *infer.Model {
	t.Helper()
	m, err := infer.VGG(name, infer.Shape{C: 3, H: 32, W: 32}, classes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Name {
		case "classifier.0", "classifier.3":
			l.Out = 32
		}
		if l.Kind == infer.Linear {
			l.In = 0
		}
	}
	if _, err := m.Resolve(); err != nil {
		t.Fatal(err)
	}
	return m
}

func randomState(rng *rand.Rand, names []string, shapes map[string][]int) map[string]*torchio.Tensor {
	ts := map[string]*torchio.Tensor{}
	for _, t := range randTensors(rng, shapes, names) {
		if strings.HasSuffix(t.Name, "running_var") {
			for i, v := range t.Data {
				t.Data[i] = float32(math.Abs(float64(v))) + 0.1
			}
		}
		ts[t.Name] = t
	}
	return ts
}

func TestTorchvisionStateDictSize(t *testing.T) {
	// The naming helper is torchvision's: its parameter counts are the
	// published ones (num_batches_tracked is a buffer, not a parameter).
	for _, c := range []struct {
		cfg  []int
		bn   bool
		want int
	}{{cfgVGG11, true, 132_863_336 + 5_504}, {cfgVGG16, false, 138_357_544}} {
		names, shapes := torchvisionVGGState(c.cfg, c.bn, 4096, 4096, 1000)
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".weight") || strings.HasSuffix(name, ".bias") {
				n += numelInt(shapes[name]) // running stats are buffers
			}
		}
		if n != c.want {
			t.Errorf("%d parameters, want %d", n, c.want)
		}
	}
}

func numelInt(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func TestLoadWeightsVGG11BN(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	names, shapes := torchvisionVGGState(cfgVGG11, true, 32, 32, 10)
	ts := randomState(rng, names, shapes)
	m := narrowVGG(t, "vgg11_bn", 10)
	if m.HasWeights() {
		t.Fatal("fresh model has weights")
	}
	if err := LoadWeights(m, ts); err != nil {
		t.Fatal(err)
	}
	if !m.HasWeights() {
		t.Fatal("HasWeights false after LoadWeights")
	}
	nBN := 0
	for _, l := range m.Layers {
		switch l.Kind {
		case infer.Conv2d, infer.Linear:
			if &l.Weight[0] != &ts[l.Name+".weight"].Data[0] || &l.BiasData[0] != &ts[l.Name+".bias"].Data[0] {
				t.Errorf("%s: weights not the tensors'", l.Name)
			}
		case infer.BatchNorm2d:
			nBN++
			for field, got := range map[string][]float32{"weight": l.Gamma, "bias": l.Beta, "running_mean": l.Mean, "running_var": l.Var} {
				if &got[0] != &ts[l.Name+"."+field].Data[0] {
					t.Errorf("%s.%s not assigned", l.Name, field)
				}
			}
		}
	}
	if nBN != 8 {
		t.Errorf("%d BN layers, want 8", nBN)
	}
	if _, err := infer.FoldBatchNorm(m); err != nil {
		t.Errorf("FoldBatchNorm after LoadWeights: %v", err)
	}

	// num_batches_tracked is optional.
	m = narrowVGG(t, "vgg11_bn", 10)
	for name := range ts {
		if strings.HasSuffix(name, "num_batches_tracked") {
			delete(ts, name)
		}
	}
	if err := LoadWeights(m, ts); err != nil {
		t.Errorf("without num_batches_tracked: %v", err)
	}
}

// TestLoadWeightsFromFiles goes through both file formats as a user would:
// the same state_dict, saved as torch.save and as safetensors, loads to
// the same model. num_batches_tracked is an int64 storage, as in PyTorch.
func TestLoadWeightsFromFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	names, shapes := torchvisionVGGState(cfgVGG11, true, 32, 32, 10)
	state := randomState(rng, names, shapes)
	var ordered []*torchio.Tensor
	for _, n := range names {
		ordered = append(ordered, state[n])
	}
	dir := t.TempDir()

	spec, err := torchsave.FromTensors(saveTensors(ordered))
	if err != nil {
		t.Fatal(err)
	}
	spec.Archive, spec.Byteorder, spec.Metadata = "archive", true, true
	for i, tt := range spec.Tensors {
		if strings.HasSuffix(tt.Name, "num_batches_tracked") {
			spec.Storages[i] = torchsave.Storage{Class: "LongStorage", Numel: 1, Data: binary.LittleEndian.AppendUint64(nil, 12345)}
		}
	}
	pth := filepath.Join(dir, "vgg11_bn.pth")
	if err := torchsave.WriteFile(pth, spec); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "vgg11_bn.safetensors")
	f, err := os.Create(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := torchio.WriteSafetensors(f, ordered); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var models []*infer.Model
	for _, path := range []string{pth, st} {
		ts, sum, err := torchio.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(sum) != 64 {
			t.Errorf("%s: sha256 %q", path, sum)
		}
		if nbt := ts["features.1.num_batches_tracked"]; path == pth && (nbt == nil || len(nbt.Shape) != 0 || nbt.Data[0] != 12345) {
			t.Errorf("num_batches_tracked read as %+v", nbt)
		}
		m := narrowVGG(t, "vgg11_bn", 10)
		if err := LoadWeights(m, ts); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		models = append(models, m)
	}
	for i := range models[0].Layers {
		a, b := &models[0].Layers[i], &models[1].Layers[i]
		for _, pair := range [][2][]float32{{a.Weight, b.Weight}, {a.BiasData, b.BiasData}, {a.Gamma, b.Gamma}, {a.Var, b.Var}} {
			if !bitsEqual(pair[0], pair[1]) {
				t.Fatalf("%s differs between the .pth and the .safetensors", a.Name)
			}
		}
	}
}

func TestLoadWeightsErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	names, shapes := torchvisionVGGState(cfgVGG11, true, 32, 32, 10)
	good := randomState(rng, names, shapes)
	// edit copies the map, not the tensors: a case that changes a tensor
	// takes its own copy with mut, keeping the test light.
	edit := func(f func(ts map[string]*torchio.Tensor)) map[string]*torchio.Tensor {
		ts := map[string]*torchio.Tensor{}
		for k, v := range good {
			ts[k] = v
		}
		f(ts)
		return ts
	}
	mut := func(ts map[string]*torchio.Tensor, name string) *torchio.Tensor {
		c := *ts[name]
		c.Shape = append([]int(nil), c.Shape...)
		c.Data = append([]float32(nil), c.Data...)
		ts[name] = &c
		return &c
	}
	cases := []struct {
		name string
		ts   map[string]*torchio.Tensor
		want []string
	}{
		{"missing BN field", edit(func(ts map[string]*torchio.Tensor) { delete(ts, "features.5.running_var") }),
			[]string{"features.5.running_var: missing", "[128]"}},
		{"missing conv bias", edit(func(ts map[string]*torchio.Tensor) { delete(ts, "features.0.bias") }),
			[]string{"features.0.bias: missing"}},
		{"extra tensors", edit(func(ts map[string]*torchio.Tensor) {
			ts["features.2.weight"] = &torchio.Tensor{Name: "features.2.weight", Shape: []int{1}, Data: []float32{1}}
			ts["fc.weight"] = &torchio.Tensor{Name: "fc.weight", Shape: []int{1}, Data: []float32{1}}
		}), []string{"features.2.weight: not used", "fc.weight: not used"}},
		{"wrong conv shape", edit(func(ts map[string]*torchio.Tensor) {
			ts["features.0.weight"] = &torchio.Tensor{Name: "features.0.weight", Shape: []int{64, 3, 3}, Data: make([]float32, 576)}
		}), []string{"features.0.weight: shape [64, 3, 3]", "needs [64, 3, 3, 3]"}},
		{"transposed linear", edit(func(ts map[string]*torchio.Tensor) {
			w := mut(ts, "classifier.6.weight")
			w.Shape = []int{w.Shape[1], w.Shape[0]}
		}), []string{"classifier.6.weight: shape [32, 10]", "linear 32→10", "needs [10, 32]"}},
		{"data/shape mismatch", edit(func(ts map[string]*torchio.Tensor) { b := mut(ts, "features.1.bias"); b.Data = b.Data[:3] }),
			[]string{"features.1.bias: 3 values"}},
		{"NaN", edit(func(ts map[string]*torchio.Tensor) { mut(ts, "classifier.6.bias").Data[4] = float32(math.NaN()) }),
			[]string{"classifier.6.bias: value 4 is NaN"}},
		{"Inf", edit(func(ts map[string]*torchio.Tensor) { mut(ts, "features.8.weight").Data[0] = float32(math.Inf(-1)) }),
			[]string{"features.8.weight: value 0 is -Inf"}},
		{"negative variance", edit(func(ts map[string]*torchio.Tensor) { mut(ts, "features.9.running_var").Data[2] = -1 }),
			[]string{"features.9.running_var: value 2 is -1"}},
		{"DataParallel names", func() map[string]*torchio.Tensor {
			ts := map[string]*torchio.Tensor{}
			for k, v := range good {
				ts["module."+k] = v
			}
			return ts
		}(), []string{"module.features.0.weight: not used", "nn.DataParallel", "features.0.weight: missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := narrowVGG(t, "vgg11_bn", 10)
			err := LoadWeights(m, c.ts)
			wantErr(t, err, c.want...)
			if m.HasWeights() || m.Layers[0].Weight != nil {
				t.Error("model changed by a failed LoadWeights")
			}
		})
	}
	if err := LoadWeights(nil, good); err == nil {
		t.Error("nil model: no error")
	}
}

// TestLoadWeightsTorchvisionShapes checks LoadWeights' expected shapes for
// the real, full-size vgg11_bn and vgg16 against torchvision's state_dict
// without allocating 500 MB: every tensor shares one zero buffer, and the
// three classifier weights carry no data at all, so the only complaints
// must be about their values — no missing, unused or mis-shaped entry.
func TestLoadWeightsTorchvisionShapes(t *testing.T) {
	zeros := make([]float32, 512*512*3*3)
	for _, c := range []struct {
		arch string
		cfg  []int
		bn   bool
	}{{"vgg11_bn", cfgVGG11, true}, {"vgg16", cfgVGG16, false}} {
		names, shapes := torchvisionVGGState(c.cfg, c.bn, 4096, 4096, 1000)
		ts := map[string]*torchio.Tensor{}
		for _, n := range names {
			ts[n] = &torchio.Tensor{Name: n, Shape: shapes[n]}
			if !strings.HasPrefix(n, "classifier.") || !strings.HasSuffix(n, ".weight") {
				ts[n].Data = zeros[:numelInt(shapes[n])]
			}
		}
		m, err := infer.VGG(c.arch, infer.DefaultInput, 1000)
		if err != nil {
			t.Fatal(err)
		}
		err = LoadWeights(m, ts)
		if err == nil {
			t.Fatalf("%s: empty tensors accepted", c.arch)
		}
		_, list, _ := strings.Cut(err.Error(), c.arch+": ")
		lines := strings.Split(list, "; ")
		want := []string{
			"classifier.0.weight: 0 values for shape [4096, 25088]",
			"classifier.3.weight: 0 values for shape [4096, 4096]",
			"classifier.6.weight: 0 values for shape [1000, 4096]",
		}
		if len(lines) != len(want) {
			t.Fatalf("%s: %v", c.arch, err)
		}
		for i, w := range want {
			if strings.TrimSpace(lines[i]) != w {
				t.Errorf("%s: %q, want %q", c.arch, lines[i], w)
			}
		}
	}
}

// The helpers below are the importer tests' (quant/torchio), repeated for
// the tests here that go through files.

func randTensors(rng *rand.Rand, shapes map[string][]int, order []string) []*torchio.Tensor {
	var ts []*torchio.Tensor
	for _, name := range order {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		t := &torchio.Tensor{Name: name, Shape: shape, Data: make([]float32, n)}
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		ts = append(ts, t)
	}
	return ts
}

// saveTensors hands ts to the test writer (torchsave.Tensor has
// torchio.Tensor's fields, so the pointers convert).
func saveTensors(ts []*torchio.Tensor) []*torchsave.Tensor {
	out := make([]*torchsave.Tensor, len(ts))
	for i, t := range ts {
		out[i] = (*torchsave.Tensor)(t)
	}
	return out
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// A file that does not fit says what would: the _bn variant, the other
// class count, or the variant without BatchNorm.
func TestLoadWeightsHints(t *testing.T) {
	for _, c := range []struct {
		name      string
		arch      string
		fileBN    bool
		classes   int
		want, not string
	}{
		{"bn file into vgg11", "vgg11", true, 1000, "--arch vgg11_bn?", "--classes"},
		{"plain file into vgg11_bn", "vgg11_bn", false, 1000, "--arch vgg11?", "--classes"},
		{"10 classes into 1000", "vgg11", false, 10, "classifier.6 has 10 outputs in the file: --classes 10?", "--arch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			names, shapes := torchvisionVGGState(cfgVGG11, c.fileBN, 4096, 4096, c.classes)
			ts := map[string]*torchio.Tensor{}
			zeros := make([]float32, 512*512*3*3) // the hints read shapes; the big Linears carry too few values, which is one more complaint
			for _, n := range names {
				ts[n] = &torchio.Tensor{Name: n, Shape: shapes[n], Data: zeros[:min(numelInt(shapes[n]), len(zeros))]}
			}
			m, err := infer.VGG(c.arch, infer.DefaultInput, 1000)
			if err != nil {
				t.Fatal(err)
			}
			err = LoadWeights(m, ts)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v: want one line with %q and without %q", err, c.want, c.not)
			}
		})
	}
}
