//go:build gc && !purego

package kernels

// The VNNI kernel's strip path: stride-1 convolutions (3×3 pad 1 above
// all) skip im2row, as on arm64 (convStripNEON). A band of r output rows
// reads r+KH−1 input rows, copied once with their padding (PadValue) to
// wp = W+2·Pad columns: the strip, [C][sh rows][wp]. Tap (c, ky, kx) of
// the band's output pixel (y, x) is strip[c·sh·wp + (y+ky)·wp + x+kx];
// numbering the pixels j = y·wp + x makes that strip[offs[t] + j] with
// offs[t] = c·sh·wp + ky·wp + kx, so a tap row is a run of the strip and
// packStripVNNIAsm packs the VNNI patch (gemm_vnni_amd64.go) straight from
// it. The pixels with x ≥ OW are computed and dropped, as are those past
// the band's n = (r−1)·wp + OW up to a multiple of 16 (they read at most
// 15 bytes past the strip: the buffer has room). The padding taps T…4·kg
// face zero weights; they read the strip's first bytes.

// vnniStripGeom returns p's band rows, padded width, strip rows per
// channel, the strip's length and a full band's pixel blocks.
func vnniStripGeom(p *Conv2dParams) (rows, wp, sh, slen, nb int) {
	rows, _ = bandOf(p)
	wp, sh = p.W+2*p.Pad, rows+p.KH-1
	return rows, wp, sh, p.C*sh*wp + vnniBlockN, ceilDiv((rows-1)*wp+p.OW, vnniBlockN)
}

func reserveStripVNNI(s *simdScratch, p *Conv2dParams) {
	if !stripFits(p) {
		return
	}
	_, _, _, slen, nb := vnniStripGeom(p)
	kg, nob := ceilDiv(p.Taps(), vnniGroup), ceilDiv(p.O, vnniTileO)
	s.strip = grow(s.strip, slen)
	s.offs = grow(s.offs, kg*vnniGroup)
	s.ppack = grow(s.ppack, ceilDiv(nb*kg*vnniPGroup+64, 2))
	s.acc = grow(s.acc, nob*vnniTileO*(nb*vnniBlockN+1))
}

// convStripVNNI is conv2d for the convolutions stripFits takes, after
// simdScratch.prepare; it reports false for the others.
func convStripVNNI(p *Conv2dParams, x []int8, s *simdScratch) bool {
	if !stripFits(p) {
		return false
	}
	reserveStripVNNI(s, p)
	rows, wp, sh, slen, _ := vnniStripGeom(p)
	kg := ceilDiv(p.Taps(), vnniGroup)
	offs := s.offs[:kg*vnniGroup]
	t := 0
	for c := range p.C {
		for ky := range p.KH {
			for kx := range p.KW {
				offs[t] = c*sh*wp + ky*wp + kx
				t++
			}
		}
	}
	for ; t < len(offs); t++ {
		offs[t] = 0
	}
	strip := s.strip[:slen]
	g := &s.g
	yBegin, yEnd := 0, p.OH
	if p.RowsEnd > 0 {
		yBegin, yEnd = p.RowsBegin, p.RowsEnd
	}
	for oy0 := yBegin; oy0 < yEnd; oy0 += rows {
		r := min(rows, yEnd-oy0)
		nb := ceilDiv((r-1)*wp+p.OW, vnniBlockN)
		fillStrip(p, x, oy0, r+p.KH-1, sh, wp, strip)
		blk := kg * vnniPGroup
		pp := bytes64(s.ppack, nb*blk)
		// The last byte packStripVNNIAsm reads: the largest offset plus
		// the last pixel block's 16 bytes.
		_ = strip[offs[p.Taps()-1]+nb*vnniBlockN-1]
		packStripVNNIAsm(&pp[0], &strip[0], &offs[0], kg, nb, blk)
		acc, ldacc := gemmVNNI(s, pp, nb)
		for o := range p.O {
			for k := range r {
				outAVX2(g, o, acc[o*ldacc+k*wp:][:p.OW], (oy0+k)*p.OW)
			}
		}
	}
	return true
}
