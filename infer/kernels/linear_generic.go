package kernels

// LinearInt8 computes y = requantize(W·x + Bias) for the flattened input x
// (In values). p must pass Check(false).
func LinearInt8(p *LinearParams, x, y []int8) {
	linear(p, x, y[:p.Out], nil)
}

// LinearLogits is LinearInt8 with float32 logits output. p must pass
// Check(true).
func LinearLogits(p *LinearParams, x []int8, y []float32) {
	linear(p, x, nil, y[:p.Out])
}

func linear(p *LinearParams, x, y8 []int8, yf []float32) {
	x = x[:p.In]
	n := p.In
	var acc [oBlock]int32
	o := 0
	// Four rows at a time: each input value loaded feeds four products.
	for ; o+oBlock <= p.Out; o += oBlock {
		w0, w1, w2, w3 := p.Weight[o*n:(o+1)*n], p.Weight[(o+1)*n:(o+2)*n], p.Weight[(o+2)*n:(o+3)*n], p.Weight[(o+3)*n:(o+4)*n]
		if simdDot4 != nil { // dispatch.go
			acc[0], acc[1], acc[2], acc[3] = simdDot4(x, w0, w1, w2, w3)
		} else {
			acc[0], acc[1], acc[2], acc[3] = dot4(x, w0, w1, w2, w3)
		}
		for k := range oBlock {
			linearOut(p, o+k, p.Bias[o+k]+acc[k], y8, yf)
		}
	}
	for ; o < p.Out; o++ {
		linearOut(p, o, p.Bias[o]+dot1(x, p.Weight[o*n:(o+1)*n]), y8, yf)
	}
}

func linearOut(p *LinearParams, o int, acc int32, y8 []int8, yf []float32) {
	if yf != nil {
		yf[o] = float32(acc) * LogitScale(p.InScale, p.WScale[o])
		return
	}
	y8[o] = RequantizeOut(acc, p.Mult[o], p.Shift[o], p.OutZero, p.ReLU)
}

// dot4 returns the four dot products of x with w0…w3 (each len(x) long).
// The int32 sums wrap on overflow (callers bound the length so they do
// not); wrapping addition is associative, so any summation order, SIMD
// lanes included, gives the same bits.
func dot4(x, w0, w1, w2, w3 []int8) (s0, s1, s2, s3 int32) {
	w0 = w0[:len(x)]
	w1 = w1[:len(x)]
	w2 = w2[:len(x)]
	w3 = w3[:len(x)]
	for i, v := range x {
		xv := int32(v)
		s0 += int32(w0[i]) * xv
		s1 += int32(w1[i]) * xv
		s2 += int32(w2[i]) * xv
		s3 += int32(w3[i]) * xv
	}
	return
}

func dot1(x, w []int8) (s int32) {
	w = w[:len(x)]
	for i, v := range x {
		s += int32(w[i]) * int32(v)
	}
	return s
}
