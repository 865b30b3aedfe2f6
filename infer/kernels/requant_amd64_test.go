//go:build gc && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// requantAVX2 equals requantRow on random and extreme accumulators for
// every right shift and random multipliers.
func TestRequantAVX2MatchesGeneric(t *testing.T) {
	if !cpu.X86.HasAVX2 {
		t.Skip("no AVX2")
	}
	r := rand.New(rand.NewPCG(31, 32))
	acc := make([]int32, 64)
	got, want := make([]int8, len(acc)), make([]int8, len(acc))
	for i := range 20000 {
		for j := range acc {
			switch r.IntN(6) {
			case 0:
				acc[j] = []int32{math.MinInt32, math.MaxInt32, 0, -1, 1, 1 << 30, -1 << 30}[r.IntN(7)]
			case 1:
				acc[j] = int32(r.Uint32())
			default:
				acc[j] = int32(r.IntN(1<<22) - 1<<21)
			}
		}
		mult, shift := randMultShift(r)
		if mult == math.MinInt32 || shift > 0 {
			continue // outAVX2 leaves these to the generic code
		}
		if i%7 == 0 {
			shift = -int32(i % 32)
		}
		zero, relu := int32(r.IntN(256)-128), r.IntN(2) == 0
		n := 8 * (1 + r.IntN(8))
		requantRow(want[:n], acc[:n], mult, shift, zero, relu)
		e := -shift
		requantAVX2(&got[0], &acc[0], n, mult, e, int32(1)<<e-1, zero, reluFloor(zero, relu))
		if j := firstDiff(got[:n], want[:n]); j >= 0 {
			t.Fatalf("acc %d mult %d shift %d zero %d relu %v: %d, want %d", acc[j], mult, shift, zero, relu, got[j], want[j])
		}
	}
}
