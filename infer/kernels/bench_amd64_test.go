//go:build gc && !purego

package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkConv2dVGG16 compares the generic and the dispatched (AVX2)
// convolution on each distinct VGG16 conv shape at 224×224, plus a 1x1
// and a stride-2 layer; GMAC/s is the number to watch.
func BenchmarkConv2dVGG16(b *testing.B) {
	for _, tc := range []struct{ c, hw, o, k, stride int }{
		{3, 224, 64, 3, 1}, {64, 224, 64, 3, 1}, {64, 112, 128, 3, 1}, {128, 112, 128, 3, 1},
		{128, 56, 256, 3, 1}, {256, 56, 256, 3, 1}, {256, 28, 512, 3, 1}, {512, 28, 512, 3, 1},
		{512, 14, 512, 3, 1}, {256, 56, 64, 1, 1}, {128, 56, 128, 3, 2},
	} {
		for _, kernel := range []string{"generic", kernelName()} {
			name := fmt.Sprintf("%dx%d-%d-k%ds%d/%s", tc.c, tc.hw, tc.o, tc.k, tc.stride, kernel)
			b.Run(name, func(b *testing.B) {
				if kernel == "generic" {
					g, d := simdGemm, simdDot4
					simdGemm, simdDot4 = nil, nil
					defer func() { simdGemm, simdDot4 = g, d }()
				}
				benchConv(b, tc.c, tc.hw, tc.o, tc.k, tc.stride)
			})
		}
	}
}

// BenchmarkLinearVGG16 is VGG16's first Linear layer (25088 → 4096),
// generic and dispatched.
func BenchmarkLinearVGG16(b *testing.B) {
	for _, kernel := range []string{"generic", kernelName()} {
		b.Run(kernel, func(b *testing.B) {
			if kernel == "generic" {
				d := simdDot4
				simdDot4 = nil
				defer func() { simdDot4 = d }()
			}
			benchLinear(b, 25088, 4096)
		})
	}
}
