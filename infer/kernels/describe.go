package kernels

// Describe names the convolution kernel this CPU runs ("generic" without
// SIMD), for `vggedge info` and `vggedge bench`; "+winograd" when 3×3
// stride-1 layers take the Winograd path.
func Describe() string {
	if simdGemm != nil && simdGemm.winograd {
		return kernelName() + "+winograd"
	}
	return kernelName()
}
