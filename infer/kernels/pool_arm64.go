//go:build gc && !purego

package kernels

func init() {
	// Advanced SIMD is part of every ARMv8-A core: no feature check.
	simdMaxPool2x2Row = maxPool2x2RowNEON
}

func maxPool2x2RowNEON(r0, r1, row []int8, n int) {
	// Bounds the assembly relies on, checked once per row.
	_, _, _ = r0[2*n-1], r1[2*n-1], row[n-1]
	maxPool2x2x16NEON(&r0[0], &r1[0], &row[0], n/maxPoolBlock)
}

// maxPool2x2x16NEON writes 16·blocks outputs of a 2x2/s2 max-pool: LD2
// splits each row's 32 bytes into even and odd columns, three SMAX reduce
// the four candidates of every window.
//
//go:noescape
func maxPool2x2x16NEON(r0, r1, dst *int8, blocks int)
