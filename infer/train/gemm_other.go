//go:build !amd64 || purego

package train

// kernelF32 is nil: every platform but amd64 uses the portable kernel.
var kernelF32 func(kc int, a, b, c []float32, ldc int)
