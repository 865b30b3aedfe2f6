package kernels

// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions, exact in integers.
//
// With the 1-D F(2,3) matrices
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//	Ĝ  = 2G = [2 0 0; 1 1 1; 1 −1 1; 0 0 2]
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// a 2×2 output tile of channel o is Aᵀ [Σ_c U_oc ⊙ V_c] A / 4, where U_oc =
// Ĝ g_oc Ĝᵀ is the 4×4 transform of the 3×3 weights (integers because Ĝ
// is 2G; |U| ≤ 3·3·128 = 1152) and V_c = Bᵀ d_c B the transform of the
// 4×4 input tile (|V| ≤ 4·128 = 512). Both fit int16; each product U·V
// (≤ 589,824) and the sums over c are int32. Every step is a ring
// operation, so the int32 result is 4·S mod 2³², S the direct sum
// Σ_{c,ky,kx} w·x without bias; |S| ≤ 9·C·128·128, so for C ≤ winoMaxC
// 4·S fits int32, the wrapped value is 4·S itself and an arithmetic shift
// by 2 gives S exactly. Adding the bias then gives the generic kernel's
// accumulator bit for bit (int32 addition is associative mod 2³²), and
// the shared epilogue (gemm.out) requantizes it. −128 weights and inputs
// are covered by the bounds above.
//
// The 16 products per (o, c, tile) are 16 independent GEMMs (one per
// position ξ = 4i+j of the 4×4 tile): M_ξ[o][t] = Σ_c U_ξ[o][c]·V_ξ[c][t].
// They replace 36 multiplications of the direct convolution: 2.25× fewer.
//
// Layouts (int16):
//
//	U: [O/8 blocks][16 ξ][cpad][8 channels]  (cpad = C rounded up to 4)
//	V: [16 ξ][cpad][ntp tiles]               (one band's tiles, row-major)
//
// A block kernel (winoBlock) multiplies 8 channels by 8 tiles for all 16
// ξ: both operands are then read as rows that follow each other, U at 16
// bytes per c and V at a stride of ntp. Channels past O have zero U, so
// the padded c and tiles past the band only compute values that are
// dropped.

const (
	// winoMaxC bounds C so that 4·S fits int32: 4·9·C·128·128 < 2³¹.
	winoMaxC = (1<<31 - 1) / (4 * 9 * 128 * 128)
	// winoMinC is the smallest C that takes the Winograd path: below it
	// the transforms cost more than the multiplications they save.
	winoMinC = 16
	// winoBand bounds a band's V (bytes) so that it stays in L2 while
	// every block of output channels streams over it.
	winoBand = 256 << 10
	winoO    = 8 // output channels per block
	winoT    = 8 // tiles per block
)

// winogradFits reports whether p can take the Winograd path: 3×3, stride
// 1, C in [winoMinC, winoMaxC], and an output of at least 2×2.
func winogradFits(p *Conv2dParams) bool {
	return p.KH == 3 && p.KW == 3 && p.Stride == 1 &&
		p.C >= winoMinC && p.C <= winoMaxC && p.OH >= 2 && p.OW >= 2
}

// useWinograd reports whether this CPU runs p on the Winograd path: the
// dispatched SIMD kernel asks for it (the non-dotprod NEON kernel) and p
// fits.
func useWinograd(p *Conv2dParams) bool {
	return simdGemm != nil && simdGemm.winograd && winogradFits(p)
}

// winoBlock computes, for the 16 positions ξ, m[ξ·64 + o·8 + k] =
// Σ_{c < 4·cq} u[(ξ·4cq + c)·8 + o] · v[(ξ·4cq + c)·ldv + k] (o < 8; k < 8,
// or k < 4 when n ≤ 4: the other tiles' values are then anything),
// wrapping in int32. An architecture's init may replace it with assembly.
var winoBlock = winoBlockGo

func winoBlockGo(u, v []int16, cq, ldv, n int, m *[16 * 64]int32) {
	cpad := 4 * cq
	for xi := range 16 {
		var a [64]int32
		for c := range cpad {
			ur := u[(xi*cpad+c)*8:][:8]
			vr := v[(xi*cpad+c)*ldv:][:8]
			for o, uo := range ur {
				for k, vk := range vr {
					a[o*8+k] += int32(uo) * int32(vk)
				}
			}
		}
		copy(m[xi*64:], a[:])
	}
}

// prepareWinograd transforms p's weights to U whatever the CPU: U is
// the same for the Go and assembly Winograd kernels.
func prepareWinograd(p *Conv2dParams) *PreparedConv {
	pc := newPrepared(p)
	pc.u = make([]int16, winoUSize(p))
	for ob := 0; ob < p.O; ob += winoO {
		winoPackU(p, ob, pc.u[ob/winoO*winoUBlock(p):])
	}
	return pc
}

// winoUBlock is the size of one block of 8 channels in U.
func winoUBlock(p *Conv2dParams) int { return 16 * roundUp4(p.C) * winoO }

func winoUSize(p *Conv2dParams) int { return (p.O + winoO - 1) / winoO * winoUBlock(p) }

func roundUp4(c int) int { return (c + 3) &^ 3 }

// preparedU returns p's U when p.Prepared holds U made from p.Weight.
func preparedU(p *Conv2dParams) []int16 {
	if pc := p.Prepared; pc != nil && pc.u != nil && pc.madeFrom(p) {
		return pc.u
	}
	return nil
}

// winoPackU writes U for channels ob…ob+7 (zero past O) to u in the
// [16 ξ][cpad][8] layout: U = Ĝ g Ĝᵀ.
func winoPackU(p *Conv2dParams, ob int, u []int16) {
	cpad := roundUp4(p.C)
	u = u[:16*cpad*winoO]
	clear(u)
	for ol := range min(winoO, p.O-ob) {
		for c := range p.C {
			g := p.Weight[((ob+ol)*p.C+c)*9:][:9]
			// t = Ĝ g (4×3), then U = t Ĝᵀ (4×4).
			var t [4][3]int32
			for j := range 3 {
				g0, g1, g2 := int32(g[j]), int32(g[3+j]), int32(g[6+j])
				t[0][j] = 2 * g0
				t[1][j] = g0 + g1 + g2
				t[2][j] = g0 - g1 + g2
				t[3][j] = 2 * g2
			}
			for i := range 4 {
				r := t[i]
				us := [4]int32{2 * r[0], r[0] + r[1] + r[2], r[0] - r[1] + r[2], 2 * r[2]}
				for j, v := range us {
					u[((4*i+j)*cpad+c)*winoO+ol] = int16(v)
				}
			}
		}
	}
}

// winoScratch is the Winograd path's share of a Scratch.
type winoScratch struct {
	v     []int16 // V of one band
	u     []int16 // U transformed by the call, when not prepared
	uCall []int16 // the U in use: p.Prepared's or u
	plane []int8  // one channel's padded input rows for a band
	acc   []int32 // [8 channels][winoPS]: the band's outputs before requantization
	m     [16 * 64]int32
	off   [winoT]int // where a block's tiles go in acc
}

// winoBandOf returns a band's output rows: an even number (whole tile
// rows) whose V stays within winoBand, at least one tile row. Of the
// tile-row counts from the most that fit down to half that, it takes the
// one that wastes the fewest block slots (blocks of 8 tiles, the last
// one of 4 or 8).
func winoBandOf(p *Conv2dParams) int {
	tw, th := (p.OW+1)/2, (p.OH+1)/2
	rowBytes := 16 * 2 * roundUp4(p.C) * tw
	most := min(max(winoBand/rowBytes, 1), th)
	best, bestWaste := most, 1.0
	for k := most; k >= max(most/2, 1); k-- {
		bands := (th + k - 1) / k
		slots := (bands-1)*winoSlots(k*tw) + winoSlots((th-(bands-1)*k)*tw)
		if w := float64(slots-th*tw) / float64(th*tw); w < bestWaste-1e-9 {
			best, bestWaste = k, w
		}
	}
	return 2 * best
}

// winoSlots is the tiles computed for nt: blocks of 8, the last of 4 when
// that is enough.
func winoSlots(nt int) int {
	if r := nt % winoT; r > 0 && r <= winoT/2 {
		return nt - r + winoT/2
	}
	return (nt + winoT - 1) / winoT * winoT
}

// winoLDV is V's row length for nt tiles: whole blocks of 8, and room
// for the 7 values winoInput may write past the last tile.
func winoLDV(nt int) int { return (nt+winoT-1)/winoT*winoT + winoT }

// reserve grows s for p's Winograd path.
func (s *winoScratch) reserve(p *Conv2dParams) {
	rows := winoBandOf(p)
	tw := (p.OW + 1) / 2
	s.v = grow(s.v, 16*roundUp4(p.C)*winoLDV(rows/2*tw))
	s.plane = grow(s.plane, (rows+2)*winoPlaneWidth(tw))
	s.acc = grow(s.acc, winoO*winoPS(rows/2*tw, tw))
	if preparedU(p) == nil {
		s.u = grow(s.u, winoUSize(p))
	}
}

// convWinograd is conv2d on the Winograd path; p must fit (winogradFits).
func convWinograd(p *Conv2dParams, x []int8, g *gemm, s *winoScratch) {
	s.reserve(p)
	rows := winoBandOf(p)
	yBegin, yEnd := 0, p.OH
	if p.RowsEnd > 0 {
		yBegin, yEnd = p.RowsBegin, p.RowsEnd
	}
	s.uCall = preparedU(p)
	if s.uCall == nil {
		for ob := 0; ob < p.O; ob += winoO {
			winoPackU(p, ob, s.u[ob/winoO*winoUBlock(p):])
		}
		s.uCall = s.u
	}
	for oy0 := yBegin; oy0 < yEnd; oy0 += rows {
		winoBandRun(p, x, g, s, oy0, min(rows, yEnd-oy0))
	}
}

// winoBandRun computes output rows [oy0, oy0+r) of every channel.
func winoBandRun(p *Conv2dParams, x []int8, g *gemm, s *winoScratch, oy0, r int) {
	tr, tw := (r+1)/2, (p.OW+1)/2
	nt := tr * tw
	ntp := winoLDV(nt)
	cpad := roundUp4(p.C)
	v := s.v[:16*cpad*ntp]
	for c := range p.C {
		winoInput(p, x, c, oy0, tr, tw, s, v[c*ntp:], cpad*ntp)
	}
	// acc holds a channel's outputs as 2·tr rows of owp = 2·tw (the
	// tiles past the band's edges write their extra row and column
	// there), then room for the block tiles past the last one.
	owp := 2 * tw
	ps := winoPS(nt, tw)
	off := &s.off
	for ob := 0; ob < p.O; ob += winoO {
		u := s.uCall[ob/winoO*winoUBlock(p):]
		no := min(winoO, p.O-ob)
		for t0 := 0; t0 < nt; t0 += winoT {
			winoBlock(u, v[t0:], cpad/4, ntp, nt-t0, &s.m)
			for k := range off {
				off[k] = 2 * nt * 2 // the spare room
				if t := t0 + k; t < nt {
					off[k] = 2*(t/tw)*owp + 2*(t%tw)
				}
			}
			winoOutput(&s.m, g.bias[ob:ob+no], off, s.acc, ps, owp)
		}
		for ol := range no {
			a := s.acc[ol*ps:]
			if owp == p.OW {
				g.out(ob+ol, a[:r*p.OW], oy0*p.OW)
				continue
			}
			for y := range r {
				g.out(ob+ol, a[y*owp:y*owp+p.OW], (oy0+y)*p.OW)
			}
		}
	}
}

// winoPS is a channel's share of acc for nt tiles, tw a row: 2·tr rows
// of 2·tw outputs and room for one tile past them.
func winoPS(nt, tw int) int { return 4*nt + 2*tw + 2 }

// winoInput writes V of channel c for the band's tiles: v[ξ·xs + t] for
// tile t = tr·tw + tx, whose 4×4 input starts at row oy0+2·tr−Pad and
// column 2·tx−Pad; outside the image it reads PadValue[c]. It may write up
// to 7 values past the band's last tile (v has the room, see reserve).
func winoInput(p *Conv2dParams, x []int8, c, oy0, tr, tw int, s *winoScratch, v []int16, xs int) {
	// The padded plane: rows oy0−Pad … oy0−Pad+2·tr+1, columns −Pad …
	// wp−1−Pad, wide enough for whole blocks of 8 tiles.
	wp, rows := winoPlaneWidth(tw), 2*tr+2
	pl := s.plane[:rows*wp]
	pv := p.PadValue[c]
	xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
	lo := min(p.Pad, wp)     // plane columns before the image
	hi := min(p.Pad+p.W, wp) // … and after it
	for py := range rows {
		dst := pl[py*wp : (py+1)*wp]
		iy := oy0 - p.Pad + py
		if iy < 0 || iy >= p.H {
			fill(dst, pv)
			continue
		}
		fill(dst[:lo], pv)
		copy(dst[lo:hi], xc[iy*p.W:(iy+1)*p.W])
		fill(dst[hi:], pv)
	}
	for ty := range tr {
		winoInputRow(v[ty*tw:], xs, pl[2*ty*wp:], wp, (tw+winoT-1)/winoT)
	}
}

// winoPlaneWidth is the padded plane's width for tw tiles a row.
func winoPlaneWidth(tw int) int { return 2*(tw+winoT-1)/winoT*winoT + 2 }

// winoInputRow transforms one tile row: for tiles k < 8·n8, whose 4×4
// input is row[i·wp + 2k + j], it writes V_ξ = (Bᵀ d B)_ξ to v[ξ·xs + k].
// An architecture's init may replace it with assembly.
var winoInputRow = winoInputRowGo

func winoInputRowGo(v []int16, xs int, row []int8, wp, n8 int) {
	for k := range 8 * n8 {
		// W = Bᵀ d (4×4), V = W B.
		var w [4][4]int16
		for j := range 4 {
			d0, d1 := int16(row[2*k+j]), int16(row[wp+2*k+j])
			d2, d3 := int16(row[2*wp+2*k+j]), int16(row[3*wp+2*k+j])
			w[0][j], w[1][j], w[2][j], w[3][j] = d0-d2, d1+d2, d2-d1, d1-d3
		}
		for i, q := range w {
			vi := v[4*i*xs+k:]
			vi[0] = q[0] - q[2]
			vi[xs] = q[1] + q[2]
			vi[2*xs] = q[2] - q[1]
			vi[3*xs] = q[1] - q[3]
		}
	}
}

// winoOutput turns m (channels ol < len(bias), 8 tiles) into outputs:
// Aᵀ M A, shifted right by 2 (exact, see above), plus the bias. Tile k's
// 2×2 outputs go to acc[ol·ps + off[k] + a·owp + b] (a, b < 2). An
// architecture's init may replace it with assembly.
var winoOutput = winoOutputGo

func winoOutputGo(m *[16 * 64]int32, bias []int32, off *[winoT]int, acc []int32, ps, owp int) {
	for ol, b := range bias {
		for k, o := range off {
			var q [16]int32
			for xi := range q {
				q[xi] = m[xi*64+ol*8+k]
			}
			// T = Aᵀ M (2×4), Y = T A (2×2).
			var t [2][4]int32
			for j := range 4 {
				t[0][j] = q[j] + q[4+j] + q[8+j]
				t[1][j] = q[4+j] - q[8+j] - q[12+j]
			}
			a := acc[ol*ps+o:]
			a[0] = (t[0][0]+t[0][1]+t[0][2])>>2 + b
			a[1] = (t[0][1]-t[0][2]-t[0][3])>>2 + b
			a[owp] = (t[1][0]+t[1][1]+t[1][2])>>2 + b
			a[owp+1] = (t[1][1]-t[1][2]-t[1][3])>>2 + b
		}
	}
}
