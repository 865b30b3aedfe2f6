package quant

import (
	"errors"
	"math"
	"sort"
	"sync"
)

// The linear algebra of channel reduction: response statistics over
// calibration images, a symmetric eigensolver and reduced-rank regression.
// Matrices are dense, row-major float64; n is at most a few hundred (the
// channels of one layer), so plain loops suffice.

// covStats accumulates, over samples (one per output position), the
// second moments of a target y (m channels) and an input x (n channels)
// that predicts it: Σx, Σy, Σxxᵀ, Σyxᵀ and Σ|y|².
type covStats struct {
	m, n     int
	samples  int64
	sumX     []float64
	sumY     []float64
	xx       []float64 // n×n
	yx       []float64 // m×n
	yy       float64   // Σ|y|²
	fullYY   []float64 // m×m when wanted (the spectrum of y), else nil
	maxPoses int       // positions used per tensor (subsampled evenly)
}

func newCovStats(m, n int, wantYY bool, maxPoses int) *covStats {
	s := &covStats{m: m, n: n, sumX: make([]float64, n), sumY: make([]float64, m),
		xx: make([]float64, n*n), yx: make([]float64, m*n), maxPoses: maxPoses}
	if wantYY {
		s.fullYY = make([]float64, m*m)
	}
	return s
}

// add records one pair of CHW tensors with P positions each: y has m·P
// values, x n·P. A tensor with more than maxPoses positions is subsampled
// evenly (neighbouring positions are strongly correlated; the moments of a
// few thousand per image are as good as all of them).
func (s *covStats) add(y, x []float32, P, threads int) {
	step := 1
	if s.maxPoses > 0 && P > s.maxPoses {
		step = (P + s.maxPoses - 1) / s.maxPoses
	}
	np := (P + step - 1) / step
	gather := func(t []float32, ch int) []float64 {
		g := make([]float64, ch*np)
		for c := 0; c < ch; c++ {
			row := t[c*P : (c+1)*P]
			for k := 0; k < np; k++ {
				g[c*np+k] = float64(row[k*step])
			}
		}
		return g
	}
	gy, gx := gather(y, s.m), gather(x, s.n)
	s.samples += int64(np)
	for c := 0; c < s.m; c++ {
		var sum, sq float64
		for _, v := range gy[c*np : (c+1)*np] {
			sum += v
			sq += v * v
		}
		s.sumY[c] += sum
		s.yy += sq
	}
	for c := 0; c < s.n; c++ {
		var sum float64
		for _, v := range gx[c*np : (c+1)*np] {
			sum += v
		}
		s.sumX[c] += sum
	}
	// The products, rows split between goroutines.
	parallelRows(s.n, threads, func(i int) {
		ri := gx[i*np : (i+1)*np]
		for j := 0; j <= i; j++ {
			d := dot(ri, gx[j*np:(j+1)*np])
			s.xx[i*s.n+j] += d
			if j != i {
				s.xx[j*s.n+i] += d
			}
		}
	})
	parallelRows(s.m, threads, func(i int) {
		ri := gy[i*np : (i+1)*np]
		for j := 0; j < s.n; j++ {
			s.yx[i*s.n+j] += dot(ri, gx[j*np:(j+1)*np])
		}
		if s.fullYY != nil {
			for j := 0; j <= i; j++ {
				d := dot(ri, gy[j*np:(j+1)*np])
				s.fullYY[i*s.m+j] += d
				if j != i {
					s.fullYY[j*s.m+i] += d
				}
			}
		}
	})
}

// parallelRows calls f(i) for i in [0, n) on up to threads goroutines.
// Rows are dealt round-robin; each f writes only row i's entries (and, for
// the symmetric fills above, entries (j, i) with j < i, which no other row
// writes).
func parallelRows(n, threads int, f func(i int)) {
	threads = max(1, min(threads, n))
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			for i := t; i < n; i += threads {
				f(i)
			}
		}(t)
	}
	wg.Wait()
}

func dot(a, b []float64) float64 {
	var s0, s1 float64
	b = b[:len(a)]
	k := 0
	for ; k+2 <= len(a); k += 2 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
	}
	if k < len(a) {
		s0 += a[k] * b[k]
	}
	return s0 + s1
}

// centered returns the means of x and y and the centered moments
// Cxx = Σ(x−x̄)(x−x̄)ᵀ, Cyx = Σ(y−ȳ)(x−x̄)ᵀ and tr Cyy.
func (s *covStats) centered() (meanX, meanY, cxx, cyx []float64, trYY float64) {
	N := float64(s.samples)
	meanX, meanY = make([]float64, s.n), make([]float64, s.m)
	for i := range meanX {
		meanX[i] = s.sumX[i] / N
	}
	for i := range meanY {
		meanY[i] = s.sumY[i] / N
	}
	cxx, cyx = make([]float64, s.n*s.n), make([]float64, s.m*s.n)
	for i := 0; i < s.n; i++ {
		for j := 0; j < s.n; j++ {
			cxx[i*s.n+j] = s.xx[i*s.n+j] - N*meanX[i]*meanX[j]
		}
	}
	for i := 0; i < s.m; i++ {
		for j := 0; j < s.n; j++ {
			cyx[i*s.n+j] = s.yx[i*s.n+j] - N*meanY[i]*meanX[j]
		}
	}
	trYY = s.yy
	for _, m := range meanY {
		trYY -= N * m * m
	}
	return meanX, meanY, cxx, cyx, max(trYY, 0)
}

// spectrum is the eigenvalues of the centered covariance of y, descending
// (fullYY must have been kept).
func (s *covStats) spectrum() []float64 {
	N := float64(s.samples)
	c := make([]float64, s.m*s.m)
	for i := 0; i < s.m; i++ {
		for j := 0; j < s.m; j++ {
			c[i*s.m+j] = s.fullYY[i*s.m+j] - s.sumY[i]*s.sumY[j]/N
		}
	}
	vals, _ := symEigen(c, s.m)
	for i, v := range vals {
		vals[i] = max(v, 0)
	}
	return vals
}

// symEigen diagonalises the symmetric n×n matrix a (overwritten: it is the
// workspace) by Householder reduction to tridiagonal form and the implicit
// QL algorithm with Wilkinson-style shifts (the EISPACK tred2/tql2 pair,
// as in JAMA; Golub and Van Loan, Matrix Computations, §8.3): O(n³), some
// 4n³ flops, where the cyclic Jacobi method it replaced took ~8 sweeps of
// 6n³ with column-strided access (18 s for VGG16's 512 channels). It
// returns the eigenvalues in descending order and the eigenvectors as the
// columns of v (v[i·n+k] is component i of eigenvector k), orthonormal to
// rounding.
func symEigen(a []float64, n int) (vals, v []float64) {
	if n == 0 {
		return nil, nil
	}
	V := a // V[i*n+j]; tred2 turns it into the orthogonal reduction
	d := make([]float64, n)
	e := make([]float64, n)
	tred2(V, d, e, n)
	// tql2 rotates pairs of columns of V; on the transpose they are rows,
	// contiguous in memory.
	vt := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			vt[j*n+i] = V[i*n+j]
		}
	}
	tql2(vt, d, e, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return d[order[x]] > d[order[y]] })
	vals = make([]float64, n)
	v = make([]float64, n*n)
	for k, o := range order {
		vals[k] = d[o]
		row := vt[o*n : (o+1)*n]
		for i, x := range row {
			v[i*n+k] = x
		}
	}
	return vals, v
}

// tred2 reduces the symmetric V (n×n, row-major) to tridiagonal form by
// Householder similarity transformations: on return d is the diagonal, e
// the subdiagonal (e[0] = 0, e[i] couples i−1 and i) and V the orthogonal
// matrix of the reduction.
func tred2(V, d, e []float64, n int) {
	for j := 0; j < n; j++ {
		d[j] = V[(n-1)*n+j]
	}
	for i := n - 1; i > 0; i-- {
		var scale, h float64
		for k := 0; k < i; k++ {
			scale += math.Abs(d[k])
		}
		if scale == 0 {
			e[i] = d[i-1]
			for j := 0; j < i; j++ {
				d[j] = V[(i-1)*n+j]
				V[i*n+j] = 0
				V[j*n+i] = 0
			}
		} else {
			for k := 0; k < i; k++ {
				d[k] /= scale
				h += d[k] * d[k]
			}
			f := d[i-1]
			g := math.Sqrt(h)
			if f > 0 {
				g = -g
			}
			e[i] = scale * g
			h -= f * g
			d[i-1] = f - g
			for j := 0; j < i; j++ {
				e[j] = 0
			}
			for j := 0; j < i; j++ {
				f = d[j]
				V[j*n+i] = f
				g = e[j] + V[j*n+j]*f
				for k := j + 1; k <= i-1; k++ {
					g += V[k*n+j] * d[k]
					e[k] += V[k*n+j] * f
				}
				e[j] = g
			}
			f = 0
			for j := 0; j < i; j++ {
				e[j] /= h
				f += e[j] * d[j]
			}
			hh := f / (h + h)
			for j := 0; j < i; j++ {
				e[j] -= hh * d[j]
			}
			for j := 0; j < i; j++ {
				f, g = d[j], e[j]
				for k := j; k <= i-1; k++ {
					V[k*n+j] -= f*e[k] + g*d[k]
				}
				d[j] = V[(i-1)*n+j]
				V[i*n+j] = 0
			}
		}
		d[i] = h
	}
	// Accumulate the transformations.
	for i := 0; i < n-1; i++ {
		V[(n-1)*n+i] = V[i*n+i]
		V[i*n+i] = 1
		if h := d[i+1]; h != 0 {
			for k := 0; k <= i; k++ {
				d[k] = V[k*n+i+1] / h
			}
			for j := 0; j <= i; j++ {
				var g float64
				for k := 0; k <= i; k++ {
					g += V[k*n+i+1] * V[k*n+j]
				}
				for k := 0; k <= i; k++ {
					V[k*n+j] -= g * d[k]
				}
			}
		}
		for k := 0; k <= i; k++ {
			V[k*n+i+1] = 0
		}
	}
	for j := 0; j < n; j++ {
		d[j] = V[(n-1)*n+j]
		V[(n-1)*n+j] = 0
	}
	V[(n-1)*n+n-1] = 1
	e[0] = 0
}

// tql2 diagonalises the symmetric tridiagonal (d, e) from tred2 by the
// implicit QL method, applying the rotations to the rows of vt (the
// transpose of tred2's V): on return d holds the eigenvalues and row k of
// vt the eigenvector of d[k].
func tql2(vt, d, e []float64, n int) {
	for i := 1; i < n; i++ {
		e[i-1] = e[i]
	}
	e[n-1] = 0
	var f, tst1 float64
	const eps = 0x1p-52
	for l := 0; l < n; l++ {
		tst1 = max(tst1, math.Abs(d[l])+math.Abs(e[l]))
		m := l
		for m < n-1 && math.Abs(e[m]) > eps*tst1 {
			m++
		}
		if m > l {
			for iter := 0; iter < 64; iter++ {
				g := d[l]
				p := (d[l+1] - g) / (2 * e[l])
				r := math.Hypot(p, 1)
				if p < 0 {
					r = -r
				}
				d[l] = e[l] / (p + r)
				d[l+1] = e[l] * (p + r)
				dl1 := d[l+1]
				h := g - d[l]
				for i := l + 2; i < n; i++ {
					d[i] -= h
				}
				f += h
				p = d[m]
				c, c2, c3 := 1.0, 1.0, 1.0
				el1 := e[l+1]
				var s, s2 float64
				for i := m - 1; i >= l; i-- {
					c3 = c2
					c2 = c
					s2 = s
					g = c * e[i]
					h = c * p
					r = math.Hypot(p, e[i])
					e[i+1] = s * r
					s = e[i] / r
					c = p / r
					p = c*d[i] - s*g
					d[i+1] = h + s*(c*g+s*d[i])
					ri, ri1 := vt[i*n:(i+1)*n], vt[(i+1)*n:(i+2)*n]
					for k := range ri {
						h = ri1[k]
						ri1[k] = s*ri[k] + c*h
						ri[k] = c*ri[k] - s*h
					}
				}
				p = -s * s2 * c3 * el1 * e[l] / dl1
				e[l] = s * p
				d[l] = c * p
				if math.Abs(e[l]) <= eps*tst1 {
					break
				}
			}
		}
		d[l] += f
		e[l] = 0
	}
}

// cholesky factors the symmetric positive definite n×n matrix a = L·Lᵀ in
// place (lower triangle).
func cholesky(a []float64, n int) error {
	for j := 0; j < n; j++ {
		d := a[j*n+j]
		for k := 0; k < j; k++ {
			d -= a[j*n+k] * a[j*n+k]
		}
		if !(d > 0) {
			return errors.New("matrix is not positive definite")
		}
		d = math.Sqrt(d)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = s / d
		}
	}
	return nil
}

// reducedRankFit is the asymmetric reconstruction of Zhang et al.
// ("Accelerating Very Deep Convolutional Networks for Classification and
// Detection", TPAMI 2016, §3.2): the rank-r M minimising
// Σ‖(y−ȳ) − M(x−x̄)‖² over the samples is M = P·Pᵀ·Z, where Z = Cyx·Cxx⁻¹
// is the unconstrained least-squares solution and P holds the r leading
// eigenvectors of Z·Cxx·Zᵀ (reduced-rank regression). It returns P (m×r,
// column-major per row: P[i·r+k]), PᵀZ (r×n) and the relative error of the
// fit, (tr Cyy − Σ top-r eigenvalues) / tr Cyy.
func reducedRankFit(cxx, cyx []float64, trYY float64, m, n, r int) (P, PtZ []float64, relErr float64, err error) {
	// Ridge: a tiny multiple of the mean variance keeps Cxx invertible
	// when channels are dead (always-zero ReLU outputs) or collinear.
	var tr float64
	for i := 0; i < n; i++ {
		tr += cxx[i*n+i]
	}
	ridge := 1e-6*tr/float64(n) + 1e-30
	L := append([]float64(nil), cxx...)
	for i := 0; i < n; i++ {
		L[i*n+i] += ridge
	}
	if err := cholesky(L, n); err != nil {
		return nil, nil, 0, err
	}
	// Z = Cyx·Cxx⁻¹: solve Cxx·zᵢ = cyxᵢ for each row i (Cxx symmetric).
	Z := make([]float64, m*n)
	parallelRows(m, 2, func(i int) {
		z := Z[i*n : (i+1)*n]
		copy(z, cyx[i*n:(i+1)*n])
		for j := 0; j < n; j++ { // L·w = b
			s := z[j]
			for k := 0; k < j; k++ {
				s -= L[j*n+k] * z[k]
			}
			z[j] = s / L[j*n+j]
		}
		for j := n - 1; j >= 0; j-- { // Lᵀ·z = w
			s := z[j]
			for k := j + 1; k < n; k++ {
				s -= L[k*n+j] * z[k]
			}
			z[j] = s / L[j*n+j]
		}
	})
	// Z·Cxx·Zᵀ = Z·Cyxᵀ (since Z·Cxx = Cyx).
	F := make([]float64, m*m)
	parallelRows(m, 2, func(i int) {
		for j := 0; j <= i; j++ {
			d := dot(Z[i*n:(i+1)*n], cyx[j*n:(j+1)*n])
			F[i*m+j] = d
		}
	})
	for i := 0; i < m; i++ { // mirror the lower half
		for j := 0; j < i; j++ {
			F[j*m+i] = F[i*m+j]
		}
	}
	vals, vecs := symEigen(F, m)
	var kept float64
	for k := 0; k < r; k++ {
		kept += max(vals[k], 0)
	}
	if trYY > 0 {
		relErr = max(trYY-kept, 0) / trYY
	}
	P = make([]float64, m*r)
	for i := 0; i < m; i++ {
		for k := 0; k < r; k++ {
			P[i*r+k] = vecs[i*m+k]
		}
	}
	PtZ = make([]float64, r*n)
	for k := 0; k < r; k++ {
		row := PtZ[k*n : (k+1)*n]
		for i := 0; i < m; i++ {
			p := P[i*r+k]
			if p == 0 {
				continue
			}
			zi := Z[i*n : (i+1)*n]
			for j := range row {
				row[j] += p * zi[j]
			}
		}
	}
	return P, PtZ, relErr, nil
}
