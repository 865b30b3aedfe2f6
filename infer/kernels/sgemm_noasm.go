//go:build !(amd64 || arm64) || !gc || purego

package kernels

// No float SIMD kernel on this platform or build (the purego tag turns the
// assembly off): GemmFloat runs the generic micro-kernel.
var sgemmKernelF32 func(kc int, a, b, c []float32, ldc int)

const sgemmKernelName = "go"
