//go:build gc && !purego

package kernels

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// withKernel runs f with k as the convolution kernel.
func withKernel(k *simdKernel, f func()) {
	g := simdGemm
	simdGemm = k
	defer func() { simdGemm = g }()
	f()
}

// amd64Kernels are the convolution kernels this CPU can run, by name.
func amd64Kernels() map[string]*simdKernel {
	ks := map[string]*simdKernel{}
	if cpu.X86.HasAVX2 {
		ks["avx2"] = &avx2Kernel
		if hasVNNI() {
			ks["avx512vnni"] = &vnniKernel
		}
	}
	return ks
}

// Every amd64 kernel the CPU supports, not only the dispatched one, runs
// the shared bit-for-bit tests against the generic kernel: the shape set
// of TestConv2dSIMDMatchesGeneric (channels not multiples of 4/8/16, width
// tails, 1x1, stride 2, non-zero pad values, odd taps, int8 and logits),
// the repacking test and the extremes.
func TestConv2dAMD64KernelsMatchGeneric(t *testing.T) {
	ks := amd64Kernels()
	if len(ks) == 0 {
		t.Skip("no AVX2")
	}
	for name, k := range ks {
		t.Run(name, func(t *testing.T) {
			withKernel(k, func() {
				if got := kernelName(); got != name {
					t.Fatalf("kernel %q, want %q", got, name)
				}
				TestConv2dSIMDMatchesGeneric(t)
				TestConv2dSIMDRepacksWeights(t)
				TestSIMDExtremes(t)
			})
		})
	}
}

// The VNNI kernel's +128 offset at its limits: every input −128 (packed
// as 0) or 127 (packed as 255) against weights ±127 and −128 (never made
// by the quantizer, still exact here), taps not multiples of 4, channels
// not multiples of 8, pixel counts around 16 and 32, both output forms.
func TestConv2dVNNIOffsetExtremes(t *testing.T) {
	if !hasVNNI() || !cpu.X86.HasAVX2 {
		t.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, c := range []int{1, 3, 4, 5, 63, 257, 4099} {
		for _, w := range []int{1, 15, 16, 17, 31, 33, 48} {
			for _, xv := range []int8{-128, 127} {
				for _, wv := range []int8{-128, -127, 127} {
					o := 1 + r.IntN(11)
					p := &Conv2dParams{C: c, H: 1, W: w, O: o, KH: 1, KW: 1, Stride: 1, OH: 1, OW: w,
						Weight: slices.Repeat([]int8{wv}, o*c), Bias: make([]int32, o), PadValue: make([]int8, c),
						Mult: make([]int32, o), Shift: make([]int32, o), OutZero: -3,
						InScale: 1, WScale: slices.Repeat([]float32{1}, o)}
					for i := range o {
						p.Bias[i] = int32(r.Uint32())
						p.Mult[i], p.Shift[i] = randMultShift(r)
					}
					x := slices.Repeat([]int8{xv}, c*w)
					gotF, wantF := make([]float32, o*w), make([]float32, o*w)
					got8, want8 := make([]int8, o*w), make([]int8, o*w)
					withKernel(&vnniKernel, func() {
						Conv2dLogits(p, x, gotF, &Scratch{})
						Conv2dInt8(p, x, got8, &Scratch{})
					})
					withGeneric(func() {
						Conv2dLogits(p, x, wantF, &Scratch{})
						Conv2dInt8(p, x, want8, &Scratch{})
					})
					if j := firstDiff(f32Bits(gotF), f32Bits(wantF)); j >= 0 {
						t.Fatalf("c=%d w=%d x=%d w=%d: logits y[%d] = %v, want %v", c, w, xv, wv, j, gotF[j], wantF[j])
					}
					if j := firstDiff(got8, want8); j >= 0 {
						t.Fatalf("c=%d w=%d x=%d w=%d: y[%d] = %d, want %d", c, w, xv, wv, j, got8[j], want8[j])
					}
				}
			}
		}
	}
}

// The packed weights and corrections match their definition.
func TestPackWeightsVNNI(t *testing.T) {
	if !hasVNNI() {
		t.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(33, 34))
	for _, sh := range [][2]int{{1, 1}, {8, 4}, {9, 5}, {13, 27}, {64, 576}, {7, 4608}, {17, 3}} {
		O, T := sh[0], sh[1]
		w := randBytes(r, O*T, -128)
		wpack := make([]int16, packLenVNNI(O, T))
		packWeightsVNNI(wpack, w, O, T)
		corr, wp := vnniWeights(wpack, O, T)
		kg := ceilDiv(T, 4)
		for o := range ceilDiv(O, 8) * 8 {
			var sum int32
			for t4 := range kg * 4 {
				var want int8
				if o < O && t4 < T {
					want = w[o*T+t4]
				}
				sum += int32(want)
				if got := int8(wp[(o/8*kg+t4/4)*32+o%8*4+t4%4]); got != want {
					t.Fatalf("O=%d T=%d: w[%d][%d] packed %d, want %d", O, T, o, t4, got, want)
				}
			}
			if corr[o] != 128*sum {
				t.Fatalf("O=%d T=%d: corr[%d] = %d, want %d", O, T, o, corr[o], 128*sum)
			}
		}
	}
}

// The VNNI kernel is dispatched exactly when the CPU has AVX512F, BW, VL
// and VNNI (and AVX2), whatever AVX-VNNI says; GODEBUG=cpu.avx512vnni=off
// clears HasAVX512VNNI and must leave the AVX2 kernel.
func TestDispatchVNNI(t *testing.T) {
	x := cpu.X86
	vnni := x.HasAVX2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512VNNI
	if got := kernelName() == "avx512vnni"; got != vnni {
		t.Errorf("kernel %q; AVX2 %v AVX512F %v BW %v VL %v VNNI %v AVX-VNNI %v", kernelName(),
			x.HasAVX2, x.HasAVX512F, x.HasAVX512BW, x.HasAVX512VL, x.HasAVX512VNNI, x.HasAVXVNNI)
	}
	if strings.Contains(os.Getenv("GODEBUG"), "cpu.avx512vnni=off") && x.HasAVX512VNNI {
		t.Errorf("GODEBUG=cpu.avx512vnni=off left HasAVX512VNNI set")
	}
}

func init() { runnableKernels = amd64Kernels }
