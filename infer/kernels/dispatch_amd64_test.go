//go:build gc && !purego

package kernels

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// The AVX2 kernels are chosen exactly when the CPU has AVX2
// (GODEBUG=cpu.avx2=off clears it and must give the generic kernels).
func TestDispatchAVX2(t *testing.T) {
	want := "generic"
	if cpu.X86.HasAVX2 {
		want = "avx2"
		if hasVNNI() {
			want = "avx512vnni"
		}
	}
	if got := kernelName(); got != want {
		t.Errorf("convolution kernel %q, want %q (HasAVX2 %v)", got, want, cpu.X86.HasAVX2)
	}
	if (simdDot4 != nil) != cpu.X86.HasAVX2 {
		t.Errorf("Linear kernel set: %v, HasAVX2 %v", simdDot4 != nil, cpu.X86.HasAVX2)
	}
}
