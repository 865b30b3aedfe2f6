package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// winoConv runs p on the Winograd path whatever the dispatch, with the
// weights prepared once (prep) or transformed per call.
func winoConv(p *Conv2dParams, x, y8 []int8, yf []float32, s *Scratch) {
	g := newGemm(p, y8, yf)
	convWinograd(p, x, &g, &s.wino)
}

// winoImpl is a choice of the Winograd path's replaceable parts.
type winoImpl struct {
	block  func(u, v []int16, cq, ldv, n int, m *[16 * 64]int32)
	input  func(v []int16, xs int, row []int8, wp, n8 int)
	output func(m *[16 * 64]int32, bias []int32, off *[winoT]int, acc []int32, ps, owp int)
}

// winoImpls are the implementations to test: the Go ones and the
// dispatched ones (assembly on arm64).
func winoImpls() map[string]winoImpl {
	return map[string]winoImpl{
		"go":         {winoBlockGo, winoInputRowGo, winoOutputGo},
		"dispatched": {winoBlock, winoInputRow, winoOutput},
	}
}

func withWino(impl winoImpl, run func()) {
	b, in, out := winoBlock, winoInputRow, winoOutput
	defer func() { winoBlock, winoInputRow, winoOutput = b, in, out }()
	winoBlock, winoInputRow, winoOutput = impl.block, impl.input, impl.output
	run()
}

// The Winograd path equals the generic direct kernel bit for bit (int8
// and logits) on odd shapes: H and W 1…9 and around the tile and block
// sizes, C and O off multiples of 4 and 8, pads 0…2, −128 weights, with
// prepared and per-call weights, and in row ranges split like a
// Session's threads (odd splits included).
func TestWinogradMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	type shape struct{ c, h, w, o, pad int }
	shapes := []shape{
		{1, 2, 2, 1, 0}, {1, 3, 3, 1, 0}, {1, 1, 1, 1, 1}, {2, 1, 5, 3, 1}, {3, 5, 1, 2, 1},
		{16, 4, 4, 8, 0}, {16, 14, 14, 16, 1}, {17, 13, 13, 9, 1}, {5, 9, 7, 33, 1},
		{67, 28, 28, 7, 1}, {64, 14, 14, 24, 1}, {33, 6, 9, 17, 0}, {4, 8, 8, 8, 2},
		{20, 2, 30, 5, 1}, {8, 30, 2, 5, 1}, {31, 3, 3, 31, 0}, {9, 7, 8, 1, 1},
		{40, 15, 17, 12, 1}, {3, 20, 20, 4, 0}, {1, 9, 9, 33, 1}, {12, 5, 44, 3, 1},
	}
	for h := 1; h <= 9; h++ {
		for w := 1; w <= 9; w++ {
			pad := r.IntN(2)
			if h+2*pad < 3 || w+2*pad < 3 {
				pad = 1
			}
			shapes = append(shapes, shape{1 + r.IntN(67), h, w, 1 + r.IntN(33), pad})
		}
	}
	for range 20 {
		shapes = append(shapes, shape{1 + r.IntN(67), 1 + r.IntN(30), 1 + r.IntN(30), 1 + r.IntN(33), 1})
	}
	for name, impl := range winoImpls() {
		withWino(impl, func() {
			var s Scratch // one for all shapes: stale data would show
			for i, sh := range shapes {
				if sh.h+2*sh.pad < 3 || sh.w+2*sh.pad < 3 {
					continue
				}
				p, x := randSIMDConv(r, sh.c, sh.h, sh.w, sh.o, 3, 3, 1, sh.pad)
				if i%3 == 0 { // the full int8 range: U's bound covers −128
					for j := range p.Weight {
						if r.IntN(4) == 0 {
							p.Weight[j] = -128
						}
					}
				}
				if err := p.Check(true); err != nil {
					t.Fatalf("%+v: %v", sh, err)
				}
				n := p.O * p.OH * p.OW
				want8, wantF := make([]int8, n), make([]float32, n)
				withGeneric(func() {
					var gs Scratch
					Conv2dInt8(p, x, want8, &gs)
					Conv2dLogits(p, x, wantF, &gs)
				})
				for _, prep := range []bool{false, true} {
					q := *p
					if prep {
						q.Prepared = prepareWinograd(&q)
					}
					matchInRowParts(t, fmt.Sprintf("%s, %+v prepared %v", name, sh, prep), &q, x, want8, wantF, &s, winoConv)
				}
			}
		})
	}
}

// matchInRowParts runs conv on q whole and in row ranges split like a
// Session's threads (odd splits included), int8 and logits, and fails at
// the first output that differs from want8 / wantF.
func matchInRowParts(t *testing.T, id string, q *Conv2dParams, x, want8 []int8, wantF []float32, s *Scratch,
	conv func(p *Conv2dParams, x, y8 []int8, yf []float32, s *Scratch)) {
	t.Helper()
	n := len(want8)
	for _, parts := range []int{1, 2, 3, q.OH} {
		got8, gotF := make([]int8, n), make([]float32, n)
		for k := range parts {
			qq := *q
			if parts > 1 {
				qq.RowsBegin, qq.RowsEnd = k*q.OH/parts, (k+1)*q.OH/parts
				if qq.RowsBegin == qq.RowsEnd {
					continue
				}
			}
			conv(&qq, x, got8, nil, s)
			conv(&qq, x, nil, gotF, s)
		}
		if j := firstDiff(got8, want8); j >= 0 {
			t.Fatalf("%s, %d parts: int8 y[%d] = %d, want %d", id, parts, j, got8[j], want8[j])
		}
		if j := firstDiff(f32Bits(gotF), f32Bits(wantF)); j >= 0 {
			t.Fatalf("%s, %d parts: logits y[%d] = %v, want %v", id, parts, j, gotF[j], wantF[j])
		}
	}
}

// The bounds the exactness argument rests on: |U| ≤ 1152 (reached by
// −128 weights), |V| ≤ 512, and the largest sums at C = winoMaxC, where
// 4·S is closest to overflowing int32; one more channel leaves the path.
func TestWinogradBounds(t *testing.T) {
	p := &Conv2dParams{C: 1, H: 4, W: 4, O: 1, KH: 3, KW: 3, Stride: 1, OH: 2, OW: 2,
		Weight: slices.Repeat([]int8{-128}, 9)}
	u := make([]int16, winoUBlock(p))
	winoPackU(p, 0, u)
	lo, hi := slices.Min(u), slices.Max(u)
	if lo != -1152 || hi > 1152 {
		t.Errorf("U of all −128 weights in [%d, %d], want min −1152", lo, hi)
	}
	if 9*128*128*4*int64(winoMaxC) >= 1<<31 || 9*128*128*4*int64(winoMaxC+1) < 1<<31 {
		t.Errorf("winoMaxC %d is not the largest C with 4·9·C·128² < 2³¹", winoMaxC)
	}
	for _, xv := range []int8{-128, 127} {
		for _, wv := range []int8{-128, 127} {
			c := winoMaxC
			p := &Conv2dParams{C: c, H: 2, W: 2, O: 2, KH: 3, KW: 3, Stride: 1, Pad: 1, OH: 2, OW: 2,
				Weight: slices.Repeat([]int8{wv}, 2*c*9), Bias: make([]int32, 2),
				PadValue: slices.Repeat([]int8{xv}, c), InScale: 1, WScale: []float32{1, 1}}
			if !winogradFits(p) {
				t.Fatalf("C = winoMaxC does not fit")
			}
			x := slices.Repeat([]int8{xv}, c*4)
			got, want := make([]float32, 8), make([]float32, 8)
			winoConv(p, x, nil, got, &Scratch{})
			withGeneric(func() { Conv2dLogits(p, x, want, &Scratch{}) })
			if e := float32(int64(9*c) * int64(xv) * int64(wv)); want[0] != e {
				t.Fatalf("generic %v, want %v", want[0], e)
			}
			if j := firstDiff(f32Bits(got), f32Bits(want)); j >= 0 {
				t.Fatalf("x=%d w=%d: y[%d] = %v, want %v", xv, wv, j, got[j], want[j])
			}
			p.C++
			if winogradFits(p) {
				t.Errorf("C = winoMaxC+1 fits")
			}
		}
	}
	// V: −128 everywhere gives V₁₁ = d₁₁+d₁₂+d₂₁+d₂₂ = −512, the bound.
	var s winoScratch
	q := &Conv2dParams{C: 1, H: 4, W: 4, O: 1, KH: 3, KW: 3, Stride: 1, OH: 2, OW: 2, PadValue: []int8{0}}
	s.reserve(q)
	x := slices.Repeat([]int8{-128}, 16)
	v := make([]int16, 16*4*8)
	winoInput(q, x, 0, 0, 1, 1, &s, v, 32)
	if m := max(-slices.Min(v), slices.Max(v)); m != 512 {
		t.Errorf("max |V| = %d, want 512", m)
	}
}

// winoPaths are the two Winograd paths, each with how to prepare,
// reserve and run it whatever the dispatch.
var winoPaths = []struct {
	name    string
	prepare func(*Conv2dParams) *PreparedConv
	reserve func(*Scratch, *Conv2dParams)
	conv    func(p *Conv2dParams, x, y8 []int8, yf []float32, s *Scratch)
	uses    func(*Conv2dParams) bool // whether p.Prepared would be used
}{
	{"F(2,3)", prepareWinograd, func(s *Scratch, p *Conv2dParams) { s.wino.reserve(p) }, winoConv,
		func(p *Conv2dParams) bool { return preparedU(p) != nil }},
	{"F(4,3)", prepareWino43, func(s *Scratch, p *Conv2dParams) { s.w43.reserve(p) }, w43Conv,
		func(p *Conv2dParams) bool { return preparedU43(p) != nil || preparedWC43(p) != nil }},
}

// After Reserve, the Winograd paths allocate nothing, prepared or not.
func TestWinogradAllocs(t *testing.T) {
	for _, wp := range winoPaths {
		r := rand.New(rand.NewPCG(43, 44))
		p, x := randSIMDConv(r, 32, 14, 14, 20, 3, 3, 1, 1)
		y := make([]int8, p.O*p.OH*p.OW)
		for _, prep := range []bool{false, true} {
			if prep {
				p.Prepared = wp.prepare(p)
			}
			var s Scratch
			wp.reserve(&s, p)
			if n := testing.AllocsPerRun(5, func() { wp.conv(p, x, y, nil, &s) }); n != 0 {
				t.Errorf("%s, prepared %v: %v allocations per call", wp.name, prep, n)
			}
		}
	}
}

// Prepared weights are used only for the weights they were made from:
// another Weight slice in the same params is transformed per call.
func TestWinogradPreparedFollowsWeights(t *testing.T) {
	for _, wp := range winoPaths {
		r := rand.New(rand.NewPCG(45, 46))
		p, x := randSIMDConv(r, 20, 9, 9, 10, 3, 3, 1, 1)
		p.Prepared = wp.prepare(p)
		p.Weight = randBytes(r, len(p.Weight), -128)
		got, want := make([]int8, p.O*p.OH*p.OW), make([]int8, p.O*p.OH*p.OW)
		wp.conv(p, x, got, nil, &Scratch{})
		withGeneric(func() { Conv2dInt8(p, x, want, &Scratch{}) })
		if j := firstDiff(got, want); j >= 0 {
			t.Fatalf("%s: stale prepared weights used: y[%d] = %d, want %d", wp.name, j, got[j], want[j])
		}
		if wp.uses(p) {
			t.Errorf("%s: prepared weights used for other weights", wp.name)
		}
	}
}

// Describe says when the Winograd path is in use, and useWinograd
// follows the dispatched kernel and the layer's shape.
func TestWinogradDispatch(t *testing.T) {
	p, _ := randSIMDConv(rand.New(rand.NewPCG(47, 48)), 64, 14, 14, 64, 3, 3, 1, 1)
	on := simdGemm != nil && simdGemm.winograd
	t.Logf("kernel %s", Describe())
	if got := useWinograd(p); got != on {
		t.Errorf("useWinograd = %v on %s", got, Describe())
	}
	if strings.HasSuffix(Describe(), "+winograd") != on {
		t.Errorf("Describe() = %q with winograd %v", Describe(), on)
	}
	// PrepareConv gives U on the Winograd path, else the SIMD kernel's
	// packed weights, and nothing for the generic kernel (below).
	pc := PrepareConv(p)
	if gotU := pc != nil && pc.u != nil; gotU != on {
		t.Errorf("PrepareConv returns U: %v, want %v", gotU, on)
	}
	on43 := useWino43(p)
	if gotU := pc != nil && pc.u43 != nil; gotU != on43 {
		t.Errorf("PrepareConv returns F(4,3) U: %v, want %v", gotU, on43)
	}
	if gotPack := pc != nil && pc.wpack != nil; gotPack != (simdGemm != nil && !on && !on43) {
		t.Errorf("PrepareConv returns packed weights: %v on %s", gotPack, Describe())
	}
	for _, q := range []Conv2dParams{
		{C: 15, KH: 3, KW: 3, Stride: 1, OH: 4, OW: 4},
		{C: 64, KH: 3, KW: 3, Stride: 2, OH: 4, OW: 4},
		{C: 64, KH: 1, KW: 1, Stride: 1, OH: 4, OW: 4},
		{C: 64, KH: 3, KW: 3, Stride: 1, OH: 1, OW: 4},
	} {
		if useWinograd(&q) {
			t.Errorf("%+v takes the Winograd path", q)
		}
	}
	withGeneric(func() {
		if useWinograd(p) || PrepareConv(p) != nil {
			t.Error("Winograd without a SIMD kernel")
		}
	})
}
