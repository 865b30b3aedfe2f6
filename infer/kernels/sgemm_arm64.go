//go:build gc && !purego

package kernels

// sgemmKernelF32 is the NEON micro-kernel: Advanced SIMD is part of every
// arm64 core, so there is nothing to detect.
var sgemmKernelF32 func(kc int, a, b, c []float32, ldc int) = sgemmKernelNEON

const sgemmKernelName = "neon"

func sgemmKernelNEON(kc int, a, b, c []float32, ldc int) {
	if kc <= 0 {
		return
	}
	// The assembly reads and writes exactly these ranges; checking them
	// here turns a packing bug into a panic instead of memory corruption.
	_ = a[kc*sgemmMR-1]
	_ = b[kc*sgemmNR-1]
	_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
	sgemm6x16NEON(kc, &a[0], &b[0], &c[0], ldc)
}

// sgemm6x16NEON adds an MR×kc packed A panel times a kc×NR packed B panel
// to the 6×16 tile at c (row stride ldc floats). kc must be positive.
//
//go:noescape
func sgemm6x16NEON(kc int, a, b, c *float32, ldc int)
