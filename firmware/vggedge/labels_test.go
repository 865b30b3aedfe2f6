package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/firmware/mqtt"
	"github.com/vggedge/vggedge/firmware/mqtt/mqtttest"
	"github.com/vggedge/vggedge/firmware/output"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/labels"
	"github.com/vggedge/vggedge/quant/torchio"
)

// tiny1kArch is a small VGG-style model with ImageNet's 1000 outputs, so
// that quantize gives it ImageNet's labels in seconds.
const tiny1kArch = `{"name": "tiny1k", "input": [3, 32, 32], "features": [8, "M", 16, "M"], "avgpool": [1, 1], "classifier": [1000]}`

// writeTiny1k writes the architecture file and random torchvision-named
// weights for it (a .safetensors file, as a user would have). boost adds
// to the last layer's bias of some classes, so that they win whatever the
// picture.
func writeTiny1k(t *testing.T, dir string, boost map[int]float32) (arch, weights string) {
	t.Helper()
	arch = filepath.Join(dir, "tiny1k.json")
	if err := os.WriteFile(arch, []byte(tiny1kArch), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := infer.Build(arch, infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var ts []*torchio.Tensor
	randn := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	for _, l := range m.Layers {
		switch l.Kind {
		case infer.Conv2d:
			ts = append(ts, &torchio.Tensor{Name: l.Name + ".weight", Shape: []int{l.Out, l.In, l.KH, l.KW}, Data: randn(l.Out*l.In*l.KH*l.KW, 0.3)},
				&torchio.Tensor{Name: l.Name + ".bias", Shape: []int{l.Out}, Data: randn(l.Out, 0.05)})
		case infer.Linear:
			bias := randn(l.Out, 0.05)
			for i, b := range boost {
				bias[i] += b
			}
			ts = append(ts, &torchio.Tensor{Name: l.Name + ".weight", Shape: []int{l.Out, l.In}, Data: randn(l.Out*l.In, 0.3)},
				&torchio.Tensor{Name: l.Name + ".bias", Shape: []int{l.Out}, Data: bias})
		}
	}
	weights = filepath.Join(dir, "tiny1k.safetensors")
	f, err := os.Create(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := torchio.WriteSafetensors(f, ts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return arch, weights
}

// writeDigitFolder writes an ImageFolder tree: for each class folder,
// perClass real MNIST test digits as 40x40 colour JPEGs.
func writeDigitFolder(t *testing.T, dir string, classes []string, perClass int) {
	t.Helper()
	imgs, _, err := camera.LoadIDX(gomnistDir(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for ci, c := range classes {
		if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < perClass; j++ {
			px := imgs.Image(k)
			k++
			img := image.NewRGBA(image.Rect(0, 0, 40, 40))
			for y := 0; y < 40; y++ {
				for x := 0; x < 40; x++ {
					v := px[(y*imgs.H/40)*imgs.W+x*imgs.W/40]
					img.Set(x, y, color.RGBA{v, uint8(255 - v), uint8(60 * ci), 255})
				}
			}
			f, err := os.Create(filepath.Join(dir, c, fmt.Sprintf("img%d.jpg", j)))
			if err != nil {
				t.Fatal(err)
			}
			if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
}

// A 1000-class model imported from torchvision-named weights gets
// ImageNet's labels (info says so), and eval on an ImageFolder in
// ImageNet's own layout (val/n01440764/…) maps each WordNet-id folder to
// its class: the model always ranks 281 (tabby), 1 and 0 first, so every
// image is in the top 5 of its class and those of n02123045 are the top 1
// — a mapping by position (0, 1, 2) would score 6/9 and 0/9 — and eval's
// figures equal those computed here against classes 0, 1 and 281.
func TestQuantizeEvalImageNetFolders(t *testing.T) {
	dir := t.TempDir()
	arch, weights := writeTiny1k(t, dir, map[int]float32{281: 300, 1: 200, 0: 100})
	val := filepath.Join(dir, "val")
	wnids := []string{"n01440764", "n01443537", "n02123045"}
	want := []int{0, 1, 281}
	writeDigitFolder(t, val, wnids, 3)
	model := filepath.Join(dir, "tiny1k.vgm")
	code, out, errOut := runCLI(t, "quantize", "--arch", arch, "--weights", weights, "--calib", val, "--samples", "9", "--out", model)
	if code != exitOK {
		t.Fatalf("quantize: exit %d: %s", code, errOut)
	}

	code, out, errOut = runCLI(t, "info", "--model", model)
	if code != exitOK || !strings.Contains(out, "labels     1000, ImageNet-1k (torchvision's names; WordNet ids and synonyms match them): tench, goldfish, great white shark,") {
		t.Errorf("info: exit %d, %s\n%s", code, errOut, out)
	}
	code, out, _ = runCLI(t, "info", "--model", model, "--json")
	var info struct {
		Labels   []string `json:"labels"`
		LabelsOf string   `json:"labels_of"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil || info.LabelsOf != "imagenet-1k" || len(info.Labels) != 1000 || info.Labels[281] != "tabby" {
		t.Errorf("info --json: exit %d, %v, labels_of %q, %d labels", code, err, info.LabelsOf, len(info.Labels))
	}

	code, out, errOut = runCLI(t, "eval", "--model", model, "--data", val, "--json", "--threads", "1")
	if code != exitOK {
		t.Fatalf("eval on WordNet-id folders: exit %d: %s", code, errOut)
	}
	var res evalResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	// The same images through the model here, against the classes the
	// folders name.
	f, err := openModel(model)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := camera.OpenDataset(val, "t10k", f.Int8.Input, f.Int8.Meta.Spec)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := infer.NewSession(f.Int8)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	pix := make([]byte, f.Int8.Input.Elems())
	top1, top5 := 0, 0
	for i := 0; i < ds.Len(); i++ {
		class, err := ds.Sample(i, pix)
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.SetPixels(pix); err != nil {
			t.Fatal(err)
		}
		logits, err := sess.Run()
		if err != nil {
			t.Fatal(err)
		}
		rank := rankOf(logits, want[class])
		if rank == 0 {
			top1++
		}
		if rank < 5 {
			top5++
		}
	}
	if res.Samples != 9 || res.Top1 != float64(top1)/9 || res.Top5 != float64(top5)/9 || top1 != 3 || top5 != 9 {
		t.Errorf("eval: %d samples, top-1 %v, top-5 %v; here %d/9 and %d/9; want 9 samples, 3/9 and 9/9", res.Samples, res.Top1, res.Top5, top1, top5)
	}

	// A folder that names no class is a one-line error naming it.
	bad := filepath.Join(dir, "bad")
	writeDigitFolder(t, bad, []string{"n01440764", "n09999999"}, 1)
	code, _, errOut = runCLI(t, "eval", "--model", model, "--data", bad)
	if code != exitBadInput || !strings.Contains(errOut, `dataset class folder "n09999999" is not one of the model's 1000 labels (ImageNet-1k's: a name, a synonym or a WordNet id`) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("eval with an unknown folder: exit %d, %q", code, errOut)
	}
}

// Class folders map to the model's labels by label, part, synonym or
// WordNet id, never by position.
func TestLabelMap(t *testing.T) {
	in := labels.ImageNetNames()
	for _, tt := range []struct {
		classes, model []string
		want           []int
		err            string
	}{
		{[]string{"n01440764", "n01443537", "n02123045", "n15075141"}, in, []int{0, 1, 281, 999}, ""},
		{[]string{"golden_retriever", "tabby cat", "toilet tissue"}, in, []int{207, 281, 999}, ""},
		{[]string{"grass snake"}, in, nil, `dataset class folder "grass snake" names 2 of the model's labels ("green snake", "garter snake")`},
		{[]string{"cat"}, in, nil, `dataset class folder "cat" is not one of the model's 1000 labels (ImageNet-1k's: a name, a synonym or a WordNet id such as n01440764); close: tabby (tabby, tabby cat)`},
		{[]string{"3", "7"}, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, []int{3, 7}, ""},
		{[]string{"Dog", "person"}, []string{"person", "tabby, tabby cat", "dog"}, []int{2, 0}, ""},
		{[]string{"n01440764"}, []string{"person", "dog"}, nil, `dataset class folder "n01440764" is not one of the model's 2 labels`},
	} {
		m, err := labelMap(tt.classes, tt.model)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.classes, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.classes, err)
			continue
		}
		for i, w := range tt.want {
			if got := m(i); got != w {
				t.Errorf("%q: class %d → %d, want %d", tt.classes, i, got, w)
			}
		}
	}
}

// --labels takes text, a JSON array or imagenet_class_index.json; a
// 1000-class import without --labels gets ImageNet's, a 10-class one
// 0..9; a count that does not fit is an error naming the file.
func TestQuantizeLabelsFlag(t *testing.T) {
	dir := t.TempDir()
	arch, weights := writeTiny1k(t, dir, nil)
	calib := filepath.Join(dir, "calib")
	writeDigitFolder(t, calib, []string{"a", "b"}, 1)
	var idx strings.Builder
	idx.WriteString("{")
	for i, c := range labels.ImageNet() {
		fmt.Fprintf(&idx, "%s%q: [%q, %q]", map[bool]string{true: "", false: ", "}[i == 0], fmt.Sprint(i), c.WNID, strings.ReplaceAll(c.Name, " ", "_"))
	}
	idx.WriteString("}")
	files := map[string]string{
		"imagenet_class_index.json": idx.String(),
		"three.json":                `["person", "tabby, tabby cat", "dog"]`,
		"three.txt":                 "person\ntabby, tabby cat\ndog\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		labels string
		first  string // labels[0] and [281]
		tabby  string
		err    string
	}{
		{"", "tench", "tabby", ""},
		{"imagenet_class_index.json", "tench", "tabby", ""},
		{"three.json", "", "", "--labels " + filepath.Join(dir, "three.json") + ": 3 labels for the model's 1000 outputs"},
		{"three.txt", "", "", "--labels " + filepath.Join(dir, "three.txt") + ": 3 labels for the model's 1000 outputs"},
		{"missing.txt", "", "", "--labels: labels: open " + filepath.Join(dir, "missing.txt")},
	} {
		out := filepath.Join(dir, "m-"+tt.labels+".vgm")
		args := []string{"quantize", "--arch", arch, "--weights", weights, "--calib", calib, "--samples", "2", "--out", out}
		if tt.labels != "" {
			args = append(args, "--labels", filepath.Join(dir, tt.labels))
		}
		code, _, errOut := runCLI(t, args...)
		if tt.err != "" {
			if code != exitBadInput || !strings.Contains(errOut, tt.err) {
				t.Errorf("--labels %s: exit %d, %q; want 2 and %q", tt.labels, code, errOut, tt.err)
			}
			continue
		}
		if code != exitOK {
			t.Fatalf("--labels %s: exit %d: %s", tt.labels, code, errOut)
		}
		f, err := openModel(out)
		if err != nil {
			t.Fatal(err)
		}
		ls := f.Int8.Meta.Labels
		if len(ls) != 1000 || ls[0] != tt.first || strings.ReplaceAll(ls[281], "_", " ") != tt.tabby || !labels.IsImageNet(ls) {
			t.Errorf("--labels %q: %d labels, [0] %q, [281] %q", tt.labels, len(ls), ls[0], ls[281])
		}
	}
}

// The live path end to end: a model with ImageNet's labels that always
// sees a tabby, frames from an ImageFolder of WordNet-id folders, and
// --mqtt-when 'tabby cat' (a synonym; the label is "tabby") or a YAML
// when: item holding the whole synonym list with its comma. One event
// fires, "appeared tabby"; a watched label that never scores fires none;
// each frame's truth is its folder's class, not the label at the folder's
// position.
func TestRunWhenImageNetSynonym(t *testing.T) {
	dir := t.TempDir()
	arch, weights := writeTiny1k(t, dir, map[int]float32{281: 300})
	val := filepath.Join(dir, "val")
	writeDigitFolder(t, val, []string{"n01440764", "n01443537", "n02123045"}, 2)
	model := filepath.Join(dir, "tiny1k.vgm")
	if code, _, errOut := runCLI(t, "quantize", "--arch", arch, "--weights", weights, "--calib", val, "--samples", "6", "--out", model); code != exitOK {
		t.Fatalf("quantize: exit %d: %s", code, errOut)
	}
	b := mqtttest.Start(t, "127.0.0.1:0")
	conf := writeConfig(t, "mqtt:\n  when: [\"tabby, tabby cat\"]\n")
	for i, tt := range []struct {
		args   []string
		events []string
	}{
		{[]string{"--mqtt-when", "tabby cat"}, []string{"appeared tabby"}},
		{[]string{"--mqtt-when", "Tabby,golden retriever"}, []string{"appeared tabby"}},
		{[]string{"--config", conf}, []string{"appeared tabby"}},
		{[]string{"--mqtt-when", "Egyptian cat"}, nil},
	} {
		id := fmt.Sprintf("cat%d", i)
		out := filepath.Join(dir, id+".jsonl")
		args := append([]string{"--model", model, "--source", "file://" + val, "--threads", "1", "--quiet",
			"--output", "jsonl:" + out, "--mqtt", b.URL().String(), "--device-id", id, "--mqtt-stats-every", "0"}, tt.args...)
		code, _, errOut := runLiveCLI(t, context.Background(), args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", tt.args, code, errOut)
		}
		b.WaitPayload(t, "vggedge/"+id+"/availability", mqtt.PayloadOffline, 0)
		var got []string
		for _, e := range parseEvents(t, b.On("vggedge/"+id+"/event")) {
			got = append(got, *e.State+" "+*e.Label)
		}
		if !slices.Equal(got, tt.events) {
			t.Errorf("%q: events %q, want %q", tt.args, got, tt.events)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var truths []string
		for _, l := range parseJSONLines(t, string(raw)) {
			if l.Truth == nil || l.Top[0].Label != "tabby" {
				t.Fatalf("%q: a frame without truth or not tabby: %+v", tt.args, l)
			}
			truths = append(truths, *l.Truth)
		}
		if want := []string{"tench", "tench", "goldfish", "goldfish", "tabby", "tabby"}; !slices.Equal(truths, want) {
			t.Errorf("%q: truths %q, want %q", tt.args, truths, want)
		}
	}
	// A name that is no label: one line naming the flag, with close ones.
	code, _, errOut := runLiveCLI(t, context.Background(), "--model", model, "--source", "file://"+val, "--quiet",
		"--mqtt", b.URL().String(), "--mqtt-when", "cat")
	if code != exitBadInput || !strings.Contains(errOut, "--mqtt-when cat: not a label of the model; close: tabby (tabby, tabby cat); tiger cat") {
		t.Errorf("--mqtt-when cat: exit %d, %q", code, errOut)
	}
}

// The README's examples name labels the model they run has: the service
// YAML (an ImageNet model) and the --when of the GPIO example resolve
// against ImageNet's labels, through the same config reading and matching
// as run's.
func TestREADMEWhenLabelsExist(t *testing.T) {
	var rf runFlags
	fs := rf.flagSet(io.Discard)
	if _, err := applyConfig(fs, "README.md", []byte(readmeServiceYAML(t))); err != nil {
		t.Fatal(err)
	}
	readme := readFile(t, "../../README.md")
	m := regexp.MustCompile(`vggedge run --model vgg16-int8\.vgm .*--when '([^']+)'`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README has no vggedge run example with --when on an ImageNet model")
	}
	var gpioCmd output.NameList
	gpioCmd.Set(m[1])
	imagenet := labels.ImageNetNames()
	for _, l := range []struct {
		flag  string
		names []string
		want  int
	}{
		{"--when (README command)", gpioCmd, 2},
		{"gpio.when", rf.gpio.When, 2},
		{"mqtt.when", *fs.Lookup("mqtt-when").Value.(*output.NameList), 2},
		{"snapshot.when", *fs.Lookup("snapshot-when").Value.(*output.NameList), 1},
	} {
		got, err := output.ResolveLabels(l.flag, l.names, imagenet)
		if err != nil || len(got) != l.want {
			t.Errorf("README %s %q: %q, %v; want %d labels", l.flag, l.names, got, err, l.want)
		}
	}
}
