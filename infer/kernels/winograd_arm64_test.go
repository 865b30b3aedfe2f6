//go:build gc && !purego

package kernels

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// Cores without dotprod (qemu -cpu cortex-a72) run 3×3 stride-1 layers on
// the Winograd path with the NEON parts; dotprod cores keep SDOT.
func TestNEONWinogradDispatch(t *testing.T) {
	if !cpu.ARM64.HasASIMD {
		t.Skip("no ASIMD")
	}
	if got, want := simdGemm.winograd, !cpu.ARM64.HasASIMDDP; got != want {
		t.Errorf("%s: winograd %v, want %v (HasASIMDDP %v)", Describe(), got, want, cpu.ARM64.HasASIMDDP)
	}
	if !neonMull.winograd || neonDot.winograd {
		t.Error("the SMULL kernel must take Winograd, the SDOT kernel not")
	}
	if Describe() != kernelName() && simdGemm == &neonDot {
		t.Errorf("sdot path describes itself as %q", Describe())
	}
}
