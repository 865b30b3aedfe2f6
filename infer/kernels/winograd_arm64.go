//go:build gc && !purego

package kernels

//go:generate go run ./internal/neongen -set winograd -o winograd_arm64.s

import "golang.org/x/sys/cpu"

// winoBlock8x8 is winoBlockGo in NEON (winograd_arm64.s): SMLAL by
// element, int16 × int16 into int32, which every ARMv8 core has.
//
//go:noescape
func winoBlock8x8(u, v *int16, cq, ldv int, m *int32)

//go:noescape
func winoBlock8x4(u, v *int16, cq, ldv int, m *int32)

func init() {
	if cpu.ARM64.HasASIMD {
		winoBlock, winoInputRow, winoOutput = winoBlockNEON, winoInputRowNEON, winoOutputNEON
	}
}

func winoBlockNEON(u, v []int16, cq, ldv, n int, m *[16 * 64]int32) {
	// The rows the kernel reads: 16·4·cq of each, the last at its offset.
	rows := 16 * 4 * cq
	_ = u[rows*8-1]
	_ = v[(rows-1)*ldv+7]
	if n <= winoT/2 {
		winoBlock8x4(&u[0], &v[0], cq, 2*ldv, &m[0])
		return
	}
	winoBlock8x8(&u[0], &v[0], cq, 2*ldv, &m[0])
}

// winoInputRows is winoInputRowGo in NEON (winograd_arm64.s).
//
//go:noescape
func winoInputRows(v *int16, xs int, row *int8, wp, n8 int)

func winoInputRowNEON(v []int16, xs int, row []int8, wp, n8 int) {
	_ = v[15*xs+8*n8-1]
	_ = row[3*wp+16*n8+1]
	winoInputRows(&v[0], 2*xs, &row[0], wp, n8)
}

// winoOutputBlock is winoOutputGo in NEON (winograd_arm64.s), with byte
// offsets.
//
//go:noescape
func winoOutputBlock(m, bias *int32, off *[winoT]int, acc *int32, ps, rowb, no int)

func winoOutputNEON(m *[16 * 64]int32, bias []int32, off *[winoT]int, acc []int32, ps, owp int) {
	no := len(bias)
	if no == 0 {
		return
	}
	var offb [winoT]int
	for k, o := range off {
		_ = acc[(no-1)*ps+o+owp+1]
		offb[k] = 4 * o
	}
	winoOutputBlock(&m[0], &bias[0], &offb, &acc[0], 4*ps, 4*owp, no)
}
