//go:build gc && !purego

package kernels

//go:generate go run ./internal/neongen -set requant -o requant_arm64.s

// requantRowNEON is requantRow of acc[j]+bias in NEON (requant_arm64.s,
// where the comment proves it exact) for n ≥ 8 outputs, with the shift
// split into left = max(shift, 0) and right = max(−shift, 0) and lo the
// ReLU floor.
//
//go:noescape
func requantRowNEON(dst *int8, acc *int32, n int, bias, mult, left, right, zero, lo int32)

// requantNEON writes dst[j] = RequantizeOut(acc[j]+bias, mult, shift,
// zero, relu) for j < len(acc): both NEON kernels' int8 epilogue, the
// bias add fused (the Winograd path's acc already holds it: bias 0).
func requantNEON(dst []int8, acc []int32, bias, mult, shift, zero int32, relu bool) {
	n := len(acc)
	dst = dst[:n]
	if n < 8 {
		for j, a := range acc {
			dst[j] = RequantizeOut(a+bias, mult, shift, zero, relu)
		}
		return
	}
	requantRowNEON(&dst[0], &acc[0], n, bias, mult, max(shift, 0), max(-shift, 0), zero, reluFloor(zero, relu))
}
