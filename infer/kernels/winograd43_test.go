package kernels

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// w43Conv runs p on the F(4,3) path whatever the dispatch.
func w43Conv(p *Conv2dParams, x, y8 []int8, yf []float32, s *Scratch) {
	g := newGemm(p, y8, yf)
	convWino43(p, x, &g, &s.w43)
}

// w43Impl is a choice of the F(4,3) path's replaceable parts.
type w43Impl struct {
	plane  func(dst, a, b []int8, np int)
	uchunk func(u []int16, wc []int8, ncp int)
	input  func(v []int16, xs, vb int, pl []int8, d, step, rowb, np, nb int)
	gemmN  func(u, v []int16, ncp, xs, vb, nb int, m []int32)
	output func(m *[w43Pos * w43O * w43T]int32, no int, bias, acc []int32, d, ps, rowlen int)
}

// w43Impls are the implementations to test: the Go ones and the
// dispatched ones (assembly where the CPU has it; where they are the Go
// ones, once).
func w43Impls() map[string]w43Impl {
	impls := map[string]w43Impl{"go": {w43PlaneRowGo, w43UChunkGo, w43InputRowGo, w43GemmNGo, w43OutputGo}}
	if reflect.ValueOf(w43GemmN).Pointer() != reflect.ValueOf(w43GemmNGo).Pointer() {
		impls["dispatched"] = w43Impl{w43PlaneRow, w43UChunk, w43InputRow, w43GemmN, w43Output}
	}
	return impls
}

func withW43(impl w43Impl, run func()) {
	pl, uc, in, gn, out := w43PlaneRow, w43UChunk, w43InputRow, w43GemmN, w43Output
	defer func() { w43PlaneRow, w43UChunk, w43InputRow, w43GemmN, w43Output = pl, uc, in, gn, out }()
	w43PlaneRow, w43UChunk, w43InputRow, w43GemmN, w43Output = impl.plane, impl.uchunk, impl.input, impl.gemmN, impl.output
	run()
}

// The F(4,3) path equals the generic direct kernel bit for bit (int8 and
// logits) on odd shapes: maps 1…11 and around the tile (4) and block (32
// columns) sizes, 14×14 and 7×7, C and O off multiples of 2 and 8, C past
// one chunk (226) with an odd last pair, pads 0…2, −128 weights, prepared
// and per-call weights, and row ranges split like a Session's threads.
func TestWino43MatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	type shape struct{ c, h, w, o, pad int }
	shapes := []shape{
		{16, 4, 4, 8, 0}, {16, 14, 14, 16, 1}, {17, 13, 13, 9, 1}, {5, 9, 7, 33, 1},
		{67, 28, 28, 7, 1}, {64, 14, 14, 24, 1}, {33, 6, 9, 17, 0}, {4, 8, 8, 8, 2},
		{20, 2, 30, 5, 1}, {8, 30, 2, 5, 1}, {31, 3, 3, 31, 0}, {9, 7, 8, 1, 1},
		{40, 15, 17, 12, 1}, {3, 20, 20, 4, 0}, {1, 9, 9, 33, 1}, {12, 5, 44, 3, 1},
		{16, 7, 7, 8, 1}, {18, 33, 35, 9, 1}, {16, 36, 65, 3, 1},
		{227, 7, 7, 9, 1}, {229, 5, 9, 3, 1}, {453, 6, 6, 10, 1}, {512, 4, 4, 8, 1},
	}
	grid := 11
	if testing.Short() { // under qemu in CI: the fixed shapes and a smaller grid
		grid = 6
	}
	for h := 1; h <= grid; h++ {
		for w := 1; w <= grid; w++ {
			pad := r.IntN(2)
			if h+2*pad < 3 || w+2*pad < 3 {
				pad = 1
			}
			shapes = append(shapes, shape{1 + r.IntN(67), h, w, 1 + r.IntN(33), pad})
		}
	}
	for range grid * 2 {
		shapes = append(shapes, shape{1 + r.IntN(67), 1 + r.IntN(40), 1 + r.IntN(40), 1 + r.IntN(33), 1})
	}
	for name, impl := range w43Impls() {
		withW43(impl, func() {
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
				// Per call, prepared U, and prepared permuted weights
				// (what layers over w43FullU keep).
				for _, prep := range []string{"no", "U", "wc"} {
					q := *p
					switch prep {
					case "U":
						q.Prepared = prepareWino43(&q)
					case "wc":
						g := w43GeomOf(&q)
						q.Prepared = newPrepared(&q)
						q.Prepared.w43c = make([]int8, g.wcSize(&q))
						w43Permute(&q, &g, q.Prepared.w43c)
					}
					matchInRowParts(t, fmt.Sprintf("%s, %+v prepared %s", name, sh, prep), &q, x, want8, wantF, &s, w43Conv)
				}
			}
		})
	}
}

// The bounds the exactness argument rests on: |U| ≤ 6272 (−128 weights),
// |V| ≤ 12800 (−128 inputs), and a chunk of w43MaxKC channels of −128·−128
// or −128·127 everywhere, where S is closest to 2²⁵, still exact — in the
// largest layer shape that has two full chunks.
func TestWino43Bounds(t *testing.T) {
	for _, wv := range []int8{-128, 127} {
		p := &Conv2dParams{C: 1, H: 4, W: 4, O: 1, KH: 3, KW: 3, Stride: 1, OH: 2, OW: 2,
			Weight: slices.Repeat([]int8{wv}, 9)}
		g := w43GeomOf(p)
		u := make([]int16, g.uSize(p))
		wc := make([]int8, g.wcSize(p))
		w43Permute(p, &g, wc)
		w43PackU(&g, wc, u)
		m := max(-int(slices.Min(u)), int(slices.Max(u)))
		if want := 49 * int(max(-int(wv), int(wv))); m != want {
			t.Errorf("w=%d: max |U| = %d, want %d", wv, m, want)
		}
	}
	// V of a constant −128 tile: (Bᵀ 1)ᵢ(Bᵀ 1)ⱼ·−128, largest |Bᵀ row sum|
	// is 0 for a constant, so use the alternating pattern that reaches
	// Σ|Bᵀ| = 10 on row 0: d = sign(Bᵀ₀ₛ)·sign(Bᵀ₀ᵣ)·−128.
	sg := [6]int32{1, 0, -1, 0, 1, 0}
	np := 12
	rowb := 8 * np
	pl := make([]int8, 6*rowb)
	for rr := range 6 {
		for s := range 6 {
			v := sg[rr] * sg[s] * -128
			if v == 128 {
				v = 127
			}
			if v == 0 {
				v = -128
			}
			pl[rr*rowb+(s%4)*2*np+2*(s/4)] = int8(v)
		}
	}
	v := make([]int16, 36*16*8)
	w43InputRowGo(v, 16*8, 16, pl, 8, 16, rowb, np, 1)
	if got := max(-int(slices.Min(v)), int(slices.Max(v))); got < 12000 || got > 12800 {
		t.Errorf("max |V| = %d, want within the bound 12800 and near it", got)
	}
	if 9*w43MaxKC*128*128 >= 1<<25 || 9*(w43MaxKC+2)*128*128 < 1<<25 {
		t.Errorf("w43MaxKC %d is not the largest even kc with 9·kc·128² < 2²⁵", w43MaxKC)
	}
	for _, xv := range []int8{-128, 127} {
		for _, wv := range []int8{-128, 127} {
			c := 2 * w43MaxKC
			p := &Conv2dParams{C: c, H: 4, W: 4, O: 2, KH: 3, KW: 3, Stride: 1, Pad: 1, OH: 4, OW: 4,
				Weight: slices.Repeat([]int8{wv}, 2*c*9), Bias: make([]int32, 2),
				PadValue: slices.Repeat([]int8{xv}, c), InScale: 1, WScale: []float32{1, 1}}
			if g := w43GeomOf(p); g.nch != 2 || g.kc != w43MaxKC {
				t.Fatalf("C=%d: %d chunks of %d, want 2 of %d", c, g.nch, g.kc, w43MaxKC)
			}
			x := slices.Repeat([]int8{xv}, c*16)
			got, want := make([]float32, 32), make([]float32, 32)
			w43Conv(p, x, nil, got, &Scratch{})
			withGeneric(func() { Conv2dLogits(p, x, want, &Scratch{}) })
			if e := float32(int64(9*c) * int64(xv) * int64(wv)); want[0] != e {
				t.Fatalf("generic %v, want %v", want[0], e)
			}
			if j := firstDiff(f32Bits(got), f32Bits(want)); j >= 0 {
				t.Fatalf("x=%d w=%d: y[%d] = %v, want %v", xv, wv, j, got[j], want[j])
			}
		}
	}
}

// A layer whose U is over w43FullU keeps permuted weights (1 byte a
// weight), a smaller one its U.
func TestWino43PreparedSize(t *testing.T) {
	r := rand.New(rand.NewPCG(57, 58))
	for _, tc := range []struct {
		c, o   int
		wantWC bool
	}{{256, 256, false}, {256, 512, true}, {512, 512, true}} {
		p, _ := randSIMDConv(r, tc.c, 4, 4, tc.o, 3, 3, 1, 1)
		pc := prepareWino43(p)
		if (pc.w43c != nil) != tc.wantWC || (pc.u43 != nil) == tc.wantWC {
			t.Errorf("C=%d O=%d: U %d, wc %d values", tc.c, tc.o, len(pc.u43), len(pc.w43c))
		}
		if pc.Bytes() > w43FullU {
			t.Errorf("C=%d O=%d: prepared %d bytes > %d", tc.c, tc.o, pc.Bytes(), w43FullU)
		}
	}
}

// BenchmarkWino43VGG16 times the F(4,3) path with prepared U on VGG16's
// 3×3 shapes (the dispatched parts), reporting direct-equivalent GMAC/s.
func BenchmarkWino43VGG16(b *testing.B) {
	for _, tc := range []struct{ c, hw, o int }{
		{3, 224, 64}, {64, 224, 64}, {64, 112, 128}, {128, 112, 128}, {128, 56, 256}, {256, 56, 256},
		{256, 28, 512}, {512, 28, 512}, {512, 14, 512},
	} {
		b.Run(fmt.Sprintf("%dx%d-%d", tc.c, tc.hw, tc.o), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			p, x := randConv(r, tc.c, tc.hw, tc.hw, tc.o, 3, 1, 1)
			p.Prepared = prepareWino43(p)
			y := make([]int8, p.O*p.OH*p.OW)
			var s Scratch
			s.w43.reserve(p)
			b.ResetTimer()
			best := time.Duration(1 << 62) // the least disturbed run, on a shared host
			for range b.N {
				t0 := time.Now()
				w43Conv(p, x, y, nil, &s)
				best = min(best, time.Since(t0))
			}
			macs := float64(p.O*p.Taps()) * float64(p.OH*p.OW)
			b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			b.ReportMetric(macs/best.Seconds()/1e9, "best-GMAC/s")
		})
	}
}

// useWino43 follows the dispatched kernel and the layer's shape, and
// Describe names the path.
func TestWino43Dispatch(t *testing.T) {
	on := simdGemm != nil && simdGemm.winograd43
	t.Logf("kernel %s", Describe())
	if strings.HasSuffix(Describe(), "+winograd43") != on {
		t.Errorf("Describe() = %q with winograd43 %v", Describe(), on)
	}
	for _, tc := range []struct {
		q    Conv2dParams
		fits bool
	}{
		{Conv2dParams{C: 16, KH: 3, KW: 3, Stride: 1, OH: 2, OW: 2}, true},
		{Conv2dParams{C: 512, KH: 3, KW: 3, Stride: 1, OH: 14, OW: 14}, true},
		{Conv2dParams{C: 3, KH: 3, KW: 3, Stride: 1, OH: 4, OW: 4}, true},
		{Conv2dParams{C: 64, KH: 3, KW: 3, Stride: 2, OH: 4, OW: 4}, false},
		{Conv2dParams{C: 64, KH: 1, KW: 1, Stride: 1, OH: 4, OW: 4}, false},
		{Conv2dParams{C: 64, KH: 3, KW: 3, Stride: 1, OH: 1, OW: 4}, false},
		{Conv2dParams{C: 4096, KH: 3, KW: 3, Stride: 1, OH: 56, OW: 56}, true},
		{Conv2dParams{C: 4096, KH: 3, KW: 3, Stride: 1, OH: 4, OW: 4096}, false}, // V of a tile row: 604 MB
		{Conv2dParams{C: 1 << 20, KH: 3, KW: 3, Stride: 1, OH: 4, OW: 4}, false},
	} {
		if got := useWino43(&tc.q); got != (on && tc.fits) {
			t.Errorf("%+v: useWino43 = %v", tc.q, got)
		}
	}
}

// PrepareConv takes as few input-channel chunks as the weights allow:
// ceil(C/226) for the extreme weights, fewer for smaller ones, and a
// chunk whose Σ|w|·128 is just below 2²⁵ is still exact against the
// generic kernel (inputs at −128, where |S| is largest).
func TestWino43Chunks(t *testing.T) {
	r := rand.New(rand.NewPCG(59, 60))
	uniform := func(n int) []int8 {
		w := make([]int8, n)
		for i := range w {
			w[i] = int8(r.IntN(255) - 127)
		}
		return w
	}
	for _, tc := range []struct {
		name string
		c    int
		w    func(n int) []int8
		want int
	}{
		{"all 127", 512, func(n int) []int8 { return slices.Repeat([]int8{127}, n) }, 3},
		{"all -128", 453, func(n int) []int8 { return slices.Repeat([]int8{-128}, n) }, 3},
		{"uniform", 512, uniform, 2},
		{"uniform", 256, uniform, 1},
		{"small", 1024, func(n int) []int8 { return slices.Repeat([]int8{3, -2, 0}, n/3) }, 1},
	} {
		p, _ := randSIMDConv(r, tc.c, 4, 4, 3, 3, 3, 1, 1)
		p.Weight = tc.w(len(p.Weight))
		if got := w43Chunks(p); got != tc.want {
			t.Errorf("%s C=%d: %d chunks, want %d", tc.name, tc.c, got, tc.want)
		}
	}
	// Σ|w| = 262143 in one chunk of 2048 channels: 9·2048 = 18432 weights.
	c := 2048
	p, _ := randSIMDConv(r, c, 4, 4, 2, 3, 3, 1, 1)
	clear(p.Weight) // 2064·127 + 15 = 262143, spread over the channels
	for i := range 2064 {
		k := i * 9 * c / 2064
		p.Weight[k], p.Weight[9*c+k] = -127, 127
	}
	p.Weight[9*c-1], p.Weight[18*c-1] = -15, 15
	s := 0
	for _, w := range p.Weight[:9*c] {
		s += max(int(w), -int(w))
	}
	if s != 262143 {
		t.Fatalf("test weights sum to %d", s)
	}
	if n := w43Chunks(p); n != 1 {
		t.Fatalf("Σ|w| = 262143: %d chunks, want 1", n)
	}
	p.Weight[9*c-1]-- // one more: no longer one chunk
	if n := w43Chunks(p); n == 1 {
		t.Errorf("Σ|w| = 262144: 1 chunk")
	}
	p.Weight[9*c-1]++
	x := slices.Repeat([]int8{-128}, c*16)
	p.PadValue = slices.Repeat([]int8{-128}, c)
	p.Prepared = prepareWino43(p)
	n := p.O * p.OH * p.OW
	got, want := make([]float32, n), make([]float32, n)
	w43Conv(p, x, nil, got, &Scratch{})
	withGeneric(func() { Conv2dLogits(p, x, want, &Scratch{}) })
	if j := firstDiff(f32Bits(got), f32Bits(want)); j >= 0 {
		t.Fatalf("one chunk at the bound: y[%d] = %v, want %v", j, got[j], want[j])
	}
}
