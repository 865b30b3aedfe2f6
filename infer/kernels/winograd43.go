package kernels

// Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions, exact in integers.
//
// Lavin's F(4,3) matrices have fractions in G (1/4, 1/6, 1/12, 1/24). With
// D = diag(4, 6, 6, 24, 24, 1), Ĝ = D·G is integer, and since diagonal
// scaling commutes with the element-wise product, Aᵀ[(G g Gᵀ)⊙V]A =
// Aᵀ D⁻¹ [(Ĝ g Ĝᵀ)⊙V] D⁻¹ A. Â ᵀ = 24·Aᵀ D⁻¹ is integer too, so with
//
//	Ĝ  = [1 0 0; −1 −1 −1; −1 1 −1; 1 2 4; 1 −2 4; 0 0 1]
//	Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0;
//	      0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//	Âᵀ = [6 4 4 1 1 0; 0 4 −4 2 −2 0; 0 4 4 4 4 0; 0 4 −4 8 −8 24]
//
// a 4×4 output tile is Âᵀ [Σ_c U_c ⊙ V_c] Â = 576·S, S the direct sum
// Σ w·x without bias. U = Ĝ g Ĝᵀ: |U| ≤ 7·7·128 = 6272 (Ĝ's largest row
// sum is 7); V = Bᵀ d B: |V| ≤ 10·10·128 = 12800. Both fit int16, and a
// VPMADDWD pair of products (≤ 2·6272·12800 < 2³¹) fits int32. Everything
// after is a ring operation, so the int32 result R is 576·S mod 2³².
//
// Recovering S: 576 = 64·9 and 9 is odd, so multiplying R by 9⁻¹ mod 2³²
// (0x38E38E39) gives 64·S mod 2³², and an arithmetic shift by 6 gives S
// itself whenever −2²⁵ ≤ S < 2²⁵. |S| ≤ 9·kc·128·128 for kc input
// channels, so the channels are summed in chunks of at most w43MaxKC
// (226: 9·226·128² < 2²⁵), each chunk's S recovered exactly and added to
// the bias in int32 — the generic kernel's accumulator bit for bit,
// whatever the weights (−128 included) and inputs.
//
// The 36 positions ξ = 6i+j of the 6×6 tile are 36 GEMMs, M_ξ[o][t] =
// Σ_c U_ξ[o][c]·V_ξ[c][t]: 36 multiplications per 16 outputs instead of
// 144, 4× fewer than direct convolution.
//
// Layouts, all with channel pairs (c, c+1) adjacent — the VPMADDWD
// operand — and 8 tiles of a tile row to a block:
//
//	plane: [rows][4 phases][np][2] int8 — one channel pair's padded input
//	       rows, column q at phase q%4, position q/4
//	V:     [nch chunks][36 ξ][ntb/8 blocks][ncp pairs][8 tiles][2] int16
//	U:     [O/8 blocks][nch chunks][36 ξ][ncp pairs][8 channels][2] int16
//	wc:    [O/8 blocks][nch chunks][ncp pairs][9 taps][8 channels][2] int8
//	       — the weights permuted so a pair's taps are 16-byte rows
//	m:     [36 ξ][8 channels][8 tiles] int32
//	acc:   [8 channels][4·tr rows][4·tw4 columns] int32
//
// A tile row has tw4 tiles, a multiple of 4, numbered on through the band
// (t = ty·tw4 + tx); a block is tiles 8b…8b+7, two halves of 4 that are
// side by side in a tile row, or (when tw4/4 is odd) the end of one tile
// row and the start of the next. The phase split lets one 8-byte load
// fetch column 4t+s of a half's 4 tiles for both channels of a pair.
// Tiles past the output (a tile row padded to a multiple of 4, a band to
// whole tile rows, an even number of them when tw4/4 is odd) compute
// values that are never written out.

const (
	w43Pos   = 36  // positions of the 6×6 tile
	w43O     = 8   // output channels per GEMM block
	w43T     = 8   // tiles per GEMM block
	w43MaxKC = 226 // input channels per exact chunk (even)
	// w43MinC is the fewest input channels that take the path: even an
	// RGB input's first layer is faster in F(4,3) than direct (whose
	// 27 taps pad to 32 and whose bias fill and requantization then
	// cost as much as the multiplies).
	w43MinC = 1
	// A band's V (bytes) is read once per block of 8 output channels, U
	// once per band. w43BandL2 keeps V in L2 (measured best for VGG16's
	// layers up to 256×256 channels); layers whose U is over w43FullU
	// (512×512: 19 MB) rather take the whole layer, up to w43BandBig, so
	// that U is read — and transformed — once.
	w43BandL2  = 384 << 10
	w43BandBig = 8 << 20
	// w43Group is the blocks of 8 tiles one GEMM call covers: their sums
	// (9 KiB each) stay in L2 for the output transforms.
	w43Group = 16
	// w43MaxRowV bounds one tile row's V (bytes), the least a band holds.
	w43MaxRowV = 8 << 20
	// w43Inv9 is 9⁻¹ mod 2³².
	w43Inv9 = 0x38E38E39
	// w43FullU is the most bytes of U a layer keeps prepared; larger
	// layers keep their weights permuted (1 byte each, not 8) and
	// transform U a block of 8 channels at a time as a band needs it,
	// which keeps VGG16's prepared weights at ~27 MB instead of 118 MB.
	w43FullU = 8 << 20
)

// Check the chunk bound: 9·w43MaxKC·128² < 2²⁵ and w43MaxKC even.
var (
	_ [1<<25 - 1 - 9*w43MaxKC*128*128]struct{}
	_ [1 - w43MaxKC%2]struct{}
)

// wino43Fits reports whether p can take the F(4,3) path: 3×3, stride 1,
// an output of at least 2×2, and a tile row's V of at most w43MaxRowV
// (wider or deeper layers, which no real network has, stay on the direct
// kernel with its bounded scratch).
func wino43Fits(p *Conv2dParams) bool {
	if p.KH != 3 || p.KW != 3 || p.Stride != 1 || p.C < w43MinC || p.OH < 2 || p.OW < 2 {
		return false
	}
	tw4 := int64((p.OW+3)/4+3) &^ 3
	return int64(w43Pos)*2*int64(p.C+w43MaxKC)*tw4 <= w43MaxRowV
}

// SplitChannels reports whether parts threads had better split p by
// output channels (Conv2dParams.Channels) than by rows: on the F(4,3)
// path, when p's U is too large to keep (each thread would transform all
// of it) or p has fewer than 4 tile rows a thread (each would pad its rows
// to whole tiles), and there are at least 16 channels a thread.
func SplitChannels(p *Conv2dParams, parts int) bool {
	if !useWino43(p) || p.O < 16*parts {
		return false
	}
	g := w43GeomFor(p, (p.C+w43MaxKC-1)/w43MaxKC)
	return 2*g.uSize(p) > w43FullU || (p.OH+3)/4 < 4*parts
}

// useWino43 reports whether this CPU runs p on the F(4,3) path.
func useWino43(p *Conv2dParams) bool {
	return simdGemm != nil && simdGemm.winograd43 && wino43Fits(p)
}

// w43Geom is the F(4,3) path's blocking of one layer.
type w43Geom struct {
	nch, kc, ncp int // chunks, channels per chunk (even), pairs per chunk
	tw4          int // tiles a tile row, a multiple of 4
	np           int // plane positions a phase: tw4 + 1, up to a multiple of 4
	tr           int // tile rows per band
}

// w43GeomOf is p's blocking: in as many chunks as p.Prepared found its
// weights need, or else as any weights may need.
func w43GeomOf(p *Conv2dParams) w43Geom {
	nch := (p.C + w43MaxKC - 1) / w43MaxKC
	if pc := p.Prepared; pc != nil && pc.w43nch > 0 && pc.madeFrom(p) {
		nch = pc.w43nch
	}
	return w43GeomFor(p, nch)
}

// w43Chunk is (C+n−1)/n rounded up to even: the channels of each of n
// chunks.
func w43Chunk(c, n int) int { return ((c+n-1)/n + 1) &^ 1 }

// w43Chunks is the fewest chunks of p's input channels whose sums are
// exact with p's own weights: in every chunk, every output channel's
// Σ|w| · 128 < 2²⁵ (|x| ≤ 128). Any weights fit ceil(C/226) chunks;
// trained and random ones fit far fewer, and each chunk less is one
// output transform less per tile.
func w43Chunks(p *Conv2dParams) int {
	worst := (p.C + w43MaxKC - 1) / w43MaxKC
	sums := make([]int32, p.C+1) // one output channel's prefix sums of Σ|w| over c
	fits := make([]bool, worst+1)
	for n := 1; n <= worst; n++ {
		fits[n] = true
	}
	for o := range p.O {
		for c := range p.C {
			s := int32(0)
			for _, w := range p.Weight[(o*p.C+c)*9:][:9] {
				s += max(int32(w), -int32(w))
			}
			sums[c+1] = sums[c] + s
		}
		for n := 1; n < worst; n++ {
			kc := w43Chunk(p.C, n)
			for c0 := 0; fits[n] && c0 < p.C; c0 += kc {
				if sums[min(c0+kc, p.C)]-sums[c0] > (1<<25-1)/128 {
					fits[n] = false
				}
			}
		}
	}
	for n := 1; n < worst; n++ {
		if fits[n] {
			return n
		}
	}
	return worst
}

func w43GeomFor(p *Conv2dParams, nch int) w43Geom {
	var g w43Geom
	g.nch = nch
	g.kc = w43Chunk(p.C, nch)
	g.ncp = g.kc / 2
	g.tw4 = ((p.OW+3)/4 + 3) &^ 3
	g.np = g.tw4 + 4
	rowV := w43Pos * g.nch * g.kc * g.tw4 * 2 // bytes of V per tile row
	band := w43BandL2
	if 2*g.uSize(p) > w43FullU {
		band = w43BandBig
	}
	g.tr = g.bandRows(min(max(band/rowV, 1), (p.OH+3)/4))
	return g
}

// bandRows rounds a band's tile-row count up to whole blocks of 8 tiles.
func (g *w43Geom) bandRows(tr int) int {
	if g.tw4%w43T != 0 {
		return (tr + 1) &^ 1
	}
	return tr
}

// uBlock is the int16 length of one block of 8 output channels in U.
func (g *w43Geom) uBlock() int { return g.nch * w43Pos * g.ncp * w43O * 2 }

func (g *w43Geom) uSize(p *Conv2dParams) int { return (p.O + w43O - 1) / w43O * g.uBlock() }

// wcBlock is the byte length of one block of 8 output channels in wc.
func (g *w43Geom) wcBlock() int { return g.nch * g.ncp * 9 * w43O * 2 }

func (g *w43Geom) wcSize(p *Conv2dParams) int { return (p.O + w43O - 1) / w43O * g.wcBlock() }

// rowb is a plane row's bytes.
func (g *w43Geom) rowb() int { return 8 * g.np }

// w43Scratch is the F(4,3) path's share of a Scratch.
type w43Scratch struct {
	plane  []int8
	v      []int16
	wc     []int8  // wc permuted by the call, when not prepared
	wcCall []int8  // the wc in use, when there is no full U
	uCall  []int16 // the full U in use, or nil
	ublk   []int16 // one block of U transformed from wc
	mm     []int32 // sums of a group of blocks: [w43Group][36 ξ][8][8]
	acc    []int32
	rows   [2][]int8 // a channel pair's padded input rows (w43Plane)
	q      []int8    // one channel's requantized band rows (w43Out)
}

func (s *w43Scratch) reserve(p *Conv2dParams) {
	g := w43GeomOf(p)
	ntb := g.tr * g.tw4
	s.plane = grow(s.plane, (4*g.tr+2)*g.rowb())
	s.v = grow(s.v, g.nch*w43Pos*g.ncp*ntb*2)
	s.acc = grow(s.acc, w43O*4*g.tr*4*g.tw4)
	s.q = grow(s.q, 4*g.tr*4*g.tw4)
	s.mm = grow(s.mm, w43Group*w43Pos*w43O*w43T)
	s.rows[0] = grow(s.rows[0], 4*g.np)
	s.rows[1] = grow(s.rows[1], 4*g.np)
	if preparedU43(p) == nil {
		s.ublk = grow(s.ublk, g.uBlock())
		if preparedWC43(p) == nil {
			s.wc = grow(s.wc, g.wcSize(p))
		}
	}
}

// prepareWino43 transforms p's weights to U whatever the CPU, or, for a
// layer whose U is over w43FullU, permutes them (wc).
func prepareWino43(p *Conv2dParams) *PreparedConv {
	pc := newPrepared(p)
	pc.w43nch = w43Chunks(p)
	g := w43GeomFor(p, pc.w43nch)
	wc := make([]int8, g.wcSize(p))
	w43Permute(p, &g, wc)
	if 2*g.uSize(p) > w43FullU {
		pc.w43c = wc
		return pc
	}
	pc.u43 = make([]int16, g.uSize(p))
	w43PackU(&g, wc, pc.u43)
	return pc
}

func preparedU43(p *Conv2dParams) []int16 {
	if pc := p.Prepared; pc != nil && pc.u43 != nil && pc.madeFrom(p) {
		return pc.u43
	}
	return nil
}

func preparedWC43(p *Conv2dParams) []int8 {
	if pc := p.Prepared; pc != nil && pc.w43c != nil && pc.madeFrom(p) {
		return pc.w43c
	}
	return nil
}

// w43Permute writes p's weights to wc in its layout (zero for the
// channels past C and O).
func w43Permute(p *Conv2dParams, g *w43Geom, wc []int8) {
	wc = wc[:g.wcSize(p)]
	clear(wc)
	for o := range p.O {
		ob, ol := o/w43O, o%w43O
		for c := range p.C {
			k, cl := c/g.kc, c%g.kc
			w := p.Weight[(o*p.C+c)*9:][:9]
			base := ob*g.wcBlock() + (k*g.ncp+cl/2)*9*16 + ol*2 + cl%2
			for tap, v := range w {
				wc[base+tap*16] = v
			}
		}
	}
}

// w43PackU transforms every block of wc to U (with the dispatched
// w43UChunk: its assembly gives the Go twin's bits, faster at load).
func w43PackU(g *w43Geom, wc []int8, u []int16) {
	for ob := range len(u) / g.uBlock() {
		w43UBlock(g, wc[ob*g.wcBlock():], u[ob*g.uBlock():], w43UChunk)
	}
}

// w43UBlock transforms one block of 8 channels of wc to U with chunk.
func w43UBlock(g *w43Geom, wc []int8, u []int16, chunk func(u []int16, wc []int8, ncp int)) {
	for k := range g.nch {
		chunk(u[k*w43Pos*g.ncp*16:], wc[k*g.ncp*9*16:], g.ncp)
	}
}

// w43UChunk writes U = Ĝ g Ĝᵀ of ncp pairs' permuted weights wc (144
// bytes a pair: 9 taps × 16 lanes) to u[ξ·ncp·16 + cp·16 + lane]. An
// architecture's init may replace it with assembly.
var w43UChunk = w43UChunkGo

func w43UChunkGo(u []int16, wc []int8, ncp int) {
	for cp := range ncp {
		for lane := range 16 {
			var w [9]int32
			for tap := range w {
				w[tap] = int32(wc[cp*144+tap*16+lane])
			}
			var t [6][3]int32
			for j := range 3 {
				t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j] = w43G(w[j], w[3+j], w[6+j])
			}
			for i, r := range t {
				var us [6]int32
				us[0], us[1], us[2], us[3], us[4], us[5] = w43G(r[0], r[1], r[2])
				for j, v := range us {
					u[(6*i+j)*ncp*16+cp*16+lane] = int16(v)
				}
			}
		}
	}
}

// w43G applies Ĝ to a column g0, g1, g2.
func w43G(g0, g1, g2 int32) (r0, r1, r2, r3, r4, r5 int32) {
	return g0, -g0 - g1 - g2, -g0 + g1 - g2, g0 + 2*g1 + 4*g2, g0 - 2*g1 + 4*g2, g2
}

// convWino43 is conv2d on the F(4,3) path; p must fit (wino43Fits).
func convWino43(p *Conv2dParams, x []int8, g *gemm, s *w43Scratch) {
	s.reserve(p)
	geo := w43GeomOf(p)
	s.uCall, s.wcCall = preparedU43(p), nil
	if s.uCall == nil {
		if s.wcCall = preparedWC43(p); s.wcCall == nil {
			w43Permute(p, &geo, s.wc)
			s.wcCall = s.wc
		}
	}
	yBegin, yEnd := 0, p.OH
	if p.RowsEnd > 0 {
		yBegin, yEnd = p.RowsBegin, p.RowsEnd
	}
	for oy0 := yBegin; oy0 < yEnd; oy0 += 4 * geo.tr {
		w43BandRun(p, x, g, s, &geo, oy0, min(4*geo.tr, yEnd-oy0))
	}
}

// w43BandRun computes output rows [oy0, oy0+r) of every channel.
func w43BandRun(p *Conv2dParams, x []int8, g *gemm, s *w43Scratch, geo *w43Geom, oy0, r int) {
	tr := geo.bandRows((r + 3) / 4)
	ntb := tr * geo.tw4
	rowb := geo.rowb()
	prows := 4*tr + 2
	pl := s.plane[:prows*rowb]
	vb := geo.ncp * 16    // int16 between blocks in V
	xs := ntb / w43T * vb // … and between ξ
	v := s.v[:geo.nch*w43Pos*xs]
	wide := geo.tw4%w43T == 0
	for k := range geo.nch {
		for cp := range geo.ncp {
			c := k*geo.kc + 2*cp
			w43Plane(p, x, c, oy0, prows, geo.np, pl, &s.rows)
			vk := v[k*w43Pos*xs+cp*16:]
			if wide { // whole tile rows of blocks, halves side by side
				for ty := range tr {
					w43InputRow(vk[ty*geo.tw4/w43T*vb:], xs, vb, pl[4*ty*rowb:], 8, 16, rowb, geo.np, geo.tw4/w43T)
				}
				continue
			}
			for t0 := 0; t0 < ntb; t0 += w43T {
				a, b := geo.halfPlane(t0, rowb), geo.halfPlane(t0+4, rowb)
				w43InputRow(vk[t0/w43T*vb:], xs, vb, pl[a:], b-a, 0, rowb, geo.np, 1)
			}
		}
	}
	rowlen := 4 * geo.tw4
	ps := 4 * tr * rowlen
	acc := s.acc[:w43O*ps]
	ub := geo.uBlock()
	for ob := 0; ob < p.O; ob += w43O {
		no := min(w43O, p.O-ob)
		var u []int16
		if s.uCall != nil {
			u = s.uCall[ob/w43O*ub:]
		} else {
			u = s.ublk[:ub]
			w43UBlock(geo, s.wcCall[ob/w43O*geo.wcBlock():], u, w43UChunk)
		}
		// Groups of up to w43Group blocks, each chunk's GEMM over the
		// whole group, then its output transforms.
		nbt := ntb / w43T
		for g0 := 0; g0 < nbt; g0 += w43Group {
			gn := min(w43Group, nbt-g0)
			for k := range geo.nch {
				w43GemmN(u[k*w43Pos*geo.ncp*16:], v[k*w43Pos*xs+g0*vb:], geo.ncp, xs, vb, gn, s.mm)
				var bias []int32 // the first chunk starts the sums from the bias
				if k == 0 {
					bias = g.bias[ob : ob+no]
				}
				for bl := range gn {
					t0 := (g0 + bl) * w43T
					a, b := geo.halfAcc(t0, rowlen), geo.halfAcc(t0+4, rowlen)
					m := (*[w43Pos * w43O * w43T]int32)(s.mm[bl*w43Pos*w43O*w43T:])
					w43Output(m, no, bias, acc[a:], b-a, ps, rowlen)
				}
			}
		}
		for ol := range no {
			w43Out(g, ob+ol, acc[ol*ps:ol*ps+r*rowlen], rowlen, p.OW, oy0, s.q)
		}
	}
}

// w43Out writes channel o's rows of acc (rowlen apart, ow of each
// output) to output rows oy0…. The int8 epilogue of a SIMD kernel takes
// all the rows in one call, through q when the rows are padded: one call
// per row costs more than the requantization of a 14- to 56-wide row.
func w43Out(g *gemm, o int, acc []int32, rowlen, ow, oy0 int, q []int8) {
	r := len(acc) / rowlen
	if rowlen == ow {
		g.out(o, acc, oy0*ow)
		return
	}
	if g.yf != nil || simdGemm == nil || simdGemm.requant == nil {
		for y := range r {
			g.out(o, acc[y*rowlen:y*rowlen+ow], (oy0+y)*ow)
		}
		return
	}
	q = q[:len(acc)]
	simdGemm.requant(q, acc, 0, g.mult[o], g.shift[o], g.zero, g.relu)
	dst := g.y8[o*g.plane+oy0*ow:]
	for y := range r {
		copy(dst[y*ow:(y+1)*ow], q[y*rowlen:])
	}
}

// halfPlane is where tile t's (a multiple of 4) columns start in the
// plane: its tile row's first plane row, its position.
func (g *w43Geom) halfPlane(t, rowb int) int {
	return 4*(t/g.tw4)*rowb + 2*(t%g.tw4)
}

// halfAcc is where tile t's outputs start in a channel's acc.
func (g *w43Geom) halfAcc(t, rowlen int) int {
	return 4*(t/g.tw4)*rowlen + 4*(t%g.tw4)
}

// w43Plane writes channels c and c+1 (zero past C) of plane rows oy0−Pad…
// (prows of them) to pl in the phase-split, pair-interleaved layout,
// PadValue outside the image. rows holds each channel's padded row on
// the way.
func w43Plane(p *Conv2dParams, x []int8, c, oy0, prows, np int, pl []int8, rows *[2][]int8) {
	n := 4 * np
	hw := p.H * p.W
	lo := min(p.Pad, n)     // row columns before the image
	hi := min(p.Pad+p.W, n) // … and after it
	for py := range prows {
		iy := oy0 - p.Pad + py
		for e := range 2 {
			row := rows[e][:n]
			ch := c + e
			switch {
			case ch >= p.C:
				clear(row)
			case iy < 0 || iy >= p.H:
				fill(row, p.PadValue[ch])
			default:
				pv := p.PadValue[ch]
				fill(row[:lo], pv)
				copy(row[lo:hi], x[ch*hw+iy*p.W:][:hi-lo])
				fill(row[hi:], pv)
			}
		}
		w43PlaneRow(pl[py*8*np:][:8*np], rows[0][:n], rows[1][:n], np)
	}
}

// w43PlaneRow interleaves the padded rows a and b (4·np columns, np a
// multiple of 4) in pairs and splits them by phase: dst[(q%4)·2np +
// 2(q/4) + e] = (a, b)[e][q]. An architecture's init may replace it.
var w43PlaneRow = w43PlaneRowGo

func w43PlaneRowGo(dst, a, b []int8, np int) {
	for q, v := range a[:4*np] {
		d := (q%4)*2*np + 2*(q/4)
		dst[d], dst[d+1] = v, b[q]
	}
}

// w43InputRow transforms nb blocks of 8 tiles. Block i's first 4 tiles
// start at byte i·step of pl, its other 4 at i·step + d: tile l of a
// half at base B has column s of plane row r at B + r·rowb + (s%4)·2np +
// 2(l + s/4) (+1 for the pair's second channel). V_ξ = (Bᵀ d B)_ξ of
// block tile l (both channels) goes to v[ξ·xs + i·vb + 2l + e]. An
// architecture's init may replace it with assembly.
var w43InputRow = w43InputRowGo

func w43InputRowGo(v []int16, xs, vb int, pl []int8, d, step, rowb, np, nb int) {
	for t := range w43T * nb {
		base := t/w43T*step + (t%w43T)/4*d
		l := t % 4
		for e := range 2 {
			var dd [6][6]int32
			for r := range 6 {
				for s := range 6 {
					dd[r][s] = int32(pl[base+r*rowb+(s%4)*2*np+2*(l+s/4)+e])
				}
			}
			var w [6][6]int32 // Bᵀ d
			for s := range 6 {
				w0, w1, w2, w3, w4, w5 := w43BT(dd[0][s], dd[1][s], dd[2][s], dd[3][s], dd[4][s], dd[5][s])
				w[0][s], w[1][s], w[2][s], w[3][s], w[4][s], w[5][s] = w0, w1, w2, w3, w4, w5
			}
			for i := range 6 {
				r := w[i]
				y := [6]int32{}
				y[0], y[1], y[2], y[3], y[4], y[5] = w43BT(r[0], r[1], r[2], r[3], r[4], r[5])
				for j := range 6 {
					v[(6*i+j)*xs+t/w43T*vb+2*(t%w43T)+e] = int16(y[j])
				}
			}
		}
	}
}

// w43BT applies Bᵀ to a column d0…d5.
func w43BT(d0, d1, d2, d3, d4, d5 int32) (r0, r1, r2, r3, r4, r5 int32) {
	r0 = 4*d0 - 5*d2 + d4
	r1 = -4*d1 - 4*d2 + d3 + d4
	r2 = 4*d1 - 4*d2 - d3 + d4
	r3 = -2*d1 - d2 + 2*d3 + d4
	r4 = 2*d1 - d2 - 2*d3 + d4
	r5 = 4*d1 - 5*d3 + d5
	return
}

// w43GemmN computes, for nb consecutive blocks of tiles (vb apart in V),
// w43GemmGo of each into m[b·2304:]: one call per band's group of blocks,
// so that an architecture's kernel can keep U_ξ in L1 across the blocks.
// An architecture's init may replace it.
var w43GemmN = w43GemmNGo

func w43GemmNGo(u, v []int16, ncp, xs, vb, nb int, m []int32) {
	for b := range nb {
		w43GemmGo(u, v[b*vb:], ncp, xs, (*[w43Pos * w43O * w43T]int32)(m[b*w43Pos*w43O*w43T:]))
	}
}

// w43GemmGo computes m[ξ·64 + o·8 + t] = Σ_{cp<ncp, e<2} u[(ξ·ncp+cp)·16 +
// 2o + e] · v[ξ·xs + cp·16 + 2t + e] for the 36 ξ, 8 channels o and 8
// tiles t, wrapping in int32: one block of tiles.
func w43GemmGo(u, v []int16, ncp, xs int, m *[w43Pos * w43O * w43T]int32) {
	for xi := range w43Pos {
		var a [64]int32
		for cp := range ncp {
			ur := u[(xi*ncp+cp)*16:][:16]
			vr := v[xi*xs+cp*16:][:16]
			for o := range 8 {
				u0, u1 := int32(ur[2*o]), int32(ur[2*o+1])
				for t := range 8 {
					a[o*8+t] += u0*int32(vr[2*t]) + u1*int32(vr[2*t+1])
				}
			}
		}
		copy(m[xi*64:], a[:])
	}
}

// w43Output adds the exact sums of m's first no channels to acc, or,
// when bias is not nil, stores them plus bias[o]: block tile t's output
// (a, b) of channel o goes to acc[o·ps + h + a·rowlen + 4(t%4) + b], h =
// 0 for tiles 0…3 and d for tiles 4…7. An architecture's init may
// replace it with assembly.
var w43Output = w43OutputGo

func w43OutputGo(m *[w43Pos * w43O * w43T]int32, no int, bias, acc []int32, d, ps, rowlen int) {
	for o := range no {
		for t := range w43T {
			var q [6][6]int32
			for i := range 6 {
				for j := range 6 {
					q[i][j] = m[(6*i+j)*64+o*8+t]
				}
			}
			var tm [4][6]int32 // Âᵀ M
			for j := range 6 {
				tm[0][j], tm[1][j], tm[2][j], tm[3][j] = w43AT(q[0][j], q[1][j], q[2][j], q[3][j], q[4][j], q[5][j])
			}
			for a := range 4 {
				r := tm[a]
				var y [4]int32
				y[0], y[1], y[2], y[3] = w43AT(r[0], r[1], r[2], r[3], r[4], r[5])
				dst := acc[o*ps+t/4*d+a*rowlen+4*(t%4):][:4]
				for b, yb := range y {
					if bias != nil {
						dst[b] = bias[o] + w43Exact(yb)
					} else {
						dst[b] += w43Exact(yb)
					}
				}
			}
		}
	}
}

// w43AT applies Âᵀ to a column m0…m5 (wrapping).
func w43AT(m0, m1, m2, m3, m4, m5 int32) (r0, r1, r2, r3 int32) {
	s12, d12, s34, d34 := m1+m2, m1-m2, m3+m4, m3-m4
	r0 = 6*m0 + 4*s12 + s34
	r1 = 4*d12 + 2*d34
	r2 = 4*s12 + 4*s34
	r3 = 4*d12 + 8*d34 + 24*m5
	return
}

// w43Exact turns 576·S mod 2³² into S (|S| < 2²⁵).
func w43Exact(r int32) int32 { return int32(uint32(r)*w43Inv9) >> 6 }
