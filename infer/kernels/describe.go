package kernels

// Describe names the convolution kernel this CPU runs ("generic" without
// SIMD), for `vggedge info` and `vggedge bench`.
func Describe() string { return kernelName() }
