package infer

import (
	"sync"

	"github.com/vggedge/vggedge/infer/kernels"
)

// The fast float32 forward pass: convolutions as GEMMs over im2col blocks
// (the shared float GEMM, kernels.GemmFloat: AVX2+FMA, NEON or Go) and
// Linear layers as dot products split across goroutines (a matrix-vector
// product reads each weight once: memory-bound, no GEMM helps), float32
// accumulation. It is what calibration, `reduce` and fp32 evaluation run
// (the reference ForwardFloat is far slower); tests hold it to the
// reference within float32 rounding.
// Other layers reuse the reference implementations.

// ForwardFast runs the model on one normalised CHW input with up to
// threads goroutines.
func (m *Model) ForwardFast(x []float32, threads int) ([]float32, error) {
	out, _, err := m.forwardFast(x, threads, false)
	return out, err
}

// ForwardFastTrace also returns every layer's output, as ForwardFloatTrace.
func (m *Model) ForwardFastTrace(x []float32, threads int) ([]float32, [][]float32, error) {
	return m.forwardFast(x, threads, true)
}

func (m *Model) forwardFast(x []float32, threads int, trace bool) ([]float32, [][]float32, error) {
	threads = max(threads, 1)
	return m.forwardFloat(x, trace, floatOps{
		conv:   func(l *Layer, in, out Shape, x []float32) []float32 { return conv2dGEMM(l, in, out, x, threads) },
		linear: func(l *Layer, x []float32) []float32 { return linearFast(l, x, threads) },
	})
}

// convCols is the most output pixels one job of conv2dGEMM takes: the
// K×convCols im2col block (2.4 MB for VGG's K ≤ 4608) stays near the core
// while the GEMM packs and streams it.
const convCols = 128

// conv2dGEMM computes Y[o, p] = bias[o] + Σ_k W[o, k]·col[k, p] with the
// shared float GEMM (kernels.GemmFloat), where col is the im2col of a block
// of output pixels; goroutines take blocks. A 1x1, stride-1, unpadded
// convolution reads x itself as col.
func conv2dGEMM(l *Layer, in, out Shape, x []float32, threads int) []float32 {
	y := make([]float32, out.Elems())
	K := in.C * l.KH * l.KW
	P := out.H * out.W
	// Blocks of whole micro-tile columns, at most convCols, and at least
	// one per goroutine so small maps (VGG's 14x14) still use every core.
	cols := min(convCols, ((P+threads-1)/threads+15)/16*16)
	blocks := (P + cols - 1) / cols
	direct := l.KH == 1 && l.KW == 1 && l.Stride == 1 && l.Pad == 0
	// The weights are packed once for every block and goroutine.
	var w kernels.PackedA[float32]
	w.PackA(l.Out, K, kernels.Matrix[float32]{Data: l.Weight, Stride: K}, threads)
	var wg sync.WaitGroup
	for t := 0; t < min(threads, blocks); t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			var buf kernels.GemmBuffers[float32]
			var col []float32
			if !direct {
				col = make([]float32, K*cols)
			}
			for blk := t; blk < blocks; blk += threads {
				p0 := blk * cols
				np := min(cols, P-p0)
				if l.Bias {
					for o, b := range l.BiasData[:l.Out] {
						row := y[o*P+p0 : o*P+p0+np]
						for j := range row {
							row[j] = b
						}
					}
				}
				b := kernels.Matrix[float32]{Data: x[p0:], Stride: P}
				if !direct {
					im2colTile(l, in, out, x, col[:K*np], p0, np)
					b = kernels.Matrix[float32]{Data: col, Stride: np}
				}
				kernels.GemmFloatPacked(&w, np, b, y[p0:], P, true, &buf)
			}
		}(t)
	}
	wg.Wait()
	return y
}

// im2colTile writes col[k·np + j] = the input value tap k of output pixel
// p0+j reads (0 in the padding), one output row's run at a time: a copy
// for stride 1.
func im2colTile(l *Layer, in, out Shape, x, col []float32, p0, np int) {
	k := 0
	for c := 0; c < in.C; c++ {
		plane := x[c*in.H*in.W : (c+1)*in.H*in.W]
		for ky := 0; ky < l.KH; ky++ {
			for kx := 0; kx < l.KW; kx++ {
				row := col[k*np : (k+1)*np]
				oy, ox := p0/out.W, p0%out.W
				for j := 0; j < np; oy, ox = oy+1, 0 {
					seg := row[j : j+min(out.W-ox, np-j)]
					j += len(seg)
					iy := oy*l.Stride - l.Pad + ky
					if iy < 0 || iy >= in.H {
						clear(seg)
						continue
					}
					src := plane[iy*in.W : (iy+1)*in.W]
					ix0 := ox*l.Stride - l.Pad + kx // input column of seg[0]
					if l.Stride == 1 {
						t0, t1 := min(max(0, -ix0), len(seg)), min(len(seg), in.W-ix0)
						clear(seg[:t0])
						if t1 > t0 {
							copy(seg[t0:t1], src[ix0+t0:ix0+t1])
							clear(seg[t1:])
						} else {
							clear(seg[t0:])
						}
						continue
					}
					for t := range seg {
						if ix := ix0 + t*l.Stride; ix < 0 || ix >= in.W {
							seg[t] = 0
						} else {
							seg[t] = src[ix]
						}
					}
				}
				k++
			}
		}
	}
}

// linearFast is y = W·x + b with output rows split across goroutines.
func linearFast(l *Layer, x []float32, threads int) []float32 {
	y := make([]float32, l.Out)
	in := len(x)
	var wg sync.WaitGroup
	chunk := (l.Out + threads - 1) / threads
	for o0 := 0; o0 < l.Out; o0 += chunk {
		wg.Add(1)
		go func(o0, o1 int) {
			defer wg.Done()
			for o := o0; o < o1; o++ {
				w := l.Weight[o*in : (o+1)*in]
				var s0, s1, s2, s3 float32
				k := 0
				for ; k+4 <= in; k += 4 {
					s0 += w[k] * x[k]
					s1 += w[k+1] * x[k+1]
					s2 += w[k+2] * x[k+2]
					s3 += w[k+3] * x[k+3]
				}
				for ; k < in; k++ {
					s0 += w[k] * x[k]
				}
				s := (s0 + s1) + (s2 + s3)
				if l.Bias {
					s += l.BiasData[o]
				}
				y[o] = s
			}
		}(o0, min(o0+chunk, l.Out))
	}
	wg.Wait()
	return y
}
