package main

import (
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
