package infer

import "sync"

// The fast float32 forward pass: convolutions as GEMMs over im2col tiles
// and Linear layers split across goroutines, float32 accumulation. It is
// what calibration and fp32 evaluation run (the reference ForwardFloat is
// ~10x slower); tests hold it to the reference within float32 rounding.
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

// tileP is the number of output pixels one im2col tile holds: K·tileP
// floats stay within L2 for VGG's K ≤ 4608.
const tileP = 64

// conv2dGEMM computes Y[o, p] = bias[o] + Σ_k W[o, k]·col[k, p] where col
// is the im2col of one tile of output pixels; goroutines take tiles.
func conv2dGEMM(l *Layer, in, out Shape, x []float32, threads int) []float32 {
	y := make([]float32, out.Elems())
	K := in.C * l.KH * l.KW
	P := out.H * out.W
	tiles := (P + tileP - 1) / tileP
	var wg sync.WaitGroup
	for t := 0; t < min(threads, tiles); t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			col := make([]float32, K*tileP)
			for tile := t; tile < tiles; tile += threads {
				p0 := tile * tileP
				np := min(tileP, P-p0)
				im2colTile(l, in, out, x, col, p0, np)
				gemmTile(l, K, col, np, y, P, p0)
			}
		}(t)
	}
	wg.Wait()
	return y
}

// im2colTile writes col[k·np + j] = the input value tap k of output pixel
// p0+j reads (0 in the padding).
func im2colTile(l *Layer, in, out Shape, x, col []float32, p0, np int) {
	k := 0
	for c := 0; c < in.C; c++ {
		for ky := 0; ky < l.KH; ky++ {
			for kx := 0; kx < l.KW; kx++ {
				row := col[k*np : (k+1)*np]
				for j := range row {
					p := p0 + j
					oy, ox := p/out.W, p%out.W
					iy, ix := oy*l.Stride-l.Pad+ky, ox*l.Stride-l.Pad+kx
					if iy < 0 || iy >= in.H || ix < 0 || ix >= in.W {
						row[j] = 0
					} else {
						row[j] = x[(c*in.H+iy)*in.W+ix]
					}
				}
				k++
			}
		}
	}
}

// gemmTile adds W·col into the np columns starting at p0 of y (row stride
// P), four output channels at a time so each col value loaded is used four
// times.
func gemmTile(l *Layer, K int, col []float32, np int, y []float32, P, p0 int) {
	w := l.Weight
	o := 0
	for ; o+4 <= l.Out; o += 4 {
		w0, w1, w2, w3 := w[o*K:(o+1)*K], w[(o+1)*K:(o+2)*K], w[(o+2)*K:(o+3)*K], w[(o+3)*K:(o+4)*K]
		y0, y1, y2, y3 := y[o*P+p0:o*P+p0+np], y[(o+1)*P+p0:(o+1)*P+p0+np], y[(o+2)*P+p0:(o+2)*P+p0+np], y[(o+3)*P+p0:(o+3)*P+p0+np]
		var b0, b1, b2, b3 float32
		if l.Bias {
			b0, b1, b2, b3 = l.BiasData[o], l.BiasData[o+1], l.BiasData[o+2], l.BiasData[o+3]
		}
		for j := range y0 {
			y0[j], y1[j], y2[j], y3[j] = b0, b1, b2, b3
		}
		for k := 0; k < K; k++ {
			a0, a1, a2, a3 := w0[k], w1[k], w2[k], w3[k]
			row := col[k*np : k*np+np]
			y0, y1, y2, y3 := y0[:len(row)], y1[:len(row)], y2[:len(row)], y3[:len(row)]
			for j, v := range row {
				y0[j] += a0 * v
				y1[j] += a1 * v
				y2[j] += a2 * v
				y3[j] += a3 * v
			}
		}
	}
	for ; o < l.Out; o++ {
		wo := w[o*K : (o+1)*K]
		yo := y[o*P+p0 : o*P+p0+np]
		var b float32
		if l.Bias {
			b = l.BiasData[o]
		}
		for j := range yo {
			yo[j] = b
		}
		for k, a := range wo {
			row := col[k*np : k*np+np]
			yo := yo[:len(row)]
			for j, v := range row {
				yo[j] += a * v
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
