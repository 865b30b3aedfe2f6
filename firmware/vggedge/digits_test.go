package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

func digitsSpec(t *testing.T) infer.InputSpec {
	t.Helper()
	f, ok, err := models.Open("digits")
	if !ok || err != nil {
		t.Fatalf("embedded digits: %v", err)
	}
	return f.Meta().Spec
}

func evalJSON(t *testing.T, args ...string) evalResult {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"eval", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("eval %v: exit %d: %s", args, code, errOut)
	}
	var r evalResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("eval %v: %v\n%s", args, err, out)
	}
	return r
}

// Issue 3's proof on real data: the embedded float model classifies all
// 10,000 MNIST test digits with top-1 ≥ 0.990, and its int8 version is
// within 0.3 points of it.
func TestEmbeddedDigitsAccuracy(t *testing.T) {
	data := "idx:" + gomnistDir(t)
	f := evalJSON(t, "--model", "digits-f32", "--data", data)
	q := evalJSON(t, "--model", "digits", "--data", data)
	t.Logf("digits-f32 top-1 %.4f top-5 %.4f; digits (int8) top-1 %.4f top-5 %.4f", f.Top1, f.Top5, q.Top1, q.Top5)
	if f.Samples != 10000 || q.Samples != 10000 {
		t.Fatalf("evaluated %d and %d images, want all 10,000", f.Samples, q.Samples)
	}
	if f.Top1 < 0.990 {
		t.Errorf("digits-f32 top-1 %.4f < 0.990", f.Top1)
	}
	if d := f.Top1 - q.Top1; d > 0.003 {
		t.Errorf("int8 top-1 %.4f is %.2f points below float %.4f (limit 0.3)", q.Top1, 100*d, f.Top1)
	}
	if f.Precision != "fp32" || q.Precision != "int8" {
		t.Errorf("precisions %q and %q", f.Precision, q.Precision)
	}
}

// quantize → info → eval → check on the float digits model, with each
// calibration method.
func TestQuantizeCommand(t *testing.T) {
	dir := gomnistDir(t)
	for _, method := range []string{"minmax", "percentile", "entropy"} {
		out := filepath.Join(t.TempDir(), "d-"+method+".vgm")
		code, stdout, errOut := runCLI(t, "quantize", "--model", "digits-f32", "--calib", "idx:"+dir,
			"--samples", "300", "--method", method, "--out", out)
		if code != exitOK {
			t.Fatalf("%s: quantize exit %d: %s", method, code, errOut)
		}
		if !strings.Contains(stdout, "wrote "+out) {
			t.Errorf("%s: quantize says %q", method, stdout)
		}
		code, info, _ := runCLI(t, "info", "--model", out)
		if code != exitOK || !strings.Contains(info, method) || !strings.Contains(info, "300 images") || !strings.Contains(info, "int8") {
			t.Errorf("%s: info exit %d lacks the calibration:\n%s", method, code, info)
		}
		q := evalJSON(t, "--model", out, "--data", "idx:"+dir, "--limit", "1000")
		f := evalJSON(t, "--model", "digits-f32", "--data", "idx:"+dir, "--limit", "1000")
		if math.Abs(f.Top1-q.Top1) > 0.01 {
			t.Errorf("%s: int8 top-1 %.3f vs float %.3f on 1000 images", method, q.Top1, f.Top1)
		}
	}
}

func TestCheckModelFile(t *testing.T) {
	_, jf := checkJSONOf(t, "--model", "digits-f32", "--board", "rpi-zero2w")
	code, jq := checkJSONOf(t, "--model", "digits", "--board", "rpi-zero2w")
	if code != exitOK || !jq.Fits {
		t.Errorf("digits on a Pi Zero 2 W: exit %d", code)
	}
	if jq.MACs != jf.MACs || jq.MACs == 0 || jq.Input[0] != 1 || jq.Input[1] != 28 {
		t.Errorf("int8 MACs %d, float MACs %d, input %v", jq.MACs, jf.MACs, jq.Input)
	}
}

func TestModelFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.vgm")
	if err := os.WriteFile(bad, []byte("\x82\xa6format\xadvggedge-model\xa7version\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.vgm")
	if err := os.WriteFile(junk, []byte("not a model at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"info", "--model", bad},
		{"info", "--model", junk},
		{"eval", "--model", junk, "--data", "idx:" + dir},
		{"check", "--model", bad, "--board", "rpi4-4g"},
		{"info", "--model", filepath.Join(dir, "missing.vgm")},
		{"eval", "--model", "digits", "--data", "idx:" + dir},
		{"quantize", "--model", "digits-f32", "--calib", "idx:" + dir, "--out", filepath.Join(dir, "o.vgm")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitBadInput || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o.vgm")); err == nil {
		t.Error("a failed quantize left an output file")
	}
}

// An ImageFolder dataset (DIR/CLASS/*.png) goes through image decoding,
// resizing and grey conversion; MNIST digits written as PNG files must
// score exactly as the same digits read from the idx files.
func TestEvalImageFolder(t *testing.T) {
	imgs, labels, err := camera.LoadIDX(gomnistDir(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const n = 300
	for i := 0; i < n; i++ {
		g := image.NewGray(image.Rect(0, 0, imgs.W, imgs.H))
		copy(g.Pix, imgs.Image(i))
		class := filepath.Join(dir, strconv.Itoa(int(labels[i])))
		if err := os.MkdirAll(class, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(class, fmt.Sprintf("%05d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, g); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// The folder lists classes in name order, files in name order within:
	// the pixels must be exactly the idx pixels, in that order.
	ds, err := camera.OpenDataset(dir, "", infer.Shape{C: 1, H: imgs.H, W: imgs.W}, digitsSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, imgs.H*imgs.W)
	k := 0
	for class := 0; class < 10; class++ {
		for i := 0; i < n; i++ {
			if int(labels[i]) != class {
				continue
			}
			got, err := ds.Sample(k, pix)
			if err != nil {
				t.Fatal(err)
			}
			if got != class || !bytes.Equal(pix, imgs.Image(i)) {
				t.Fatalf("folder sample %d (digit %d of the idx set): label %d, pixels equal %v", k, i, got, bytes.Equal(pix, imgs.Image(i)))
			}
			k++
		}
	}
	folder := evalJSON(t, "--model", "digits", "--data", dir)
	idx := evalJSON(t, "--model", "digits", "--data", "idx:"+gomnistDir(t), "--limit", strconv.Itoa(n))
	if folder.Samples != n || folder.Top1 != idx.Top1 {
		t.Errorf("ImageFolder: %d samples top-1 %.4f; idx: top-1 %.4f", folder.Samples, folder.Top1, idx.Top1)
	}
}
