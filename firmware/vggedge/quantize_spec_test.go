package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// A 3-channel import resizes the shorter side to int(S/0.875) before the
// centre crop, as torchvision's eval transform does for an S×S model
// (Resize(int(S/0.875)), CenterCrop(S)), at every input size.
func TestApplySpecResizeFollowsInput(t *testing.T) {
	for _, tc := range []struct{ s, want int }{{32, 36}, {64, 73}, {128, 146}, {224, 256}, {320, 365}} {
		m, err := infer.VGG("vgg11", infer.Shape{C: 3, H: tc.s, W: tc.s}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := applySpec(m, "", "", "", ""); err != nil {
			t.Fatal(err)
		}
		if got := m.Meta.Spec.ResizeShorter; got != tc.want || got != int(float64(tc.s)/0.875) {
			t.Errorf("input %d: resize shorter side to %d, want %d", tc.s, got, tc.want)
		}
		if m.Meta.Spec.Resize != "resize-crop" {
			t.Errorf("input %d: resize %q", tc.s, m.Meta.Spec.Resize)
		}
	}
}

// --resize-filter pil stores PIL's filter in the model's spec (info shows
// it; eval and run preprocess with it); without the flag nothing is
// stored and the file is as before.
func TestQuantizeResizeFilter(t *testing.T) {
	dir := gomnistDir(t)
	for _, tc := range []struct {
		flag []string
		want string
	}{
		{nil, ""},
		{[]string{"--resize-filter", "pil"}, infer.ResizeBilinearAntialias},
		{[]string{"--resize-filter", "bilinear-antialias"}, infer.ResizeBilinearAntialias},
		{[]string{"--resize-filter", "default"}, ""},
	} {
		out := filepath.Join(t.TempDir(), "d.vgm")
		args := append([]string{"quantize", "--model", "digits-f32", "--calib", "idx:" + dir, "--samples", "20", "--out", out}, tc.flag...)
		if code, _, errOut := runCLI(t, args...); code != exitOK {
			t.Fatalf("%v: quantize exit %d: %s", tc.flag, code, errOut)
		}
		code, js, errOut := runCLI(t, "info", "--model", out, "--json")
		if code != exitOK {
			t.Fatalf("%v: info exit %d: %s", tc.flag, code, errOut)
		}
		var info struct {
			Spec struct {
				ResizeFilter string `json:"resize_filter"`
			} `json:"spec"`
		}
		if err := json.Unmarshal([]byte(js), &info); err != nil {
			t.Fatal(err)
		}
		if info.Spec.ResizeFilter != tc.want {
			t.Errorf("%v: info --json resize_filter %q, want %q", tc.flag, info.Spec.ResizeFilter, tc.want)
		}
		_, text, _ := runCLI(t, "info", "--model", out)
		if got := strings.Contains(text, "filter "+infer.ResizeBilinearAntialias); got != (tc.want != "") {
			t.Errorf("%v: info text mentions the filter: %v\n%s", tc.flag, got, text)
		}
	}
}
