//go:build amd64 && !purego

package train

import "golang.org/x/sys/cpu"

// kernelF32 is the AVX2+FMA micro-kernel, nil on CPUs without them.
var kernelF32 func(kc int, a, b, c []float32, ldc int)

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernelF32 = kernelAVX2
	}
}

func kernelAVX2(kc int, a, b, c []float32, ldc int) {
	if kc <= 0 {
		return
	}
	// The assembly reads and writes exactly these ranges; checking them
	// here turns a packing bug into a panic instead of memory corruption.
	_ = a[kc*mr-1]
	_ = b[kc*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern4x16(kc, &a[0], &b[0], &c[0], ldc)
}

// kern4x16 adds an mr×kc packed A panel times a kc×nr packed B panel to the
// 4×16 tile at c (row stride ldc floats). kc must be positive.
//
//go:noescape
func kern4x16(kc int, a, b, c *float32, ldc int)
