//go:build purego

package kernels

import "testing"

// Under purego no assembly is built and every kernel is generic.
func TestDispatchPurego(t *testing.T) {
	if got := kernelName(); got != "generic" || simdDot4 != nil {
		t.Errorf("convolution kernel %q, Linear SIMD set %v: want generic under purego", got, simdDot4 != nil)
	}
}
