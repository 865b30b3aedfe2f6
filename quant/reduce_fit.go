package quant

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
)

// Fitting a reduction (see reduce.go): once the ranks are chosen, each
// reduced layer's weights are solved for on the calibration images, layer
// by layer in network order.

// runLayer applies one layer to a CHW tensor of shape in.
func runLayer(l infer.Layer, in infer.Shape, x []float32, threads int) ([]float32, infer.Shape, error) {
	l.In = 0
	one := &infer.Model{Input: in, Layers: []infer.Layer{l}}
	shapes, err := one.Resolve()
	if err != nil {
		return nil, infer.Shape{}, fmt.Errorf("layer %s: %w", l.Name, err)
	}
	y, err := one.ForwardFast(x, threads)
	return y, shapes[0], err
}

// fitReduction builds the reduced model layer by layer, fitting each
// reduction on the reduced network's own activations (red) against the
// original network's (orig).
func fitReduction(f *infer.Model, shapes []infer.Shape, images [][]float32, ranks []int, byLayer map[int]*candidate,
	opt ReduceOptions, progress func(string)) (*infer.Model, *ReduceReport, error) {
	layout, err := reducedLayers(f, ranks)
	if err != nil {
		return nil, nil, err
	}
	out := f.Clone()
	out.Layers = nil
	rep := &ReduceReport{}
	last := -1 // the last layer index with a reduction: activations are needed up to it
	for i, r := range ranks {
		if r > 0 {
			last = i
		}
	}
	at := classifierAt(f)
	orig := make([][]float32, len(images))
	red := make([][]float32, len(images))
	for k, x := range images {
		orig[k], red[k] = x, x
	}
	in := f.Input
	next := 0 // index into layout
	take := func() infer.Layer { l := layout[next]; next++; return l }
	for i := 0; i < len(f.Layers); i++ {
		l := f.Layers[i]
		if i == at && ranks[i] > 0 {
			lin, err := fitClassifier(f, i, in, orig, red, ranks[i], layout[next:], opt, progress, rep, byLayer[i])
			if err != nil {
				return nil, nil, err
			}
			out.Layers = append(out.Layers, lin...)
			break
		}
		if l.Kind == infer.Conv2d && ranks[i] > 0 {
			lo, re := take(), take()
			progress(fmt.Sprintf("fitting %s: %d → %d channels", l.Name, l.Out, ranks[i]))
			if err := fitConv(&l, in, shapes[i], orig, red, &lo, &re, opt, rep, byLayer[i]); err != nil {
				return nil, nil, fmt.Errorf("layer %s: %w", l.Name, err)
			}
			out.Layers = append(out.Layers, lo, re)
		} else {
			out.Layers = append(out.Layers, take())
			if i < last {
				for k := range images {
					same := sameTensor(orig[k], red[k]) // no reduction yet: one pass serves both
					if orig[k], _, err = runLayer(l, in, orig[k], opt.Threads); err != nil {
						return nil, nil, err
					}
					if same {
						red[k] = orig[k]
					} else if red[k], _, err = runLayer(l, in, red[k], opt.Threads); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		in = shapes[i]
	}
	if _, err := out.Resolve(); err != nil {
		return nil, nil, fmt.Errorf("reduced model: %w", err)
	}
	return out, rep, nil
}

// fitConv fits conv l (input shape in, output shape outS) as lo (Cin→r)
// then re (1x1 r→Cout), and advances orig and red past it.
func fitConv(l *infer.Layer, in, outS infer.Shape, orig, red [][]float32, lo, re *infer.Layer, opt ReduceOptions,
	rep *ReduceReport, c *candidate) error {
	cout, r := l.Out, lo.Out
	P := outS.H * outS.W
	st := newCovStats(cout, cout, false, opt.MaxPositions)
	redIn := append([][]float32(nil), red...)
	for k := range orig {
		y, _, err := runLayer(*l, in, orig[k], opt.Threads)
		if err != nil {
			return err
		}
		yh := y
		if !sameTensor(orig[k], redIn[k]) {
			if yh, _, err = runLayer(*l, in, redIn[k], opt.Threads); err != nil {
				return err
			}
		}
		st.add(y, yh, P, opt.Threads)
		orig[k] = y
	}
	meanX, meanY, cxx, cyx, trYY := st.centered()
	Pm, PtZ, relErr, err := reducedRankFit(cxx, cyx, trYY, cout, cout, r)
	if err != nil {
		return err
	}
	// Low-rank conv: W' = PᵀZ·W, b' = PᵀZ·(b − mean(ŷ)).
	taps := len(l.Weight) / cout
	w := make([]float32, r*taps)
	b := make([]float32, r)
	for k := 0; k < r; k++ {
		acc := make([]float64, taps)
		var bias float64
		for o := 0; o < cout; o++ {
			z := PtZ[k*cout+o]
			if z == 0 {
				continue
			}
			bo := -meanX[o]
			if l.Bias {
				bo += float64(l.BiasData[o])
			}
			bias += z * bo
			for t, v := range l.Weight[o*taps : (o+1)*taps] {
				acc[t] += z * float64(v)
			}
		}
		for t, v := range acc {
			w[k*taps+t] = float32(v)
		}
		b[k] = float32(bias)
	}
	lo.Weight, lo.BiasData = w, b
	// Restore: y = P·z + mean(y).
	rw := make([]float32, cout*r)
	rb := make([]float32, cout)
	for o := 0; o < cout; o++ {
		for k := 0; k < r; k++ {
			rw[o*r+k] = float32(Pm[o*r+k])
		}
		rb[o] = float32(meanY[o])
	}
	re.Weight, re.BiasData = rw, rb
	// The reduced network's activations continue through the new layers.
	for k := range red {
		z, zs, err := runLayer(*lo, in, redIn[k], opt.Threads)
		if err != nil {
			return err
		}
		if red[k], _, err = runLayer(*re, zs, z, opt.Threads); err != nil {
			return err
		}
	}
	rep.Layers = append(rep.Layers, ReducedLayer{Name: l.Name, From: cout, Rank: r, MACsBefore: c.full, MACsAfter: c.macs(r),
		Energy: c.energyAt(r), RelErr: relErr})
	return nil
}

func (c *candidate) energyAt(r int) float64 {
	if c == nil || c.energy == nil || r >= len(c.energy) {
		return math.NaN()
	}
	return c.energy[r]
}

// fitClassifier fits the 1x1 reduction (rest[0]) on the last feature map
// (shape in; orig and red hold it) and re-projects the first Linear after
// it. rest is the reduced layout from the reduction on; it returns those
// layers with their weights.
func fitClassifier(f *infer.Model, at int, in infer.Shape, orig, red [][]float32, r int, rest []infer.Layer,
	opt ReduceOptions, progress func(string), rep *ReduceReport, c *candidate) ([]infer.Layer, error) {
	C := in.C
	progress(fmt.Sprintf("fitting the 1x1 reduction before the classifier: %d → %d channels", C, r))
	st := newCovStats(C, C, false, opt.MaxPositions)
	for k := range orig {
		st.add(orig[k], red[k], in.H*in.W, opt.Threads)
	}
	meanX, meanY, cxx, cyx, trYY := st.centered()
	Pm, PtZ, relErr, err := reducedRankFit(cxx, cyx, trYY, C, C, r)
	if err != nil {
		return nil, fmt.Errorf("classifier reduction: %w", err)
	}
	layers := append([]infer.Layer(nil), rest...)
	red1 := &layers[0]
	red1.Weight = make([]float32, r*C)
	red1.BiasData = make([]float32, r)
	for k := 0; k < r; k++ {
		var bias float64
		for ch := 0; ch < C; ch++ {
			z := PtZ[k*C+ch]
			red1.Weight[k*C+ch] = float32(z)
			bias -= z * meanX[ch]
		}
		red1.BiasData[k] = float32(bias)
	}
	j := 1
	for j < len(layers) && layers[j].Kind != infer.Linear {
		j++
	}
	if j == len(layers) {
		return nil, errors.New("classifier reduction: no Linear after the features")
	}
	lin := &layers[j]
	orig0 := &f.Layers[at+j-1]
	S := len(orig0.Weight) / orig0.Out / C
	// Re-project the first Linear through P: row o's C×S weights W_o
	// become Pᵀ·W_o (r×S), one float32 GEMM per row (kernels.GemmFloat,
	// Pᵀ packed once); the weights are float32 and |P| ≤ 1, so float32
	// sums over C terms stay far inside the fit's own error. The bias
	// absorbs the centering: b + Σ_ch ȳ[ch]·Σ_s W_o[ch, s], in float64.
	w := make([]float32, lin.Out*r*S)
	b := make([]float32, lin.Out)
	pt := make([]float32, C*r)
	for i, v := range Pm {
		pt[i] = float32(v)
	}
	var pa kernels.PackedA[float32]
	pa.PackA(r, C, kernels.Matrix[float32]{Data: pt, Stride: r, Trans: true}, opt.Threads)
	threads := max(1, min(opt.Threads, lin.Out))
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf kernels.GemmBuffers[float32]
			for o := t; o < lin.Out; o += threads {
				row := orig0.Weight[o*C*S : (o+1)*C*S]
				var bias float64
				if orig0.Bias {
					bias = float64(orig0.BiasData[o])
				}
				for ch := 0; ch < C; ch++ {
					var sum float64
					for _, v := range row[ch*S : (ch+1)*S] {
						sum += float64(v)
					}
					bias += meanY[ch] * sum
				}
				b[o] = float32(bias)
				kernels.GemmFloatPacked(&pa, S, kernels.Matrix[float32]{Data: row, Stride: S}, w[o*r*S:(o+1)*r*S], S, false, &buf)
			}
		}()
	}
	wg.Wait()
	lin.Weight, lin.BiasData, lin.Bias, lin.In = w, b, true, 0
	e := ReducedLayer{Name: f.Layers[at-1].Name, Classifier: true, From: C, Rank: r, RelErr: relErr, Energy: math.NaN()}
	if c != nil {
		e.MACsBefore, e.MACsAfter, e.Energy = c.full, c.macs(r), c.energyAt(r)
	}
	rep.Layers = append(rep.Layers, e)
	return layers, nil
}

// sameTensor reports whether a and b are the same slice (the reduced
// network's activation is still the original's).
func sameTensor(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
