package kernels

// MaxPool2d writes the maximum of each K×K window of x (C×H×W) to y
// (C×OH×OW); taps outside the image read −128. p must pass CheckMax.
func MaxPool2d(p *PoolParams, x, y []int8) {
	x = x[:p.C*p.H*p.W]
	y = y[:p.C*p.OH*p.OW]
	if p.K == 2 && p.Stride == 2 && p.Pad == 0 {
		maxPool2x2(p, x, y)
		return
	}
	for c := 0; c < p.C; c++ {
		xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
		yc := y[c*p.OH*p.OW : (c+1)*p.OH*p.OW]
		for oy := 0; oy < p.OH; oy++ {
			// Clip the window to the image: a −128 pad never exceeds
			// the running maximum, which starts at −128.
			y0 := max(oy*p.Stride-p.Pad, 0)
			y1 := min(oy*p.Stride-p.Pad+p.K, p.H)
			row := yc[oy*p.OW : (oy+1)*p.OW]
			for ox := range row {
				x0 := max(ox*p.Stride-p.Pad, 0)
				x1 := min(ox*p.Stride-p.Pad+p.K, p.W)
				best := int8(-128)
				for iy := y0; iy < y1; iy++ {
					for _, v := range xc[iy*p.W+x0 : iy*p.W+x1] {
						best = max(best, v)
					}
				}
				row[ox] = best
			}
		}
	}
}

// maxPool2x2 is VGG's MaxPool2d(2, 2): every window lies inside the image,
// so the loop needs no clipping (the general loop spent 8% of a VGG16
// inference here).
func maxPool2x2(p *PoolParams, x, y []int8) {
	for c := 0; c < p.C; c++ {
		xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
		yc := y[c*p.OH*p.OW : (c+1)*p.OH*p.OW]
		for oy := 0; oy < p.OH; oy++ {
			r0 := xc[2*oy*p.W : 2*oy*p.W+2*p.OW]
			r1 := xc[(2*oy+1)*p.W : (2*oy+1)*p.W+2*p.OW]
			row := yc[oy*p.OW : (oy+1)*p.OW]
			done := 0
			if simdMaxPool2x2Row != nil && len(row) >= maxPoolBlock {
				done = len(row) &^ (maxPoolBlock - 1)
				simdMaxPool2x2Row(r0, r1, row, done)
				if done < len(row) {
					// The tail as one more block ending at the row's end:
					// it rewrites some outputs with the same values.
					k := len(row) - maxPoolBlock
					simdMaxPool2x2Row(r0[2*k:], r1[2*k:], row[k:], maxPoolBlock)
					done = len(row)
				}
			}
			maxPool2x2RowGo(r0, r1, row, done)
		}
	}
}

// maxPool2x2RowGo writes row[from:] = the max of each 2x2 window of the
// row pair r0, r1.
func maxPool2x2RowGo(r0, r1, row []int8, from int) {
	for ox := from; ox < len(row); ox++ {
		row[ox] = max(r0[2*ox], r0[2*ox+1], r1[2*ox], r1[2*ox+1])
	}
}

// maxPoolBlock is the outputs one SIMD max-pool step writes: the
// assembly handles whole blocks, the Go loop the tail.
const maxPoolBlock = 16

// simdMaxPool2x2Row, when set, writes row[:n] (n a multiple of
// maxPoolBlock) as maxPool2x2RowGo would. Max is exact, so the SIMD path
// equals the Go loop bit for bit.
var simdMaxPool2x2Row func(r0, r1, row []int8, n int)

// AdaptiveBin is PyTorch's adaptive-pool bin of output index i:
// [floor(i·in/out), ceil((i+1)·in/out)). Never empty.
func AdaptiveBin(i, in, out int) (start, end int) {
	i64, in64, out64 := int64(i), int64(in), int64(out)
	return int(i64 * in64 / out64), int(((i64+1)*in64 + out64 - 1) / out64)
}

// AvgRound is sum/n rounded half away from zero, as TFLite's int8 average
// pool: (sum + n/2)/n for sum ≥ 0, −((−sum + n/2)/n) below, truncating. n > 0.
func AvgRound(sum, n int64) int64 {
	if sum >= 0 {
		return (sum + n/2) / n
	}
	return -((-sum + n/2) / n)
}

// AdaptiveAvgPool2d writes the rounded mean of each PyTorch bin of x
// (C×H×W) to y (C×OH×OW); see AvgRound. When the sizes are equal it is a
// copy. p must pass CheckAvg.
func AdaptiveAvgPool2d(p *PoolParams, x, y []int8) {
	x = x[:p.C*p.H*p.W]
	y = y[:p.C*p.OH*p.OW]
	if p.H == p.OH && p.W == p.OW {
		copy(y, x)
		return
	}
	for c := 0; c < p.C; c++ {
		xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
		yc := y[c*p.OH*p.OW : (c+1)*p.OH*p.OW]
		for oy := 0; oy < p.OH; oy++ {
			y0, y1 := AdaptiveBin(oy, p.H, p.OH)
			for ox := 0; ox < p.OW; ox++ {
				x0, x1 := AdaptiveBin(ox, p.W, p.OW)
				var sum int64
				for iy := y0; iy < y1; iy++ {
					for _, v := range xc[iy*p.W+x0 : iy*p.W+x1] {
						sum += int64(v)
					}
				}
				// The mean of int8 values is within [−128, 127].
				yc[oy*p.OW+ox] = int8(AvgRound(sum, int64(y1-y0)*int64(x1-x0)))
			}
		}
	}
}

// ReLU writes max(src[i], zero) to dst[i]; dst may be src.
func ReLU(dst, src []int8, zero int8) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = max(v, zero)
	}
}
