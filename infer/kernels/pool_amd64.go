//go:build gc && !purego

package kernels

import "golang.org/x/sys/cpu"

func init() {
	if cpu.X86.HasAVX2 {
		simdMaxPool2x2Row = maxPool2x2RowAVX2
	}
}

func maxPool2x2RowAVX2(r0, r1, row []int8, n int) {
	// Bounds the assembly relies on, checked once per row.
	_, _, _ = r0[2*n-1], r1[2*n-1], row[n-1]
	maxPool2x2x16AVX2(&r0[0], &r1[0], &row[0], n/maxPoolBlock)
}

// maxPool2x2x16AVX2 writes 16·blocks outputs of a 2x2/s2 max-pool: the
// vertical max of the two rows (VPMAXSB), the horizontal max of each byte
// pair (a 16-bit shift brings the odd byte under the even one), then the
// even bytes packed down (sign-extended words, VPACKSSWB never saturates).
//
//go:noescape
func maxPool2x2x16AVX2(r0, r1, dst *int8, blocks int)
