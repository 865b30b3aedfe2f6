package main

import "fmt"

// smlalLane emits smlal/smlal2 vd.4s, vn.4h|8h, vm.h[lane] (by element,
// m < 16): int16 × int16 products added to int32 lanes.
func smlalLane(high bool, d, n, m, lane int) {
	base, op, src := uint32(0x0f402000), "smlal", "4h"
	if high {
		base, op, src = 0x4f402000, "smlal2", "8h"
	}
	// The lane index is H:L:M.
	w := base | uint32(lane>>1&1)<<21 | uint32(lane&1)<<20 | uint32(m)<<16 | uint32(lane>>2)<<11 | uint32(n)<<5 | uint32(d)
	word(w, fmt.Sprintf("%s v%d.4s, v%d.%s, v%d.h[%d]", op, d, n, src, m, lane))
}

func winogradSet() {
	winoBlock(false)
	winoBlock(true)
	winoInput()
	winoOutput()
}

func winoBlock(half bool) {
	tiles := 8
	if half {
		tiles = 4
	}
	if half {
		p(`
// func winoBlock8x4(u, v *int16, cq, ldv int, m *int32)
//
// winoBlock8x8 for tiles k < 4 only (SMLAL without SMLAL2), for the last
// block of a band; m's lanes for tiles 4-7 are left as they were.
TEXT ·winoBlock8x4(SB), NOSPLIT, $0-40`)
	} else {
		p(`
// func winoBlock8x8(u, v *int16, cq, ldv int, m *int32)
//
// The Winograd path's tile GEMM (winograd_generic.go, winoBlockGo): for
// the 16 positions ξ, m[ξ·64 + o·8 + k] = Σ_{c < 4·cq} u[(ξ·4cq + c)·8 + o]
// · v[(ξ·4cq + c)·ldv/2 + k] for channels o < 8 and tiles k < 8, in int32
// (ldv in bytes). The rows of u and of v follow each other across ξ, so
// both pointers only advance.
//
// Per step of 4 c: V0-V3 the 8 channels' U of c…c+3 (one 64-byte load),
// V4-V7 the 8 tiles' V of c…c+3 (four loads at stride ldv); SMLAL by
// element multiplies 4 tiles (low or high half of V4+i) by one channel's
// U (a lane of Vi) into V16+2o+h, channel o, tiles 4h…4h+3: 64
// multiply-adds instructions (256 int16 MACs, 576 direct-convolution
// MACs) per 5 loads.
TEXT ·winoBlock8x8(SB), NOSPLIT, $0-40`)
	}
	p(`	MOVD u+0(FP), R0
	MOVD v+8(FP), R1
	MOVD cq+16(FP), R2
	MOVD ldv+24(FP), R3
	MOVD m+32(FP), R4
	MOVD $16, R5
xi:`)
	for v := 16; v < 32; v += 8 / tiles {
		p("\tVEOR V%d.B16, V%d.B16, V%d.B16", v, v, v)
	}
	p("\tMOVD R2, R6")
	p("chunk:")
	p("\tVLD1.P 64(R0), [V0.H8, V1.H8, V2.H8, V3.H8] // U, c…c+3")
	for i := 0; i < 4; i++ {
		p("\tVLD1.P (R1)(R3), [V%d.H8] // V, c+%d", 4+i, i)
	}
	for i := 0; i < 4; i++ {
		for o := 0; o < 8; o++ {
			smlalLane(false, 16+2*o, 4+i, i, o)
			if !half {
				smlalLane(true, 17+2*o, 4+i, i, o)
			}
		}
	}
	p("\tSUBS $1, R6")
	p("\tBNE chunk")
	for r := 16; r < 32; r += 4 {
		if half {
			p("\tVST1 [V%d.S4], (R4)", r)
			p("\tADD $32, R4")
			p("\tVST1 [V%d.S4], (R4)", r+2)
			p("\tADD $32, R4")
			continue
		}
		p("\tVST1.P [V%d.S4, V%d.S4, V%d.S4, V%d.S4], 64(R4)", r, r+1, r+2, r+3)
	}
	p("\tSUBS $1, R5")
	p("\tBNE xi")
	p("\tRET")
}

// widen emits ssubl/saddl vd.8h, vn.8b, vm.8b.
func widen(op string, d, n, m int) {
	base := map[string]uint32{"saddl": 0x0e200000, "ssubl": 0x0e202000}[op]
	word(base|uint32(m)<<16|uint32(n)<<5|uint32(d), fmt.Sprintf("%s v%d.8h, v%d.8b, v%d.8b", op, d, n, m))
}

// winoInput emits the input transform of one tile row.
func winoInput() {
	p(`
// func winoInputRows(v *int16, xs int, row *int8, wp, n8 int)
//
// winoInputRowGo: for tiles k < 8·n8, whose 4×4 input is row[i·wp + 2k +
// j], writes V_ξ = (Bᵀ d B)_ξ, ξ = 4i+j, to v[ξ·xs/2 + k] (xs in bytes).
//
// Eight tiles a step. LD2 splits a row into its even and odd columns,
// which are columns 0 and 1 of the eight tiles; the same load one column
// pair on gives columns 2 and 3. Vi, i < 8: rows i/2, column i%%2; V8+i:
// columns 2+i%%2. Bᵀ on the rows widens to int16 (SSUBL/SADDL) into
// V16+4j+s, row j of column s; B on the columns gives V_ξ in V0-V3, one
// 16-byte store per ξ. R10-R13 the rows, R14-R17 the rows one pair on,
// R5 the store pointer, R0 the step's first tile.
TEXT ·winoInputRows(SB), NOSPLIT, $0-40
	MOVD v+0(FP), R0
	MOVD xs+8(FP), R1
	MOVD row+16(FP), R2
	MOVD wp+24(FP), R3
	MOVD n8+32(FP), R4
	MOVD R2, R10
	ADD R3, R10, R11
	ADD R3, R11, R12
	ADD R3, R12, R13
	ADD $2, R10, R14
	ADD $2, R11, R15
	ADD $2, R12, R16
	ADD $2, R13, R17
loop:`)
	for i := 0; i < 4; i++ {
		p("\tVLD2.P 16(R%d), [V%d.B8, V%d.B8] // row %d, columns 0 and 1", 10+i, 2*i, 2*i+1, i)
	}
	for i := 0; i < 4; i++ {
		p("\tVLD2.P 16(R%d), [V%d.B8, V%d.B8] // row %d, columns 2 and 3", 14+i, 8+2*i, 9+2*i, i)
	}
	d := func(i, s int) int { // row i, column s
		if s < 2 {
			return 2*i + s
		}
		return 8 + 2*i + s - 2
	}
	w := func(j, s int) int { return 16 + 4*j + s }
	for s := 0; s < 4; s++ {
		widen("ssubl", w(0, s), d(0, s), d(2, s)) // d0 − d2
		widen("saddl", w(1, s), d(1, s), d(2, s)) // d1 + d2
		widen("ssubl", w(2, s), d(2, s), d(1, s)) // d2 − d1
		widen("ssubl", w(3, s), d(1, s), d(3, s)) // d1 − d3
	}
	p("\tMOVD R0, R5")
	for j := 0; j < 4; j++ {
		// Go's operand order: VSUB Vm, Vn, Vd is Vd = Vn − Vm.
		p("\tVSUB V%d.H8, V%d.H8, V0.H8 // ξ %d: w0 − w2", w(j, 2), w(j, 0), 4*j)
		p("\tVADD V%d.H8, V%d.H8, V1.H8 // w1 + w2", w(j, 2), w(j, 1))
		p("\tVSUB V%d.H8, V%d.H8, V2.H8 // w2 − w1", w(j, 1), w(j, 2))
		p("\tVSUB V%d.H8, V%d.H8, V3.H8 // w1 − w3", w(j, 3), w(j, 1))
		for k := 0; k < 4; k++ {
			p("\tVST1.P [V%d.H8], (R5)(R1)", k)
		}
	}
	p("\tADD $16, R0")
	p("\tSUBS $1, R4")
	p("\tBNE loop")
	p("\tRET")
}

func sshr2(d, n int) { // sshr vd.4s, vn.4s, #2
	word(0x4f3e0400|uint32(n)<<5|uint32(d), fmt.Sprintf("sshr v%d.4s, v%d.4s, #2", d, n))
}

// winoOutput emits the output transform of one block.
func winoOutput() {
	p(`
// func winoOutputBlock(m, bias *int32, off *int, acc *int32, ps, rowb, no int)
//
// winoOutputGo with byte offsets: for channels o < no and tiles k < 8,
// Y = (Aᵀ M A) >> 2 + bias[o], M_ξ = m[ξ·64 + o·8 + k]; Y_ab goes to acc +
// o·ps + off[k] + a·rowb + 4b.
//
// Four tiles a step (half h of a channel's 8): V0-V15 M_ξ, V16+j and V20+j
// the rows of T = Aᵀ M, V24-V27 Y00, Y01, Y10, Y11, V28 the bias; ZIP
// pairs each tile's Y00, Y01 (and Y10, Y11) for one 8-byte store per
// output row. R10-R17 the tile offsets, R7 the channel's M, R3 its acc.
TEXT ·winoOutputBlock(SB), NOSPLIT, $0-56
	MOVD m+0(FP), R7
	MOVD bias+8(FP), R1
	MOVD off+16(FP), R2
	MOVD acc+24(FP), R3
	MOVD ps+32(FP), R4
	MOVD rowb+40(FP), R5
	MOVD no+48(FP), R6
	LDP (R2), (R10, R11)
	LDP 16(R2), (R12, R13)
	LDP 32(R2), (R14, R15)
	LDP 48(R2), (R16, R17)
	MOVD $256, R9 // M's stride between positions
loop:
	VLD1R.P 4(R1), [V28.S4]`)
	for h := 0; h < 2; h++ {
		if h == 0 {
			p("\tMOVD R7, R8")
		} else {
			p("\tADD $16, R7, R8")
		}
		for xi := 0; xi < 16; xi++ {
			p("\tVLD1.P (R8)(R9), [V%d.S4] // M%d, tiles %d-%d", xi, xi, 4*h, 4*h+3)
		}
		for j := 0; j < 4; j++ {
			p("\tVADD V%d.S4, V%d.S4, V%d.S4 // T0%d = M0%d + M1%d + M2%d", 4+j, j, 16+j, j, j, j, j)
			p("\tVADD V%d.S4, V%d.S4, V%d.S4", 8+j, 16+j, 16+j)
			p("\tVSUB V%d.S4, V%d.S4, V%d.S4 // T1%d = M1%d − M2%d − M3%d", 8+j, 4+j, 20+j, j, j, j, j)
			p("\tVSUB V%d.S4, V%d.S4, V%d.S4", 12+j, 20+j, 20+j)
		}
		for a := 0; a < 2; a++ {
			t := 16 + 4*a
			y := 24 + 2*a
			p("\tVADD V%d.S4, V%d.S4, V%d.S4 // Y%d0 = T%d0 + T%d1 + T%d2", t+1, t, y, a, a, a, a)
			p("\tVADD V%d.S4, V%d.S4, V%d.S4", t+2, y, y)
			p("\tVSUB V%d.S4, V%d.S4, V%d.S4 // Y%d1 = T%d1 − T%d2 − T%d3", t+2, t+1, y+1, a, a, a, a)
			p("\tVSUB V%d.S4, V%d.S4, V%d.S4", t+3, y+1, y+1)
		}
		for y := 24; y < 28; y++ {
			sshr2(y, y)
			p("\tVADD V28.S4, V%d.S4, V%d.S4", y, y)
		}
		p("\tVZIP1 V25.S4, V24.S4, V16.S4 // row 0 of tiles 0, 1")
		p("\tVZIP2 V25.S4, V24.S4, V17.S4 // tiles 2, 3")
		p("\tVZIP1 V27.S4, V26.S4, V18.S4 // row 1")
		p("\tVZIP2 V27.S4, V26.S4, V19.S4")
		for k := 0; k < 4; k++ {
			p("\tADD R3, R%d, R19 // tile %d", 10+4*h+k, 4*h+k)
			p("\tVST1 V%d.D[%d], (R19)", 16+k/2, k%2)
			p("\tADD R5, R19")
			p("\tVST1 V%d.D[%d], (R19)", 18+k/2, k%2)
		}
	}
	p("\tADD $32, R7")
	p("\tADD R4, R3")
	p("\tSUBS $1, R6")
	p("\tBNE loop")
	p("\tRET")
}
