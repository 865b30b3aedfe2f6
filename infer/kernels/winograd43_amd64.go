//go:build gc && !purego

package kernels

import "golang.org/x/sys/cpu"

// The F(4,3) path's parts in AVX2 (winograd43_amd64.s); the driver and
// the plane are Go (winograd43.go).

//go:noescape
func w43InputRowAVX2(v *int16, xs, vb int, pl *int8, d, step, rowb, np, nb int)

//go:noescape
func w43OutputAVX2(m *int32, no int, bias, acc *int32, d, ps, rowlen int)

//go:noescape
func w43PlaneRowAVX2(dst, a, b *int8, np, n16 int)

//go:noescape
func w43GemmNAVX2(u, v *int16, ncp, xs, vb, nb int, m *int32)

func init() {
	if cpu.X86.HasAVX2 {
		w43InputRow, w43Output = w43InputRowFast, w43OutputFast
		w43PlaneRow, w43UChunk = w43PlaneRowFast, w43UChunkFast
		w43GemmN = w43GemmNFast
		if cpu.X86.HasAVXVNNI {
			w43GemmN = w43GemmNVNNIFast
		}
	}
}

//go:noescape
func w43UChunkAVX2(u *int16, wc *int8, ncp int)

func w43UChunkFast(u []int16, wc []int8, ncp int) {
	_ = wc[ncp*144-1]
	_ = u[35*ncp*16+ncp*16-1]
	w43UChunkAVX2(&u[0], &wc[0], ncp)
}

func w43PlaneRowFast(dst, a, b []int8, np int) {
	// np is a multiple of 4, so the row is whole blocks of 16 columns.
	_, _, _ = dst[8*np-1], a[4*np-1], b[4*np-1]
	w43PlaneRowAVX2(&dst[0], &a[0], &b[0], np, np/4)
}

func w43InputRowFast(v []int16, xs, vb int, pl []int8, d, step, rowb, np, nb int) {
	if nb == 0 {
		return
	}
	// The last bytes the kernel reads: the second half of the last
	// block, phase 3 (8 bytes) and phase 1 one position on.
	last := (nb-1)*step + d + 5*rowb
	_ = pl[last+3*2*np+7]
	_ = pl[last+2*np+9]
	_ = v[35*xs+(nb-1)*vb+15]
	w43InputRowAVX2(&v[0], 2*xs, 2*vb, &pl[0], d, step, rowb, np, nb)
}

func w43OutputFast(m *[w43Pos * w43O * w43T]int32, no int, bias, acc []int32, d, ps, rowlen int) {
	if no == 0 {
		return
	}
	_ = acc[(no-1)*ps+d+3*rowlen+15]
	var b *int32 // nil: add to acc
	if bias != nil {
		b = &bias[:no][0]
	}
	w43OutputAVX2(&m[0], no, b, &acc[0], 4*d, 4*ps, 4*rowlen)
}

// vnniSim is set by the vnnisim build tag (winograd43_vnnisim_amd64.go).
var vnniSim bool

// w43GemmNAVXVNNI is w43GemmNAVX2 with VEX VPDPWSSD (AVX-VNNI), chosen
// when cpu.X86.HasAVXVNNI (winograd43_avxvnni_amd64.s).
//
//go:noescape
func w43GemmNAVXVNNI(u, v *int16, ncp, xs, vb, nb int, m *int32)

func w43GemmNVNNIFast(u, v []int16, ncp, xs, vb, nb int, m []int32) {
	w43GemmNChecked(w43GemmNAVXVNNI, u, v, ncp, xs, vb, nb, m)
}

func w43GemmNFast(u, v []int16, ncp, xs, vb, nb int, m []int32) {
	w43GemmNChecked(w43GemmNAVX2, u, v, ncp, xs, vb, nb, m)
}

// w43GemmNChecked checks the bounds kernel (an assembly w43GemmN) relies
// on, then runs it with byte strides.
func w43GemmNChecked(kernel func(u, v *int16, ncp, xs, vb, nb int, m *int32), u, v []int16, ncp, xs, vb, nb int, m []int32) {
	if nb == 0 {
		return
	}
	_ = u[w43Pos*ncp*16-1]
	_ = v[35*xs+(nb-1)*vb+ncp*16-1]
	_ = m[nb*w43Pos*w43O*w43T-1]
	kernel(&u[0], &v[0], ncp, 2*xs, 2*vb, nb, &m[0])
}
