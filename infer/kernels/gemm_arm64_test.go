//go:build gc && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/cpu"
)

// neonPaths are the kernels this CPU can run, by name. Without dotprod
// (qemu -cpu cortex-a72) the SDOT kernel would SIGILL, so it is left out.
func neonPaths() map[string]*simdKernel {
	m := map[string]*simdKernel{"smull": &neonMull}
	if cpu.ARM64.HasASIMDDP {
		m["sdot"] = &neonDot
	}
	return m
}

// withKernels runs f with the convolution and Linear kernels set to k
// (nil: generic), restoring the dispatch afterwards.
func withKernels(k *simdKernel, f func()) {
	savedGemm, savedDot4 := simdGemm, simdDot4
	defer func() { simdGemm, simdDot4 = savedGemm, savedDot4 }()
	simdGemm, simdDot4 = k, nil
	if k != nil {
		simdDot4 = dot4NEON
	}
	f()
}

func TestNEONDispatch(t *testing.T) {
	want := "neon-smull"
	if cpu.ARM64.HasASIMDDP {
		want = "neon-sdot"
	}
	t.Logf("kernel %s", kernelName())
	if got := kernelName(); got != want {
		t.Errorf("kernel %q, want %q (HasASIMDDP %v)", got, want, cpu.ARM64.HasASIMDDP)
	}
}

// randNEONConv is a random convolution with random pad values and output
// form; wlo is the smallest weight (−127, or −128 to force the exact SMULL
// kernel).
func randNEONConv(r *rand.Rand, c, h, w, o, kh, kw, stride, pad, wlo int) *Conv2dParams {
	p := &Conv2dParams{C: c, H: h, W: w, O: o, KH: kh, KW: kw, Stride: stride, Pad: pad,
		OH: (h+2*pad-kh)/stride + 1, OW: (w+2*pad-kw)/stride + 1,
		OutZero: int32(r.IntN(256) - 128), ReLU: r.IntN(2) == 0, InScale: float32(r.Float64() + 0.01)}
	p.Weight = make([]int8, o*c*kh*kw)
	for i := range p.Weight {
		p.Weight[i] = int8(wlo + r.IntN(128-wlo))
	}
	p.PadValue = make([]int8, c)
	for i := range p.PadValue {
		p.PadValue[i] = int8(r.IntN(256) - 128)
	}
	p.Bias, p.Mult, p.Shift, p.WScale = make([]int32, o), make([]int32, o), make([]int32, o), make([]float32, o)
	for i := range o {
		p.Bias[i] = int32(r.IntN(1<<20) - 1<<19)
		p.Mult[i] = 1<<30 + int32(r.IntN(1<<30))
		p.Shift[i] = -int32(r.IntN(16))
		p.WScale[i] = float32(r.Float64()*1e-3 + 1e-5)
	}
	return p
}

// Every NEON path equals the generic kernel bit for bit: channel counts
// off multiples of 4/8/16, widths with tails, 1×1 (direct and strided),
// stride 2, odd taps, bands split into row segments, int8 and logits.
func TestNEONConvMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	type shape struct{ c, h, w, o, kh, kw, stride, pad int }
	shapes := []shape{
		{1, 1, 1, 1, 1, 1, 1, 0},
		{3, 17, 19, 5, 1, 1, 1, 0},    // direct 1×1, 323 pixels: two chunks with tails
		{33, 9, 21, 13, 1, 1, 1, 0},   // direct, taps with a partial group
		{16, 16, 16, 8, 1, 1, 1, 0},   // direct, everything a multiple
		{5, 9, 11, 6, 1, 1, 2, 0},     // 1×1 stride 2
		{3, 24, 24, 7, 3, 3, 1, 1},    // first-layer-like, 27 taps
		{3, 13, 31, 64, 3, 3, 1, 1},   // 64 channels: 8 full blocks
		{17, 15, 15, 9, 3, 3, 2, 1},   // stride 2, odd everything
		{64, 14, 14, 17, 3, 3, 1, 1},  // VGG-like tail
		{300, 3, 100, 5, 3, 3, 1, 1},  // row segments
		{7, 5, 5, 3, 5, 5, 1, 2},      // 175 taps
		{2, 6, 5, 11, 4, 2, 3, 2},     // 16 taps exactly, stride 3
		{1, 40, 40, 1, 2, 2, 1, 0},    // 4 taps, one channel
		{1, 8, 300, 2, 1, 3, 1, 1},    // 3 taps, long rows
		{128, 7, 7, 33, 3, 3, 1, 1},   // 1152 taps
		{10, 12, 12, 100, 3, 3, 1, 0}, // 90 taps, 100 channels
	}
	for range 40 {
		kh, kw := 1+r.IntN(4), 1+r.IntN(4)
		shapes = append(shapes, shape{1 + r.IntN(40), max(kh, 1+r.IntN(30)), max(kw, 1+r.IntN(30)),
			1 + r.IntN(40), kh, kw, 1 + r.IntN(3), r.IntN(3)})
	}
	var ref Scratch
	scratch := map[string]*Scratch{}
	for name, k := range neonPaths() {
		scratch[name] = new(Scratch)
		for _, wlo := range []int{-127, -128} {
			for i, sh := range shapes {
				p := randNEONConv(r, sh.c, sh.h, sh.w, sh.o, sh.kh, sh.kw, sh.stride, sh.pad, wlo)
				if wlo == -128 {
					p.Weight[r.IntN(len(p.Weight))] = -128 // at least one
				}
				x := make([]int8, sh.c*sh.h*sh.w)
				for j := range x {
					x[j] = int8(r.IntN(256) - 128)
				}
				for _, logits := range []bool{false, true} {
					id := fmt.Sprintf("%s %d %+v wlo=%d logits=%v", name, i, sh, wlo, logits)
					if err := p.Check(logits); err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					n := p.O * p.OH * p.OW
					if logits {
						want, got := make([]float32, n), make([]float32, n)
						withKernels(nil, func() { Conv2dLogits(p, x, want, &ref) })
						withKernels(k, func() { Conv2dLogits(p, x, got, scratch[name]) })
						if j := slices.Index(eqs(got, want), false); j >= 0 {
							t.Fatalf("%s: y[%d] = %v, want %v", id, j, got[j], want[j])
						}
						continue
					}
					want, got := make([]int8, n), make([]int8, n)
					withKernels(nil, func() { Conv2dInt8(p, x, want, &ref) })
					withKernels(k, func() { Conv2dInt8(p, x, got, scratch[name]) })
					if j := slices.Index(eqs(got, want), false); j >= 0 {
						t.Fatalf("%s: y[%d] = %d, want %d", id, j, got[j], want[j])
					}
				}
			}
		}
	}
}

func eqs[T comparable](a, b []T) []bool {
	e := make([]bool, len(a))
	for i := range a {
		e[i] = a[i] == b[i]
	}
	return e
}

// The extremes: the SMULL pairs' largest int16 sums (−127·−128 twice,
// 127·−128 twice) and, with −128 weights, the exact kernel. Every
// accumulator is also checked against the int64 sum.
func TestNEONExtremes(t *testing.T) {
	for name, k := range neonPaths() {
		for _, wv := range []int8{-127, 127, -128} {
			for _, xv := range []int8{-128, 127} {
				p := randNEONConv(rand.New(rand.NewPCG(1, 1)), 37, 6, 7, 9, 3, 3, 1, 1, -127)
				for i := range p.Weight {
					p.Weight[i] = wv
				}
				for i := range p.PadValue {
					p.PadValue[i] = xv
				}
				for i := range p.Bias {
					p.Bias[i] = 0
				}
				x := make([]int8, p.C*p.H*p.W)
				for i := range x {
					x[i] = xv
				}
				n := p.O * p.OH * p.OW
				got := make([]float32, n)
				p.InScale = 1
				for i := range p.WScale {
					p.WScale[i] = 1
				}
				withKernels(k, func() { Conv2dLogits(p, x, got, new(Scratch)) })
				want := float32(int32(p.Taps()) * int32(wv) * int32(xv))
				for j, v := range got {
					if v != want {
						t.Fatalf("%s w=%d x=%d: y[%d] = %v, want %v", name, wv, xv, j, v, want)
					}
				}
			}
		}
	}
}

func TestNEONLinearMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for name, k := range neonPaths() {
		for i := range 80 {
			p := &LinearParams{In: 1 + r.IntN(600), Out: 1 + r.IntN(21), InScale: float32(r.Float64() + 0.01)}
			switch i {
			case 0:
				p.In, p.Out = 4099, 4
			case 1:
				p.In, p.Out = 16, 8
			case 2:
				p.In, p.Out = 15, 5
			}
			wlo := -127
			if i%2 == 1 {
				wlo = -128 // Linear's SMULL kernel is exact for any weight
			}
			p.Weight = make([]int8, p.In*p.Out)
			for j := range p.Weight {
				p.Weight[j] = int8(wlo + r.IntN(128-wlo))
			}
			p.Bias, p.Mult, p.Shift, p.WScale = make([]int32, p.Out), make([]int32, p.Out), make([]int32, p.Out), make([]float32, p.Out)
			for o := range p.Out {
				p.Bias[o] = int32(r.IntN(1<<20) - 1<<19)
				p.Mult[o] = 1<<30 + int32(r.IntN(1<<30))
				p.Shift[o] = -int32(r.IntN(16))
				p.WScale[o] = float32(r.Float64() * 1e-3)
			}
			p.OutZero, p.ReLU = int32(r.IntN(256)-128), r.IntN(2) == 0
			x := make([]int8, p.In)
			for j := range x {
				x[j] = int8(r.IntN(256) - 128)
			}
			want8, got8 := make([]int8, p.Out), make([]int8, p.Out)
			wantF, gotF := make([]float32, p.Out), make([]float32, p.Out)
			withKernels(nil, func() { LinearInt8(p, x, want8); LinearLogits(p, x, wantF) })
			withKernels(k, func() { LinearInt8(p, x, got8); LinearLogits(p, x, gotF) })
			if j := slices.Index(eqs(got8, want8), false); j >= 0 {
				t.Fatalf("%s %d→%d: y[%d] = %d, want %d", name, p.In, p.Out, j, got8[j], want8[j])
			}
			if j := slices.Index(eqs(gotF, wantF), false); j >= 0 {
				t.Fatalf("%s %d→%d logits: y[%d] = %v, want %v", name, p.In, p.Out, j, gotF[j], wantF[j])
			}
		}
	}
}

// After Reserve, the NEON paths allocate nothing either.
func TestNEONDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	p := randNEONConv(r, 8, 20, 20, 6, 3, 3, 1, 1, -127)
	x := make([]int8, 8*20*20)
	y := make([]int8, p.O*p.OH*p.OW)
	for name, k := range neonPaths() {
		withKernels(k, func() {
			var s Scratch
			s.Reserve(p)
			if n := testing.AllocsPerRun(5, func() { Conv2dInt8(p, x, y, &s) }); n != 0 {
				t.Errorf("%s: %v allocations per run, want 0", name, n)
			}
		})
	}
}

func init() { runnableKernels = neonPaths }
