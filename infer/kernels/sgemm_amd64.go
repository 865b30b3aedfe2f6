//go:build gc && !purego

package kernels

import "golang.org/x/sys/cpu"

// sgemmKernelF32 is the AVX2+FMA micro-kernel, nil on CPUs without them
// (or with GODEBUG=cpu.avx2=off or cpu.fma=off).
var sgemmKernelF32 func(kc int, a, b, c []float32, ldc int)

const sgemmKernelName = "avx2+fma"

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		sgemmKernelF32 = sgemmKernelAVX2
	}
}

func sgemmKernelAVX2(kc int, a, b, c []float32, ldc int) {
	if kc <= 0 {
		return
	}
	// The assembly reads and writes exactly these ranges; checking them
	// here turns a packing bug into a panic instead of memory corruption.
	_ = a[kc*sgemmMR-1]
	_ = b[kc*sgemmNR-1]
	_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
	sgemm6x16AVX2(kc, &a[0], &b[0], &c[0], ldc)
}

// sgemm6x16AVX2 adds an MR×kc packed A panel times a kc×NR packed B panel
// to the 6×16 tile at c (row stride ldc floats). kc must be positive.
//
//go:noescape
func sgemm6x16AVX2(kc int, a, b, c *float32, ldc int)
