//go:build gc && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// requantCase is one requantNEON call's per-channel constants.
type requantCase struct{ bias, mult, shift, zero int32 }

// checkRequantNEON runs requantNEON over acc in calls of every length
// 1…40 (so each value passes through the 16- and 8-blocks, the
// overlapping last block and the short Go path) and compares every
// output with RequantizeOut, the reference.
func checkRequantNEON(t *testing.T, acc []int32, c requantCase, relu bool) {
	t.Helper()
	got := make([]int8, len(acc))
	for n := 1; n <= 40; n++ {
		clear(got)
		for j0 := 0; j0 < len(acc); j0 += n {
			j1 := min(j0+n, len(acc))
			requantNEON(got[j0:j1], acc[j0:j1], c.bias, c.mult, c.shift, c.zero, relu)
		}
		for j, a := range acc {
			if want := RequantizeOut(a+c.bias, c.mult, c.shift, c.zero, relu); got[j] != want {
				t.Fatalf("length %d: acc %d %+v relu %v: %d, want %d", n, a, c, relu, got[j], want)
			}
		}
	}
}

// RoundingDivideByPOT's ties, negative ties and their neighbours for
// every exponent 0…31: with mult = 2^30, SRDHM(2y, mult) = y exactly, so
// acc = 2y feeds y to the rounding shift. The zero points cover the
// clamps at both ends and ReLU.
func TestRequantNEONTies(t *testing.T) {
	const half = 1 << 30
	for e := int32(0); e <= 31; e++ {
		var acc []int32
		add := func(y int64) {
			if y >= -half && y < half { // 2y fits int32
				acc = append(acc, int32(2*y))
			}
		}
		for _, k := range []int64{0, 1, 2, 3, 7, 100, -1, -2, -3, -8, -101, 1<<(31-e) - 1, -(1 << (31 - e))} {
			tie := k << e
			if e > 0 {
				tie += 1 << (e - 1)
			}
			for d := int64(-2); d <= 2; d++ {
				add(tie + d)
				add(-tie + d)
			}
		}
		add(-half)
		add(half - 1)
		for _, zero := range []int32{-128, -5, 0, 3, 127} {
			for _, relu := range []bool{false, true} {
				checkRequantNEON(t, acc, requantCase{mult: half, shift: -e, zero: zero}, relu)
			}
		}
	}
}

// Extreme accumulators, biases and multipliers (MinInt32·MinInt32, the
// one saturating SQRDMULH, included) for every shift −31…30, left shifts
// and their saturation included; the bias add wraps.
func TestRequantNEONExtremes(t *testing.T) {
	ext := []int32{math.MinInt32, math.MinInt32 + 1, math.MinInt32 + 2, -1 << 30, -1<<30 - 1, -65536, -3, -2, -1,
		0, 1, 2, 3, 65535, 1<<30 - 1, 1 << 30, math.MaxInt32 - 1, math.MaxInt32}
	acc := append([]int32(nil), ext...)
	r := rand.New(rand.NewPCG(51, 52))
	for range 14 {
		acc = append(acc, int32(r.Uint32()), int32(r.IntN(1<<20)-1<<19))
	}
	mults := []int32{math.MinInt32, math.MinInt32 + 1, -1 << 30, -1, 0, 1, 1 << 30, 1<<30 + 12345, math.MaxInt32}
	for shift := int32(-31); shift <= 30; shift++ {
		for _, mult := range mults {
			for _, bias := range []int32{0, -1, math.MinInt32, math.MaxInt32, 12345} {
				c := requantCase{bias: bias, mult: mult, shift: shift, zero: int32(r.IntN(256) - 128)}
				checkRequantNEON(t, acc, c, r.IntN(2) == 0)
			}
		}
	}
}

// Random layers' constants (randMultShift: mostly usual right shifts,
// sometimes any shift or odd multipliers) on random accumulators.
func TestRequantNEONRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	acc := make([]int32, 77)
	for range 300 {
		for j := range acc {
			if r.IntN(4) == 0 {
				acc[j] = int32(r.Uint32())
			} else {
				acc[j] = int32(r.IntN(1<<22) - 1<<21)
			}
		}
		mult, shift := randMultShift(r)
		c := requantCase{bias: int32(r.IntN(1<<20) - 1<<19), mult: mult, shift: shift, zero: int32(r.IntN(256) - 128)}
		checkRequantNEON(t, acc, c, r.IntN(2) == 0)
	}
}

// The epilogue writes exactly dst[:len(acc)]: nothing before or after.
func TestRequantNEONBounds(t *testing.T) {
	for n := 1; n <= 40; n++ {
		acc := make([]int32, n)
		buf := make([]int8, n+32)
		for i := range buf {
			buf[i] = 99
		}
		requantNEON(buf[16:16+n], acc, 0, 1<<30, -1, -7, false)
		for i, v := range buf {
			want := int8(99)
			if i >= 16 && i < 16+n {
				want = -7
			}
			if v != want {
				t.Fatalf("n %d: buf[%d] = %d, want %d", n, i, v, want)
			}
		}
	}
}
