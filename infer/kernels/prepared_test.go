package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// runnableKernels lists the SIMD convolution kernels this CPU can run, by
// name; the architectures' tests set it (empty without SIMD).
var runnableKernels = func() map[string]*simdKernel { return nil }

// preparedShapes leave every tail of every kernel's packed layout: output
// channels off multiples of 4 and 8, taps off multiples of 4 and 16 (odd
// too), 1×1 direct and strided, stride 2, row segments, and 3×3 layers
// that the Winograd path takes where it is used.
var preparedShapes = []struct{ c, h, w, o, kh, kw, stride, pad int }{
	{1, 1, 1, 1, 1, 1, 1, 0},
	{3, 17, 19, 5, 1, 1, 1, 0},   // direct, 3 taps
	{33, 9, 23, 13, 1, 1, 2, 0},  // 1×1 stride 2
	{3, 33, 35, 9, 3, 3, 1, 1},   // 27 taps
	{15, 21, 37, 11, 3, 3, 2, 1}, // stride 2, 135 taps
	{300, 3, 100, 5, 3, 3, 1, 1}, // row segments
	{17, 15, 15, 9, 3, 3, 1, 1},  // 153 taps, Winograd-sized
	{64, 14, 14, 17, 3, 3, 1, 1}, // VGG-like, 17 outputs
	{7, 5, 5, 3, 5, 5, 1, 2},     // 175 taps
	{512, 2, 2, 17, 3, 3, 1, 1},  // 4608 taps
	{2, 6, 5, 11, 4, 2, 3, 2},    // 16 taps, stride 3
}

// Every kernel gives the generic kernel's bits with the weights packed per
// call, with them prepared once (PrepareConv), and with one Prepared
// shared by row ranges, as a Session's threads share it; a Prepared
// scratch does not hold its own copy of the packed weights.
func TestConv2dPreparedMatchesPerCall(t *testing.T) {
	ks := runnableKernels()
	if len(ks) == 0 {
		t.Skip("no SIMD convolution kernel")
	}
	r := rand.New(rand.NewPCG(51, 52))
	for name, k := range ks {
		for i, sh := range preparedShapes {
			p, x := randSIMDConv(r, sh.c, sh.h, sh.w, sh.o, sh.kh, sh.kw, sh.stride, sh.pad)
			if i%2 == 1 {
				p.Weight[r.IntN(len(p.Weight))] = -128 // the SMULL kernel's exact path
			}
			id := fmt.Sprintf("%s %d %+v", name, i, sh)
			n := p.O * p.OH * p.OW
			want, perCall, prepared := make([]int8, n), make([]int8, n), make([]int8, n)
			wantF, gotF := make([]float32, n), make([]float32, n)
			withGeneric(func() {
				Conv2dInt8(p, x, want, &Scratch{})
				Conv2dLogits(p, x, wantF, &Scratch{})
			})
			withSIMD(k, func() {
				Conv2dInt8(p, x, perCall, &Scratch{})
				p.Prepared = PrepareConv(p)
				defer func() { p.Prepared = nil }()
				if p.Prepared == nil {
					t.Fatalf("%s: PrepareConv returned nil", id)
				}
				if useWino43(p) && preparedU43(p) == nil {
					t.Fatalf("%s: prepared F(4,3) U not used", id)
				}
				if !useWinograd(p) && !useWino43(p) && preparedPack(p) == nil {
					t.Fatalf("%s: prepared weights not used", id)
				}
				var s Scratch
				s.Reserve(p)
				Conv2dInt8(p, x, prepared, &s)
				Conv2dLogits(p, x, gotF, &s)
				if k.packLen(p.O, p.Taps()) > 1 && len(s.simd.wpack) != 0 {
					t.Errorf("%s: scratch holds %d int16 of packed weights", id, len(s.simd.wpack))
				}
				// Row ranges, each with its own Scratch and the shared
				// Prepared, fill the whole output.
				rows := make([]int8, n)
				for y0 := 0; y0 < p.OH; y0 += 3 {
					q := *p
					q.RowsBegin, q.RowsEnd = y0, min(y0+3, p.OH)
					Conv2dInt8(&q, x, rows, &Scratch{})
				}
				if j := firstDiff(rows, want); j >= 0 {
					t.Fatalf("%s: row ranges, prepared: y[%d] = %d, want %d", id, j, rows[j], want[j])
				}
			})
			if j := firstDiff(perCall, want); j >= 0 {
				t.Fatalf("%s: per call: y[%d] = %d, want %d", id, j, perCall[j], want[j])
			}
			if j := firstDiff(prepared, want); j >= 0 {
				t.Fatalf("%s: prepared: y[%d] = %d, want %d", id, j, prepared[j], want[j])
			}
			if j := firstDiff(f32Bits(gotF), f32Bits(wantF)); j >= 0 {
				t.Fatalf("%s: prepared logits: y[%d] = %v, want %v", id, j, gotF[j], wantF[j])
			}
		}
	}
}

// withSIMD runs f with k as the convolution kernel.
func withSIMD(k *simdKernel, f func()) {
	g := simdGemm
	simdGemm = k
	defer func() { simdGemm = g }()
	f()
}

// A Prepared that was not made from these weights, this shape or this
// kernel is ignored: the call packs the weights itself and gives the
// generic kernel's bits.
func TestConv2dStalePreparedIgnored(t *testing.T) {
	ks := runnableKernels()
	if len(ks) == 0 {
		t.Skip("no SIMD convolution kernel")
	}
	r := rand.New(rand.NewPCG(53, 54))
	for name, k := range ks {
		// 1×1 stride 2: no kernel takes it to the Winograd path.
		p, x := randSIMDConv(r, 24, 15, 17, 10, 1, 1, 2, 0)
		same, _ := randSIMDConv(r, 10, 15, 17, 24, 1, 1, 2, 0) // the same Weight length
		var fresh, other, wino *PreparedConv
		withSIMD(k, func() {
			fresh = PrepareConv(p)
			same.Weight = p.Weight
			wino = prepareWinograd(&Conv2dParams{C: 16, O: 1, KH: 3, KW: 3, Weight: make([]int8, 144)})
			for oname, ok := range ks {
				if oname != name {
					other = prepareSIMD(p, ok)
				}
			}
		})
		newWeights := func(p *Conv2dParams) *Conv2dParams {
			q := *p
			q.Weight = randBytes(r, len(p.Weight), -128)
			return &q
		}
		cases := []struct {
			what string
			p    *Conv2dParams
			pc   *PreparedConv
		}{
			{"other weights", newWeights(p), fresh},
			{"other shape, same weights", same, fresh},
			{"Winograd U", p, wino},
			{"other kernel", p, other},
		}
		for _, c := range cases {
			if c.pc == nil {
				continue // one kernel only: no other kernel's Prepared
			}
			q := *c.p
			q.Prepared = c.pc
			n := q.O * q.OH * q.OW
			got, want := make([]int8, n), make([]int8, n)
			withGeneric(func() { Conv2dInt8(&q, x, want, &Scratch{}) })
			withSIMD(k, func() {
				if preparedPack(&q) != nil {
					t.Errorf("%s, %s: stale prepared weights used", name, c.what)
				}
				Conv2dInt8(&q, x, got, &Scratch{})
			})
			if j := firstDiff(got, want); j >= 0 {
				t.Fatalf("%s, %s: y[%d] = %d, want %d", name, c.what, j, got[j], want[j])
			}
		}
	}
}

// With Prepared, a call allocates nothing after Reserve.
func TestConv2dPreparedAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	for name, k := range runnableKernels() {
		withSIMD(k, func() {
			for _, sh := range preparedShapes[2:6] {
				p, x := randSIMDConv(r, sh.c, sh.h, sh.w, sh.o, sh.kh, sh.kw, sh.stride, sh.pad)
				p.Prepared = PrepareConv(p)
				y := make([]int8, p.O*p.OH*p.OW)
				var s Scratch
				s.Reserve(p)
				if n := testing.AllocsPerRun(3, func() { Conv2dInt8(p, x, y, &s) }); n != 0 {
					t.Errorf("%s %+v: %v allocations per call", name, sh, n)
				}
			}
		})
	}
}
